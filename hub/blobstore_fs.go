package hub

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/statehub/statehub/hub/wal"
)

// blobTempPrefix starts the name of a blob being written; Put renames it to the blob's sha256.
const blobTempPrefix = "tmp-"

// FSBlobStore is a BlobStore in one directory of a wal.FS: <dir>/<sha256> holds a blob's bytes.
// Put writes them to a temporary file <dir>/tmp-<random>, fsyncs and closes it, renames it to its
// sha256 and fsyncs the directory, all through the FS: a crash (waltest's crash model) leaves
// either no blob or the whole blob under its name, and after Put returns, the whole blob. The
// directory is made, and its parent fsynced, on the first Put. A kill during a Put can leave a
// temporary file; RemoveTemps removes them.
type FSBlobStore struct {
	fs   wal.FS
	dir  string
	made atomic.Bool // dir exists, durably
}

var _ BlobStore = (*FSBlobStore)(nil)

// NewFSBlobStore returns the blob store in dir of fsys (nil for the operating system's). It
// touches nothing until the first Put.
func NewFSBlobStore(fsys wal.FS, dir string) *FSBlobStore {
	if fsys == nil {
		fsys = wal.OSFS{}
	}
	return &FSBlobStore{fs: fsys, dir: dir}
}

// Dir returns the directory the blobs are in.
func (b *FSBlobStore) Dir() string { return b.dir }

// ensureDir makes the directory on first use, durably: a blob in it survives a crash only if the
// directory's own entry does.
func (b *FSBlobStore) ensureDir() error {
	if b.made.Load() {
		return nil
	}
	if err := b.fs.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	if err := b.fs.SyncDir(filepath.Dir(b.dir)); err != nil {
		return err
	}
	b.made.Store(true)
	return nil
}

// Put implements BlobStore: temporary file, fsync, rename to the sha256, fsync of the directory.
// On failure the temporary file is removed. If only the final fsync of the directory fails, the
// blob may be visible, whole, under its name without being durable; Put still fails.
func (b *FSBlobStore) Put(r io.Reader, max int64) (sum string, size int64, err error) {
	if err := b.ensureDir(); err != nil {
		return "", 0, unavailable(err)
	}
	tmp := filepath.Join(b.dir, blobTempPrefix+rand.Text())
	f, err := b.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, unavailable(err)
	}
	open, placed := true, false
	defer func() {
		if open {
			f.Close()
		}
		if !placed {
			b.fs.Remove(tmp)
		}
	}()
	if sum, size, err = copyBlob(f, r, max); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, unavailable(err)
	}
	open = false
	if err := f.Close(); err != nil {
		return "", 0, unavailable(err)
	}
	if err := b.fs.Rename(tmp, filepath.Join(b.dir, sum)); err != nil {
		return "", 0, unavailable(err)
	}
	placed = true
	if err := b.fs.SyncDir(b.dir); err != nil {
		return "", 0, unavailable(err)
	}
	return sum, size, nil
}

// Open implements BlobStore. On the operating system's FS the reader is the *os.File.
func (b *FSBlobStore) Open(sum string) (io.ReadSeekCloser, int64, error) {
	if !isHash(sum) {
		return nil, 0, fmt.Errorf("hub: %q is not a blob's name: %w", sum, fs.ErrNotExist)
	}
	f, err := b.fs.OpenFile(filepath.Join(b.dir, sum), os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if rsc, ok := f.(io.ReadSeekCloser); ok {
		return rsc, st.Size(), nil
	}
	return sectionFile{io.NewSectionReader(f, 0, st.Size()), f}, st.Size(), nil
}

// sectionFile reads and seeks a wal.File that cannot seek by itself, through its ReadAt.
type sectionFile struct {
	*io.SectionReader
	io.Closer
}

// Remove implements BlobStore. It does not fsync the directory.
func (b *FSBlobStore) Remove(sum string) error {
	if !isHash(sum) {
		return fmt.Errorf("hub: %q is not a blob's name", sum)
	}
	if err := b.fs.Remove(filepath.Join(b.dir, sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List implements BlobStore: the names in the directory that are sha256s. A directory not made
// yet holds none.
func (b *FSBlobStore) List() ([]string, error) {
	des, err := b.fs.ReadDir(b.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sums []string
	for _, de := range des {
		if isHash(de.Name()) && !de.IsDir() {
			sums = append(sums, de.Name())
		}
	}
	return sums, nil
}

// RemoveTemps removes the temporary files of Puts that a kill interrupted, and returns the paths
// removed and an error joining every failure. Call it only when no Put can be running (at
// start-up).
func (b *FSBlobStore) RemoveTemps() (removed []string, err error) {
	des, err := b.fs.ReadDir(b.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), blobTempPrefix) || de.IsDir() {
			continue
		}
		path := filepath.Join(b.dir, de.Name())
		if err := b.fs.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// removeAll removes every blob and temporary file, then the directory, for a restore that failed.
// It does not fsync: the data directory it empties is still not in use.
func (b *FSBlobStore) removeAll() {
	sums, _ := b.List()
	for _, sum := range sums {
		b.Remove(sum)
	}
	b.RemoveTemps()
	b.fs.Remove(b.dir)
}
