package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"mime"
	"strings"
	"sync"
)

// Stored files. A write with a non-JSON content type stores raw bytes: they stream into the blob
// store (a BlobStore, see blobstore.go), so a hub from Open never holds them whole in memory. The
// key's value is then a small JSON description of the file, which is what reads of the tree,
// listings, snapshots and events carry:
//
//	{"type":"image/svg+xml","size":123,"sha256":"<64 hex digits>"}
//
// and Entry.Type holds the content type. OpenFile gives the bytes back.
//
// The blob store is content-addressed: a file's bytes are durable under their sha256 before the
// commit that refers to it is journaled. A hub from Open keeps them in <data>/blobs on its
// StoreConfig.FS (FSBlobStore); a memory-only hub in memory (MemoryBlobStore). The hub counts the
// keys that refer to each blob (blobRefs). A blob whose count falls to 0 is removed after its
// commit (sweepBlobs), once the journal is durable up to that commit, so a crash never brings
// back a key whose bytes are gone; every snapshot and every Open also sweep the whole store for
// blobs nobody refers to. A write holds its blob (blobStore.pending) from the moment its bytes
// are read to their end, before the blob can appear under its name, until its commit is applied:
// no sweep removes it meanwhile. While a backup streams, nothing is swept: the blobs of the state
// it froze stay readable, and it sweeps when it ends.
//
// A file whose bytes cannot be stored (a full disk, an unwritable directory) fails that one write
// with ErrUnavailable and leaves no temporary file behind; the journal, and so every other write,
// is unaffected.
//
// Lock order: blobStore.mu, then Local's mu.

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

// blobStore is the bookkeeping of a store over its BlobStore: the blobs that writes hold until
// their commit is applied, and the backups that keep sweeps away. See the comment at the top of
// this file.
type blobStore struct {
	store BlobStore
	sync  func() error // makes every commit so far durable before a sweep removes blobs; nil in memory

	mu      sync.Mutex
	pending map[string]int // blobs held by writes whose commit is not applied yet: never swept
	backups int            // backups streaming (WriteBackup): nothing is swept meanwhile
	closed  bool
}

func newBlobStore(store BlobStore, sync func() error) *blobStore {
	return &blobStore{store: store, sync: sync, pending: make(map[string]int)}
}

// put streams r into the store and returns its hash and size, and holds the blob as pending until
// release. More than max bytes fail with ErrValueTooLarge and leave nothing behind; a failure of
// the storage fails with ErrUnavailable.
//
// The hold starts when r reaches its end, which is before the blob can appear under its name
// (BlobStore.Put reads r to its end first): a sweep never sees the blob unheld, even when a key
// that held the same bytes drops them meanwhile.
func (b *blobStore) put(r io.Reader, max int64) (string, int64, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return "", 0, ErrClosed
	}
	hr := &holdingReader{r: r, hash: sha256.New(), hold: b.hold}
	sum, size, err := b.store.Put(hr, max)
	if err == nil && sum != hr.held {
		err = fmt.Errorf("%w: the blob store named a file %s, its bytes hash to %q", ErrUnavailable, sum, hr.held)
	}
	if err != nil {
		if hr.held != "" {
			b.release(hr.held)
		}
		return "", 0, err
	}
	return sum, size, nil
}

// hold keeps sum from being swept until release.
func (b *blobStore) hold(sum string) {
	b.mu.Lock()
	b.pending[sum]++
	b.mu.Unlock()
}

// release ends put's hold on a blob: its commit is applied (or failed).
func (b *blobStore) release(sum string) {
	b.mu.Lock()
	if b.pending[sum]--; b.pending[sum] <= 0 {
		delete(b.pending, sum)
	}
	b.mu.Unlock()
}

// holdingReader hashes what it reads and, at the end of r, holds the blob those bytes name.
type holdingReader struct {
	r    io.Reader
	hash hash.Hash
	hold func(sum string)
	held string // the sum held, once r has ended
}

func (hr *holdingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.hash.Write(p[:n])
	if err == io.EOF && hr.held == "" {
		hr.held = hex.EncodeToString(hr.hash.Sum(nil))
		hr.hold(hr.held)
	}
	return n, err
}

// MaxFileBytes returns the largest file SetFile stores.
func (h *Local) MaxFileBytes() int64 { return h.cfg.MaxFileBytes }

// SetFile stores the bytes of body (at most Config.MaxFileBytes) as a file of the given content
// type under key, if cond holds. The bytes stream into the blob store and are durable before the
// commit is journaled; the key's value becomes the file's description (see FileInfo).
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
	f, _, err := b.store.Open(fi.SHA256)
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

// sweepAllBlobs removes every blob of the store that no key refers to and no write holds.
func (h *Local) sweepAllBlobs() {
	b := h.blobs
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.backups > 0 || b.closed {
		return
	}
	sums, err := b.store.List()
	if err != nil {
		h.log.Warn("listing stored files", "err", err)
		return
	}
	var garbage []string
	h.mu.RLock()
	for _, sum := range sums {
		if h.blobRefs[sum] == 0 && b.pending[sum] == 0 {
			garbage = append(garbage, sum)
		}
	}
	h.mu.RUnlock()
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
		if err := b.store.Remove(sum); err != nil {
			h.log.Warn("removing an unused stored file", "sha256", sum, "err", err)
		}
	}
}

// closeBlobs ends the blob store's use: later writes of files fail with ErrClosed, and nothing
// more is swept.
func (h *Local) closeBlobs() {
	b := h.blobs
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
}
