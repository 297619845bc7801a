package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Stored files. A write with a non-JSON content type stores raw bytes: they stream into the blob
// store and never sit whole in memory. The key's value is then a small JSON description of the
// file, which is what reads of the tree, listings, snapshots and events carry:
//
//	{"type":"image/svg+xml","size":123,"sha256":"<64 hex digits>"}
//
// and Entry.Type holds the content type. OpenFile gives the bytes back.
//
// The blob store is content-addressed: a file's bytes live in <dir>/<sha256>, written to a
// temporary file, fsynced and renamed there before the commit that refers to it is journaled. The
// directory is <data>/blobs for a hub from Open and a temporary directory, removed by Close, for a
// memory-only hub. The hub counts the keys that refer to each blob (blobRefs). A blob whose count
// falls to 0 is removed after its commit (sweepBlobs), once the journal is durable up to that
// commit, so a crash never brings back a key whose bytes are gone; every snapshot and every Open
// also sweep the whole directory for blobs nobody refers to. While a backup streams, nothing is
// swept: the blobs of the state it froze stay readable, and it sweeps when it ends.
//
// A file whose bytes cannot be stored (a full disk, an unwritable directory) fails that one write
// with ErrUnavailable and leaves no temporary file behind; the journal, and so every other write,
// is unaffected.
//
// Lock order: blobStore.mu, then Hub.mu.

// DefaultMaxFileBytes is the default limit on a stored file (Config.MaxFileBytes).
const DefaultMaxFileBytes = 100 << 20

// FileInfo describes a stored file. Its JSON is the key's value.
type FileInfo struct {
	Type   string `json:"type"`   // the content type the file was stored with
	Size   int64  `json:"size"`   // its length in bytes
	SHA256 string `json:"sha256"` // hex SHA-256 of its bytes; also its name in the blob store
}

// ParseFileInfo decodes a stored file's description (an Entry's Value when Type is set).
func ParseFileInfo(value []byte) (FileInfo, error) {
	var fi FileInfo
	if err := json.Unmarshal(value, &fi); err != nil || !isHash(fi.SHA256) {
		return fi, fmt.Errorf("hub: not a file description: %.60s", value)
	}
	return fi, nil
}

// NormalizeContentType checks a content type for a stored file and returns it in canonical form.
func NormalizeContentType(ct string) (string, error) {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || len(ct) > 255 || !strings.Contains(mt, "/") {
		return "", fmt.Errorf("%w: content type %.80q", ErrInvalidValue, ct)
	}
	return mime.FormatMediaType(mt, params), nil
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// blobStore holds the bytes of stored files. See the comment at the top of this file.
type blobStore struct {
	dir  string
	temp bool         // dir is a temporary directory made on first use, removed by close
	sync func() error // makes every commit so far durable before a sweep removes blobs; nil in memory

	// create makes a temporary file in dir: os.CreateTemp, or a file that fails in tests.
	create func(dir string) (blobTemp, error)

	mu      sync.Mutex
	made    bool           // dir exists
	pending map[string]int // blobs written but whose commit is not applied yet: never swept
	backups int            // backups streaming (WriteBackup): nothing is swept meanwhile
	closed  bool
}

func newBlobStore(dir string, sync func() error) *blobStore {
	return &blobStore{dir: dir, temp: dir == "", sync: sync, create: createTemp, pending: make(map[string]int)}
}

// blobTemp is the temporary file a blob is written to; *os.File is one.
type blobTemp interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

func createTemp(dir string) (blobTemp, error) {
	f, err := os.CreateTemp(dir, "tmp-*")
	if err != nil {
		return nil, err
	}
	return f, nil
}

// unavailable reports a failure of the disk under the blob store, without failing the journal.
func unavailable(err error) error {
	return fmt.Errorf("%w: storing a file: %w", ErrUnavailable, err)
}

// fileWriter remembers a failed write, to tell it from a failure to read the request.
type fileWriter struct {
	w   io.Writer
	err error
}

func (fw *fileWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if err != nil {
		fw.err = err
	}
	return n, err
}

// ensureLocked creates the directory on first use.
func (b *blobStore) ensureLocked() error {
	if b.closed {
		return ErrClosed
	}
	if b.made {
		return nil
	}
	if b.temp {
		dir, err := os.MkdirTemp("", "statehub-blobs-")
		if err != nil {
			return err
		}
		b.dir = dir
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	b.made = true
	return nil
}

// put streams r into the store and returns its hash and size, and holds the blob as pending until
// release. More than max bytes fail with ErrValueTooLarge and leave nothing behind; a failure of
// the disk fails with ErrUnavailable.
func (b *blobStore) put(r io.Reader, max int64) (sum string, size int64, err error) {
	b.mu.Lock()
	err = b.ensureLocked()
	dir := b.dir
	b.mu.Unlock()
	if errors.Is(err, ErrClosed) {
		return "", 0, err
	}
	if err != nil {
		return "", 0, unavailable(err)
	}
	f, err := b.create(dir)
	if err != nil {
		return "", 0, unavailable(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	hash := sha256.New()
	fw := &fileWriter{w: f}
	size, err = io.Copy(io.MultiWriter(fw, hash), io.LimitReader(r, max+1))
	if fw.err != nil {
		return "", 0, unavailable(err)
	}
	if err != nil {
		return "", 0, fmt.Errorf("hub: reading the file: %w", err)
	}
	if size > max {
		return "", 0, fmt.Errorf("%w: a file may hold at most %d bytes", ErrValueTooLarge, max)
	}
	if err = f.Sync(); err != nil {
		return "", 0, unavailable(err)
	}
	if err = f.Close(); err != nil {
		return "", 0, unavailable(err)
	}
	sum = hex.EncodeToString(hash.Sum(nil))
	b.mu.Lock()
	if err = os.Rename(f.Name(), filepath.Join(dir, sum)); err == nil {
		b.pending[sum]++
	}
	b.mu.Unlock()
	if err != nil {
		return "", 0, unavailable(err)
	}
	if err = syncDir(dir); err != nil {
		b.release(sum)
		return "", 0, unavailable(err)
	}
	return sum, size, nil
}

// release ends put's hold on a blob: its commit is applied (or failed).
func (b *blobStore) release(sum string) {
	b.mu.Lock()
	if b.pending[sum]--; b.pending[sum] <= 0 {
		delete(b.pending, sum)
	}
	b.mu.Unlock()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// MaxFileBytes returns the largest file SetFile stores.
func (h *Local) MaxFileBytes() int64 { return h.cfg.MaxFileBytes }

// SetFile stores the bytes of body (at most Config.MaxFileBytes) as a file of the given content
// type under key, if cond holds. The bytes stream to disk and are durable before the commit is
// journaled; the key's value becomes the file's description (see FileInfo).
func (h *Local) SetFile(key, contentType string, body io.Reader, cond Cond, opt WriteOptions) (Result, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	ct, err := NormalizeContentType(contentType)
	if err != nil {
		return Result{}, err
	}
	sum, size, err := h.blobs.put(body, h.cfg.MaxFileBytes)
	if err != nil {
		return Result{}, err
	}
	value, _ := json.Marshal(FileInfo{Type: ct, Size: size, SHA256: sum})
	res, err := h.write(opt, intent{op: "setfile", key: key, body: value, cond: cond}, putStep(key, value, ct, cond, opt))
	h.blobs.release(sum)
	h.mu.Lock()
	if h.blobRefs[sum] == 0 {
		h.dropped = append(h.dropped, sum) // the write failed or was a replay
		h.blobsDropped.Store(true)
	}
	h.mu.Unlock()
	h.sweepBlobs()
	return res, err
}

// OpenFile returns key's entry and, when it is a stored file, its bytes (the caller closes them).
// For a JSON value the file is nil. ErrNotFound when the key is absent.
func (h *Local) OpenFile(key string) (Entry, io.ReadSeekCloser, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Entry{}, nil, err
	}
	b := h.blobs
	b.mu.Lock() // no sweep between reading the entry and opening its blob
	defer b.mu.Unlock()
	e, err := h.Get(key)
	if err != nil || e.Type == "" {
		return e, nil, err
	}
	fi, err := ParseFileInfo(e.Value)
	if err != nil {
		return e, nil, err
	}
	f, err := os.Open(filepath.Join(b.dir, fi.SHA256))
	if err != nil {
		return e, nil, fmt.Errorf("hub: the bytes of %s are missing: %w", key, err)
	}
	return e, f, nil
}

// refBlobLocked counts a key that now refers to a file.
func (h *Local) refBlobLocked(typ string, value []byte) {
	if typ == "" {
		return
	}
	if fi, err := ParseFileInfo(value); err == nil {
		h.blobRefs[fi.SHA256]++
	}
}

// unrefBlobLocked uncounts a key that no longer refers to a file; at 0 the blob is swept later.
func (h *Local) unrefBlobLocked(typ string, value []byte) {
	if typ == "" {
		return
	}
	fi, err := ParseFileInfo(value)
	if err != nil {
		return
	}
	if h.blobRefs[fi.SHA256]--; h.blobRefs[fi.SHA256] <= 0 {
		delete(h.blobRefs, fi.SHA256)
		if !h.loading {
			h.dropped = append(h.dropped, fi.SHA256)
			h.blobsDropped.Store(true)
		}
	}
}

// sweepBlobs removes the blobs whose reference count fell to 0, unless a write holds them. It
// makes the journal durable first, so no state a restart could bring back refers to them.
func (h *Local) sweepBlobs() {
	if !h.blobsDropped.Load() { // the common case, without a lock
		return
	}
	b := h.blobs
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.backups > 0 {
		return // h.dropped is kept for the sweep at the end of the backup
	}
	h.mu.Lock()
	var garbage []string
	for _, sum := range h.dropped {
		if h.blobRefs[sum] == 0 && b.pending[sum] == 0 {
			garbage = append(garbage, sum)
		}
	}
	h.dropped = nil
	h.blobsDropped.Store(false)
	h.mu.Unlock()
	b.removeLocked(h, garbage)
}

// sweepAllBlobs removes every blob of the directory that no key refers to; with temps, also
// leftover temporary files (only when no write can be in flight, at Open).
func (h *Local) sweepAllBlobs(temps bool) {
	b := h.blobs
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.temp && !b.made || b.backups > 0 {
		return
	}
	des, err := os.ReadDir(b.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.Warn("listing stored files", "dir", b.dir, "err", err)
		}
		return
	}
	b.made = true
	var garbage, stale []string
	h.mu.RLock()
	for _, de := range des {
		name := de.Name()
		switch {
		case isHash(name) && h.blobRefs[name] == 0 && b.pending[name] == 0:
			garbage = append(garbage, name)
		case temps && strings.HasPrefix(name, "tmp-"):
			if err := os.Remove(filepath.Join(b.dir, name)); err == nil {
				stale = append(stale, name)
			}
		}
	}
	h.mu.RUnlock()
	if len(stale) > 0 {
		h.log.Info("removed stale temporary files", "dir", b.dir, "files", stale)
	}
	b.removeLocked(h, garbage)
}

func (b *blobStore) removeLocked(h *Local, garbage []string) {
	if len(garbage) == 0 || b.closed {
		return
	}
	if b.sync != nil {
		if err := b.sync(); err != nil {
			h.log.Warn("not removing unused stored files: the log is not durable", "err", err)
			return
		}
	}
	for _, sum := range garbage {
		if err := os.Remove(filepath.Join(b.dir, sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			h.log.Warn("removing an unused stored file", "sha256", sum, "err", err)
		}
	}
}

// closeBlobs removes a memory-only hub's temporary directory.
func (h *Local) closeBlobs() {
	b := h.blobs
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.temp && b.made {
		os.RemoveAll(b.dir)
	}
}
