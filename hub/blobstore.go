package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// BlobStore holds the bytes of stored files. It is the persistence seam for them, as Journal is
// for commits: FSBlobStore keeps them in a directory of a wal.FS (the single binary, and the
// shared directory of a cluster), MemoryBlobStore in memory (a memory-only hub, which writes
// nothing to disk).
//
// A blob is content-addressed: its name is the lowercase hex SHA-256 of its bytes (64 digits),
// so a name always stands for the same bytes, a blob never changes once it is there, and putting
// bytes the store already holds is harmless. A store knows nothing of keys or reference counts:
// the hub decides what to remove, and never removes a blob that a durable commit refers to.
//
// Implementations must be safe for concurrent use.
type BlobStore interface {
	// Put streams r into the store, reading it to its end (io.EOF) before the blob appears under
	// its name, and returns the SHA-256 (hex) and size of what it read. When Put returns nil the
	// blob is durable: a crash keeps it, whole, under that name. A blob is never visible under its
	// name with only part of its bytes. More than max bytes fail with ErrValueTooLarge, a failure
	// of the storage with ErrUnavailable (wrapping its cause), a failure to read r with that
	// error; on failure no temporary data stays behind.
	Put(r io.Reader, max int64) (sum string, size int64, err error)
	// Open returns the bytes of the blob named sum and their size; the caller closes them. An
	// absent blob fails with an error wrapping fs.ErrNotExist.
	Open(sum string) (io.ReadSeekCloser, int64, error)
	// Remove removes the blob named sum; an absent one is no error. The removal need not be
	// durable: a crash may bring the blob back, and the next sweep removes it again.
	Remove(sum string) error
	// List returns the names of every blob stored, for sweeping the ones no key refers to. Blobs
	// that Put makes while List runs may be missing from it.
	List() ([]string, error)
}

// unavailable reports a failure of the storage under a blob store, without failing the journal.
func unavailable(err error) error {
	return fmt.Errorf("%w: storing a file: %w", ErrUnavailable, err)
}

// copyBlob copies at most max bytes of r to dst and returns their SHA-256 (hex) and size. A
// failure of dst wraps ErrUnavailable; more than max bytes fail with ErrValueTooLarge.
func copyBlob(dst io.Writer, r io.Reader, max int64) (sum string, size int64, err error) {
	hash := sha256.New()
	fw := &fileWriter{w: dst}
	size, err = io.Copy(io.MultiWriter(fw, hash), io.LimitReader(r, max+1))
	if fw.err != nil {
		return "", 0, unavailable(fw.err)
	}
	if err != nil {
		return "", 0, fmt.Errorf("hub: reading the file: %w", err)
	}
	if size > max {
		return "", 0, fmt.Errorf("%w: a file may hold at most %d bytes", ErrValueTooLarge, max)
	}
	return hex.EncodeToString(hash.Sum(nil)), size, nil
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
