package hub

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/statehub/statehub/hub/wal"
)

// Defaults for StoreConfig's zero fields.
const (
	DefaultSnapshotRecords = 100_000
	DefaultSnapshotBytes   = 64 << 20
	snapshotsKept          = 2
)

// StoreConfig says where and how the hub persists. The data directory holds snapshots
// (snap-<seq>.snap), the log (wal/), the pending on-disconnect writes (ondisconnect/, a log of
// their own: discjournal.go) and the bytes of stored files (blobs/, an FSBlobStore), all on FS.
type StoreConfig struct {
	Dir             string
	Sync            wal.SyncMode // default SyncAlways
	SnapshotRecords int          // log records between snapshots (default 100,000)
	SnapshotBytes   int64        // log bytes between snapshots (default 64 MiB)
	AllowRepair     bool         // cut the log at corruption instead of refusing to start
	FS              wal.FS       // default the OS
}

// store is the disk Journal: commits go to the log; a background goroutine writes snapshots and
// removes the log they cover. It knows Local only through the functions it is given: it never
// takes Local's lock and holds no *Local (see the package documentation's Concurrency).
type store struct {
	cfg    StoreConfig
	fs     *timedFS
	log    *wal.Log
	disc   *discJournal // the pending on-disconnect writes; used under Local's lock
	logger *slog.Logger
	buf    []byte // encoding scratch, used by Append (under the caller's lock)
	kick   chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup

	// Set by Open before the snapshotter starts, and only read after.
	freeze func() frozen // a consistent view of the state to snapshot (Local.freeze)
	sweep  func()        // after a snapshot: removes the stored files no key refers to

	sinceRecords int   // by Append (under the caller's lock), and Open before it
	sinceBytes   int64 // likewise

	mu        sync.Mutex // serializes snapshots
	snapshots int        // snapshots written since Open, for tests and metrics
}

// Open returns a hub restored from dir: the newest valid snapshot, then every later commit of the
// log. A torn log tail is cut off (with a .broken copy of the cut bytes, as package wal says);
// corruption before it is an error naming file and offset. The temporary files of snapshots and
// stored files that a kill interrupted are removed, with a log line. Writes to the hub are
// journaled there from then on.
func Open(cfg Config, sc StoreConfig) (*Hub, error) {
	if sc.Dir == "" {
		return nil, errors.New("hub: StoreConfig.Dir is required")
	}
	if sc.SnapshotRecords <= 0 {
		sc.SnapshotRecords = DefaultSnapshotRecords
	}
	if sc.SnapshotBytes <= 0 {
		sc.SnapshotBytes = DefaultSnapshotBytes
	}
	if sc.FS == nil {
		sc.FS = wal.OSFS{}
	}
	// Every fsync of the log and of snapshots is timed, for Stats; stored files' are not.
	blobs := NewFSBlobStore(sc.FS, filepath.Join(sc.Dir, "blobs"))
	timed := newTimedFS(sc.FS)
	sc.FS = timed
	if err := sc.FS.MkdirAll(sc.Dir, 0o755); err != nil {
		return nil, err
	}
	cfg.Journal = nil
	cfg = cfg.withDefaults()
	s := &store{cfg: sc, fs: timed, logger: cfg.Logger, kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.removeStaleTemps()
	removed, err := blobs.RemoveTemps()
	if len(removed) > 0 {
		s.logger.Info("removed stale temporary files", "files", removed)
	}
	if err != nil {
		s.logger.Warn("removing stale temporary files", "dir", blobs.Dir(), "err", err)
	}
	snap, found, err := s.loadNewestSnapshot()
	if err != nil {
		return nil, err
	}
	hub := newHub(cfg)
	h := newLocal(cfg, hub)
	hub.Store = h
	h.loading = true
	if found {
		h.load(snap)
	}
	log, err := wal.Open(wal.Options{Dir: filepath.Join(sc.Dir, "wal"), Sync: sc.Sync, FS: sc.FS, Logger: h.log, AllowRepair: sc.AllowRepair})
	if err != nil {
		return nil, err
	}
	s.log = log
	s.freeze, s.sweep = h.freeze, h.sweepAllBlobs
	h.blobs = newBlobStore(blobs, log.Sync)
	err = log.Replay(h.seq, func(index uint64, data []byte) error {
		c, err := decodeCommit(data)
		if err != nil {
			return fmt.Errorf("hub: log record %d: %w", index, err)
		}
		if c.Seq != index || index != h.seq+1 {
			return fmt.Errorf("hub: log record %d does not follow seq %d: the log has a gap", index, h.seq)
		}
		h.Replay(c)
		s.sinceRecords++
		s.sinceBytes += int64(len(data))
		return nil
	})
	if err != nil {
		log.Close()
		return nil, err
	}
	s.disc, err = openDiscJournal(sc.Dir, wal.Options{Sync: sc.Sync, FS: sc.FS, Logger: h.log, AllowRepair: sc.AllowRepair})
	if err != nil {
		log.Close()
		return nil, err
	}
	h.mu.Lock()
	h.cfg.Journal, h.store, h.loading = s, s, false
	h.recoverDisconnectWritesLocked(s.disc.pending)
	h.scheduleLocked()
	h.mu.Unlock()
	h.sweepAllBlobs()
	s.wg.Add(1)
	go s.snapshotter()
	h.log.Info("state loaded", "dir", sc.Dir, "seq", h.Seq(), "keys", h.Len())
	return hub, nil
}

// Append journals c. It runs under the hub's lock and only buffers.
func (s *store) Append(c *Commit) func() error {
	s.buf = encodeCommit(s.buf[:0], c)
	t := s.log.Append(c.Seq, s.buf)
	s.sinceRecords++
	s.sinceBytes += int64(len(s.buf))
	if s.sinceRecords >= s.cfg.SnapshotRecords || s.sinceBytes >= s.cfg.SnapshotBytes {
		s.sinceRecords, s.sinceBytes = 0, 0
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return t.Wait
}

func (s *store) snapshotter() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			if err := s.snapshot(); err != nil {
				s.logger.Error("snapshot failed; the log keeps growing until one succeeds", "err", err)
			}
		}
	}
}

// snapshot writes the state atomically as snap-<seq>.snap, keeps the newest few and removes the
// log they cover.
func (s *store) snapshot() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.freeze()
	// The snapshot may hold commits the log has not made durable yet; sync first, so a snapshot never
	// runs ahead of the log it replaces.
	if err := s.log.Sync(); err != nil {
		return err
	}
	path := filepath.Join(s.cfg.Dir, snapshotName(f.seq))
	if err := wal.WriteFileAtomic(s.fs, path, f.write); err != nil {
		return err
	}
	s.snapshots++
	seqs, err := s.listSnapshots()
	if err != nil {
		return err
	}
	for _, old := range seqs[min(len(seqs), snapshotsKept):] {
		if err := s.fs.Remove(filepath.Join(s.cfg.Dir, snapshotName(old))); err != nil {
			return err
		}
	}
	oldest := seqs[min(len(seqs), snapshotsKept)-1]
	if err := s.log.RemoveBefore(oldest); err != nil {
		return err
	}
	s.sweep()
	return nil
}

func snapshotName(seq uint64) string { return fmt.Sprintf("snap-%016x.snap", seq) }

// parseSnapshotName returns the seq of a snapshot file's name.
func parseSnapshotName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, "snap-")
	if !ok {
		return 0, false
	}
	if hex, ok = strings.CutSuffix(hex, ".snap"); !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}

// removeStaleTemps removes the temporary files of snapshots that a kill interrupted (the only
// files the store writes with WriteFileAtomic). It runs at Open, before any snapshot can start.
// A failure is logged: a leftover costs disk space, not correctness.
func (s *store) removeStaleTemps() {
	removed, err := wal.RemoveTemps(s.fs, s.cfg.Dir, func(name string) bool {
		_, ok := parseSnapshotName(name)
		return ok
	})
	if len(removed) > 0 {
		s.logger.Info("removed stale temporary files", "files", removed)
	}
	if err != nil {
		s.logger.Warn("removing stale temporary files", "dir", s.cfg.Dir, "err", err)
	}
}

// listSnapshots returns the seqs of the snapshot files, newest first.
func (s *store) listSnapshots() ([]uint64, error) {
	des, err := s.fs.ReadDir(s.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, de := range des {
		if seq, ok := parseSnapshotName(de.Name()); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	slices.Reverse(seqs)
	return seqs, nil
}

// loadNewestSnapshot returns the newest snapshot that verifies (found is false when there is
// none); a bad one is logged and skipped.
func (s *store) loadNewestSnapshot() (f frozen, found bool, err error) {
	seqs, err := s.listSnapshots()
	if err != nil {
		return frozen{}, false, err
	}
	for _, seq := range seqs {
		path := filepath.Join(s.cfg.Dir, snapshotName(seq))
		data, err := readFile(s.fs, path)
		if err == nil {
			if f, err = decodeSnapshot(data); err == nil {
				return f, true, nil
			}
		}
		s.logger.Warn("skipping snapshot", "file", path, "err", err)
	}
	return frozen{}, false, nil
}

func readFile(fsys wal.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, 0, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// close stops the snapshotter and flushes and closes the logs.
func (s *store) close() error {
	close(s.done)
	s.wg.Wait()
	return errors.Join(s.log.Close(), s.disc.close())
}

// Restore starts an empty data directory from a backup made by WriteBackup (or a plain snapshot
// from writeSnapshot): it streams the stored files into <dir>/blobs (an FSBlobStore on sc.FS),
// verifying each one's sha256, verifies the snapshot and that the backup holds every file it
// refers to, then installs the snapshot as the directory's. A failed restore leaves the directory
// empty.
func Restore(sc StoreConfig, backup io.Reader) (seq uint64, err error) {
	fsys := sc.FS
	if fsys == nil {
		fsys = wal.OSFS{}
	}
	if err := fsys.MkdirAll(sc.Dir, 0o755); err != nil {
		return 0, err
	}
	if des, err := fsys.ReadDir(sc.Dir); err != nil {
		return 0, err
	} else if len(des) > 0 {
		return 0, fmt.Errorf("hub: restore needs an empty data directory; %s is not", sc.Dir)
	}
	br := bufio.NewReaderSize(backup, 256<<10)
	data, err := readSnapshotPart(br)
	if err != nil {
		return 0, err
	}
	f, err := decodeSnapshot(data)
	if err != nil {
		return 0, err
	}
	blobs := NewFSBlobStore(fsys, filepath.Join(sc.Dir, "blobs"))
	defer func() {
		if err != nil {
			blobs.removeAll()
		}
	}()
	if err := restoreBlobs(br, f, blobs); err != nil {
		return 0, err
	}
	err = wal.WriteFileAtomic(fsys, filepath.Join(sc.Dir, snapshotName(f.seq)), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	return f.seq, err
}

// Checkpoint writes a snapshot now and removes the log it covers. The hub also does this by
// itself every SnapshotRecords records; Checkpoint is for operators and benchmarks.
func (h *Local) Checkpoint() error {
	if h.store == nil {
		return errors.New("hub: memory-only hub has nothing to checkpoint")
	}
	return h.store.snapshot()
}
