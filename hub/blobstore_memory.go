package hub

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sync"
)

// MemoryBlobStore is a BlobStore in memory, for a memory-only hub: it writes nothing to disk, and
// its blobs live as long as it does. Each blob's bytes sit whole in memory.
type MemoryBlobStore struct {
	mu    sync.RWMutex
	blobs map[string][]byte
}

var _ BlobStore = (*MemoryBlobStore)(nil)

// NewMemoryBlobStore returns an empty blob store in memory.
func NewMemoryBlobStore() *MemoryBlobStore {
	return &MemoryBlobStore{blobs: make(map[string][]byte)}
}

// Put implements BlobStore. The blob appears once all its bytes are read.
func (b *MemoryBlobStore) Put(r io.Reader, max int64) (string, int64, error) {
	var buf bytes.Buffer
	sum, size, err := copyBlob(&buf, r, max)
	if err != nil {
		return "", 0, err
	}
	b.mu.Lock()
	if _, ok := b.blobs[sum]; !ok {
		b.blobs[sum] = buf.Bytes()
	}
	b.mu.Unlock()
	return sum, size, nil
}

// Open implements BlobStore.
func (b *MemoryBlobStore) Open(sum string) (io.ReadSeekCloser, int64, error) {
	b.mu.RLock()
	data, ok := b.blobs[sum]
	b.mu.RUnlock()
	if !ok {
		return nil, 0, fmt.Errorf("hub: blob %.64q: %w", sum, fs.ErrNotExist)
	}
	return memoryBlob{bytes.NewReader(data)}, int64(len(data)), nil
}

// memoryBlob reads a blob's bytes, which never change; Close has nothing to release.
type memoryBlob struct{ *bytes.Reader }

func (memoryBlob) Close() error { return nil }

// Remove implements BlobStore.
func (b *MemoryBlobStore) Remove(sum string) error {
	b.mu.Lock()
	delete(b.blobs, sum)
	b.mu.Unlock()
	return nil
}

// List implements BlobStore, in ascending order.
func (b *MemoryBlobStore) List() ([]string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Sorted(maps.Keys(b.blobs)), nil
}
