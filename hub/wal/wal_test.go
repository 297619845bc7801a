package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

var modes = []wal.SyncMode{wal.SyncAlways, wal.SyncInterval, wal.SyncNone}

func TestParseSyncMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    wal.SyncMode
		wantErr bool
	}{
		{"always", wal.SyncAlways, false},
		{"interval", wal.SyncInterval, false},
		{"none", wal.SyncNone, false},
		{"", 0, true},
		{"Always", 0, true},
		{"fsync", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := wal.ParseSyncMode(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseSyncMode(%q) = %v, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, wal.ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
			if err == nil && got.String() != tc.in {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

func TestOpenValidatesOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts wal.Options
	}{
		{"no dir", wal.Options{FS: waltest.New(1)}},
		{"bad mode", wal.Options{Dir: dir, FS: waltest.New(1), Sync: 7}},
		{"negative segment size", wal.Options{Dir: dir, FS: waltest.New(1), SegmentSize: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := wal.Open(tc.opts); !errors.Is(err, wal.ErrInvalidOptions) {
				t.Fatalf("Open = %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			fsys := waltest.New(1)
			recs := records(1, 200)
			l := open(t, wal.Options{FS: fsys, Sync: mode, SegmentSize: 512})
			equalRecs(t, replay(t, l, 0), nil)
			mustAppend(t, l, recs...)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if st.Records != 200 || st.LastIndex != 200 || st.Segments < 2 {
				t.Fatalf("Stats = %+v", st)
			}
			mustClose(t, l)

			l = open(t, wal.Options{FS: fsys, Sync: mode, SegmentSize: 512})
			defer mustClose(t, l)
			equalRecs(t, replay(t, l, 0), recs)
			equalRecs(t, replay(t, l, 150), recs[150:])
			equalRecs(t, replay(t, l, 200), nil)
			if got := l.Stats().LastIndex; got != 200 {
				t.Fatalf("LastIndex after reopen = %d", got)
			}
			// Segments are named after their first record and respect SegmentSize.
			for _, f := range files(t, fsys, ".wal") {
				b, _ := fsys.ReadFile(f)
				if len(b) > 512 {
					t.Errorf("%s: %d bytes > SegmentSize", f, len(b))
				}
			}
			mustAppend(t, l, records(201, 5)...)
		})
	}
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	l := open(t, wal.Options{FS: waltest.New(1)})
	mustAppend(t, l, rec{5, "x"})
	for _, idx := range []uint64{5, 4, 0} {
		if err := l.Append(idx, nil).Wait(); !errors.Is(err, wal.ErrOutOfOrder) {
			t.Fatalf("Append(%d) = %v, want ErrOutOfOrder", idx, err)
		}
	}
	// The log stays usable after a rejected record.
	mustAppend(t, l, rec{6, "y"})
	if err := l.Replay(0, func(uint64, []byte) error { return nil }); !errors.Is(err, wal.ErrReplayAfterAppend) {
		t.Fatalf("Replay after Append = %v", err)
	}
	mustClose(t, l)
	if err := l.Append(7, nil).Wait(); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := l.Sync(); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Sync after Close = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestReplayStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	writeLog(t, fsys, 0, records(1, 10))
	l := open(t, wal.Options{FS: fsys})
	defer mustClose(t, l)
	stop := errors.New("stop")
	n := 0
	err := l.Replay(0, func(uint64, []byte) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Replay = %v after %d records", err, n)
	}
}

func TestRemoveBefore(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	recs := records(1, 100)
	l := open(t, wal.Options{FS: fsys, SegmentSize: 300})
	mustAppend(t, l, recs...)
	before := l.Stats().Segments
	if err := l.RemoveBefore(50); err != nil {
		t.Fatal(err)
	}
	after := l.Stats().Segments
	if after >= before || len(files(t, fsys, ".wal")) != after {
		t.Fatalf("segments %d -> %d, files %d", before, after, len(files(t, fsys, ".wal")))
	}
	// Everything above 50 is still there; the oldest remaining segment starts at or below 51.
	first := filepath.Base(files(t, fsys, ".wal")[0])
	if first > fmt.Sprintf("%016x.wal", 51) {
		t.Fatalf("oldest segment %s starts after 51", first)
	}
	// Removing everything keeps the active segment, and so the last record.
	if err := l.RemoveBefore(1 << 62); err != nil {
		t.Fatal(err)
	}
	if n := l.Stats().Segments; n != 1 {
		t.Fatalf("%d segments after RemoveBefore(all)", n)
	}
	mustClose(t, l)
	// A crash right after loses nothing: removals and the rest were made durable.
	fsys = fsys.Crash()
	l = open(t, wal.Options{FS: fsys, SegmentSize: 300})
	defer mustClose(t, l)
	got := replay(t, l, 50)
	if len(got) == 0 || got[len(got)-1] != recs[99] {
		t.Fatalf("last record lost: %v", short(got))
	}
	equalRecs(t, got, recs[100-len(got):])
}

// TestGroupCommit holds the first fsync until every goroutine has appended, so the rest share
// the second fsync: deterministic batching without timing.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	const writers = 32
	fsys := waltest.New(1)
	release := make(chan struct{})
	var once sync.Once
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpSync && strings.HasSuffix(name, ".wal") {
			once.Do(func() { <-release })
		}
		return nil
	})
	l := open(t, wal.Options{FS: fsys})
	var mu sync.Mutex // the hub's lock: fixes the index order
	var next uint64
	var appended, done sync.WaitGroup
	appended.Add(writers)
	for range writers {
		done.Go(func() {
			mu.Lock()
			next++
			tk := l.Append(next, []byte("v"))
			mu.Unlock()
			appended.Done()
			if err := tk.Wait(); err != nil {
				t.Error(err)
			}
		})
	}
	appended.Wait()
	close(release)
	done.Wait()
	st := l.Stats()
	if st.Records != writers || st.Syncs >= st.Records || st.Syncs > 2 {
		t.Fatalf("Records=%d Syncs=%d: writers did not share fsyncs", st.Records, st.Syncs)
	}
	mustClose(t, l)
}

func TestSyncFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("EIO")
	cases := []struct {
		name string
		op   waltest.Op
	}{
		{"fsync", waltest.OpSync},
		{"write", waltest.OpWrite},
		{"segment create", waltest.OpCreate},
		{"dir sync on rotation", waltest.OpSyncDir},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys := waltest.New(1)
			l := open(t, wal.Options{FS: fsys, SegmentSize: 64})
			mustAppend(t, l, rec{1, "ok"})
			var mu sync.Mutex
			failing, calls := false, 0
			fsys.SetFault(func(op waltest.Op, name string) error {
				mu.Lock()
				defer mu.Unlock()
				if op != tc.op {
					return nil
				}
				calls++
				if failing {
					return boom
				}
				return nil
			})
			mu.Lock()
			failing = true
			mu.Unlock()
			// Record 2 overflows the 64-byte segment, so it also exercises rotation.
			tk := l.Append(2, []byte(strings.Repeat("x", 60)))
			if err := tk.Wait(); !errors.Is(err, wal.ErrSyncFailed) || !errors.Is(err, boom) {
				t.Fatalf("pending Wait = %v, want ErrSyncFailed wrapping the cause", err)
			}
			mu.Lock()
			failing = false // the disk "recovers": the log must not
			seen := calls
			mu.Unlock()
			for i := uint64(3); i < 6; i++ {
				if err := l.Append(i, nil).Wait(); !errors.Is(err, wal.ErrSyncFailed) {
					t.Fatalf("later Wait = %v, want ErrSyncFailed", err)
				}
			}
			if err := l.Sync(); !errors.Is(err, wal.ErrSyncFailed) {
				t.Fatalf("Sync = %v", err)
			}
			if st := l.Stats(); !errors.Is(st.SyncErr, wal.ErrSyncFailed) {
				t.Fatalf("Stats.SyncErr = %v", st.SyncErr)
			}
			if err := l.Close(); !errors.Is(err, wal.ErrSyncFailed) {
				t.Fatalf("Close = %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != seen {
				t.Fatalf("%d more %v calls after the failure: the log retried", calls-seen, tc.op)
			}
		})
	}
}

// TestFailureCompletesAllPending: every ticket waiting when the fsync fails gets the error.
func TestFailureCompletesAllPending(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	release := make(chan struct{})
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpSync {
			<-release
			return errors.New("EIO")
		}
		return nil
	})
	l := open(t, wal.Options{FS: fsys})
	first := l.Append(1, nil) // the round that first.Wait runs blocks in fsync
	var later []*wal.Ticket
	for i := uint64(2); i <= 20; i++ {
		later = append(later, l.Append(i, nil))
	}
	close(release)
	for i, tk := range append([]*wal.Ticket{first}, later...) {
		if err := tk.Wait(); !errors.Is(err, wal.ErrSyncFailed) {
			t.Fatalf("ticket %d: %v", i+1, err)
		}
	}
	l.Close()
}

func TestSyncModesAcknowledge(t *testing.T) {
	t.Parallel()
	for _, mode := range []wal.SyncMode{wal.SyncInterval, wal.SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			fsys := waltest.New(1)
			synced := make(chan struct{}, 1)
			fsys.SetFault(func(op waltest.Op, name string) error {
				if op == waltest.OpSync {
					select {
					case synced <- struct{}{}:
					default:
					}
				}
				return nil
			})
			l := open(t, wal.Options{FS: fsys, Sync: mode, SyncInterval: 1})
			// Wait returns at once in these modes.
			mustAppend(t, l, records(1, 10)...)
			if mode == wal.SyncInterval {
				<-synced // the ticker fsyncs without being asked
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			mustClose(t, l)
			// After Sync and Close everything is durable.
			l = open(t, wal.Options{FS: fsys.Crash()})
			defer mustClose(t, l)
			equalRecs(t, replay(t, l, 0), records(1, 10))
		})
	}
}

// TestOSFS runs the log on the real file system: round trip, torn tail repair, empty segment.
func TestOSFS(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	recs := records(1, 50)
	l := open(t, wal.Options{Dir: d, SegmentSize: 1 << 10})
	mustAppend(t, l, recs...)
	mustClose(t, l)

	segs, _ := filepath.Glob(filepath.Join(d, "*.wal"))
	if len(segs) < 2 {
		t.Fatalf("segments: %v", segs)
	}
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	l = open(t, wal.Options{Dir: d, Logger: logs.logger()})
	equalRecs(t, replay(t, l, 0), recs[:49])
	if _, err := os.Stat(last + ".broken"); err != nil {
		t.Fatalf("no .broken copy: %v", err)
	}
	if !strings.Contains(logs.String(), "torn tail") || !strings.Contains(logs.String(), last) {
		t.Fatalf("log does not report the repair: %s", logs.String())
	}
	mustAppend(t, l, rec{50, "again"})
	mustClose(t, l)
	l = open(t, wal.Options{Dir: d})
	defer mustClose(t, l)
	equalRecs(t, replay(t, l, 0), append(recs[:49:49], rec{50, "again"}))
}

// TestCloseWritesWhatNobodyWaitedFor: under SyncAlways the writers that wait write the log;
// Close writes and fsyncs the records appended without a Wait, and completes their Tickets.
func TestCloseWritesWhatNobodyWaitedFor(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	l := open(t, wal.Options{FS: fsys})
	tk := l.Append(1, []byte("a"))
	l.Append(2, []byte("b"))
	mustClose(t, l)
	if err := tk.Wait(); err != nil {
		t.Fatalf("Wait after Close = %v", err)
	}
	l = open(t, wal.Options{FS: fsys})
	defer mustClose(t, l)
	equalRecs(t, replay(t, l, 0), []rec{{1, "a"}, {2, "b"}})
}

// TestCloseTakesAnUnclaimedLead: a round ends while a record appended during it has no waiter, so
// the lead is left for nobody; Close, racing with that hand-off, takes the lead either way and
// writes the record.
func TestCloseTakesAnUnclaimedLead(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	release := make(chan struct{})
	syncing := make(chan struct{})
	var once sync.Once
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpSync && strings.HasSuffix(name, ".wal") {
			once.Do(func() { close(syncing); <-release })
		}
		return nil
	})
	l := open(t, wal.Options{FS: fsys})
	first := l.Append(1, []byte("a"))
	waited := make(chan error, 1)
	go func() { waited <- first.Wait() }() // leads, and blocks in its fsync
	<-syncing
	l.Append(2, []byte("b")) // nobody waits for it
	close(release)
	mustClose(t, l)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	l = open(t, wal.Options{FS: fsys})
	defer mustClose(t, l)
	equalRecs(t, replay(t, l, 0), []rec{{1, "a"}, {2, "b"}})
}

// TestConcurrentWritersAllDurable: many writers append and wait at once; each Wait returns only
// after an fsync covering its record, and every record is there after a reopen.
func TestConcurrentWritersAllDurable(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 100
	fsys := waltest.New(1)
	l := open(t, wal.Options{FS: fsys})
	var mu sync.Mutex // the hub's lock: fixes the index order
	var next uint64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				mu.Lock()
				next++
				tk := l.Append(next, []byte("v"))
				mu.Unlock()
				if err := tk.Wait(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if st := l.Stats(); st.Records != writers*each || st.Syncs == 0 || st.Syncs > st.Records {
		t.Fatalf("Stats = %+v", st)
	}
	mustClose(t, l)
	l = open(t, wal.Options{FS: fsys})
	defer mustClose(t, l)
	if got := len(replay(t, l, 0)); got != writers*each {
		t.Fatalf("%d records after reopen, want %d", got, writers*each)
	}
}

// TestSynced: Synced reports the last record an fsync covers, never one only appended.
func TestSynced(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			l := open(t, wal.Options{FS: waltest.New(1), Sync: mode, SyncInterval: time.Hour})
			defer mustClose(t, l)
			mustAppend(t, l, rec{1, "a"}, rec{2, "b"})
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := l.Synced(); got != 2 {
				t.Fatalf("Synced() = %d after a Sync, want 2", got)
			}
			l.Append(3, []byte("c"))
			if got := l.Synced(); got != 2 {
				t.Fatalf("Synced() = %d with record 3 only appended, want 2", got)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := l.Synced(); got != 3 {
				t.Fatalf("Synced() = %d after a Sync, want 3", got)
			}
		})
	}
}

// TestGrownSpace: the active segment's file is grown ahead of its records and written into, on
// the real file system and the simulated one. Every segment the log stops writing (rotated, or
// the last at Close) ends with its last record; a log that was not closed reopens with the zeros
// after its records and writes on from its last record, with nothing in between.
func TestGrownSpace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fsys func(t *testing.T) (wal.FS, string)
	}{
		{"os", func(t *testing.T) (wal.FS, string) { return wal.OSFS{}, t.TempDir() }},
		{"waltest", func(*testing.T) (wal.FS, string) { return waltest.New(7), dir }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys, d := tc.fsys(t)
			size := func(path string) int64 {
				t.Helper()
				fi, err := fsys.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				return fi.Size()
			}
			segments := func() []string { return filesIn(t, fsys, d, ".wal") }
			const segSize = 4 << 10
			recs := records(1, 300) // about 9 KiB: three segments
			l := open(t, wal.Options{Dir: d, FS: fsys, SegmentSize: segSize})
			mustAppend(t, l, recs[:200]...)
			segs := segments()
			if len(segs) < 2 {
				t.Fatalf("segments %v, want more than one", segs)
			}
			last := segs[len(segs)-1]
			if got := size(last); got != segSize {
				t.Fatalf("active segment of %d bytes, want it grown to %d", got, segSize)
			}
			var written int64
			for _, p := range segs[:len(segs)-1] {
				written += size(p)
			}
			if want := int64(len(encode(recs[:200]...))); written >= want {
				t.Fatalf("rotated segments hold %d bytes of %d: nothing left for the last", written, want)
			}
			// Reopen without Close, as after a kill (l is left as it is, never to write again): the
			// zeros after the records are not a tear.
			var logs logBuffer
			l2 := open(t, wal.Options{Dir: d, FS: fsys, SegmentSize: segSize, Logger: logs.logger()})
			if s := logs.String(); s != "" {
				t.Fatalf("reopening a grown segment logged %q", s)
			}
			equalRecs(t, replay(t, l2, 0), recs[:200])
			mustAppend(t, l2, recs[200:]...)
			mustClose(t, l2)
			var all []byte
			for _, p := range segments() {
				b, err := readAll(fsys, p)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			if want := encode(recs...); !bytes.Equal(all, want) {
				t.Fatalf("after Close the segments hold %d bytes, want exactly the %d of the records", len(all), len(want))
			}
			l = open(t, wal.Options{Dir: d, FS: fsys})
			defer mustClose(t, l)
			equalRecs(t, replay(t, l, 0), recs)
		})
	}
}

func readAll(fsys wal.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
