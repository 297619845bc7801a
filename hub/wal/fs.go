package wal

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FS is the file layer the log (and the hub's snapshots) use. It is the seam for fault injection:
// OSFS is the real one, waltest.FS an in-memory one that can fail operations and simulate crashes.
//
// Names are slash- or OS-separated paths as accepted by package os. Implementations must be safe
// for concurrent use.
type FS interface {
	// OpenFile opens a file like os.OpenFile. Flags used by this package: O_RDONLY, O_WRONLY,
	// O_CREATE, O_EXCL, O_TRUNC.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove removes a file or an empty directory, like os.Remove. A file's removal is durable
	// only after SyncDir of its directory.
	Remove(name string) error
	// Rename atomically replaces newpath with oldpath. It is durable only after SyncDir of the
	// directory; before that a crash may undo it.
	Rename(oldpath, newpath string) error
	// ReadDir lists a directory sorted by name, like os.ReadDir.
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll creates a directory and its parents, like os.MkdirAll.
	MkdirAll(name string, perm fs.FileMode) error
	// Stat describes a file or directory, like os.Stat.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the directory's entries (creates, renames, removes so far) durable.
	SyncDir(name string) error
}

// File is an open file of an FS. *os.File implements it. A File is used by one goroutine at a time.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	// Sync makes the file's written contents durable (fsync). After a failed Sync the contents
	// are unknown: the caller must not assume a later Sync covers earlier writes.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the open file.
	Stat() (fs.FileInfo, error)
	io.Closer
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile calls os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Remove calls os.Remove.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename calls os.Rename.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// ReadDir calls os.ReadDir.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll calls os.MkdirAll.
func (OSFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }

// Stat calls os.Stat.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// SyncDir opens the directory and fsyncs it.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// WriteFileAtomic replaces path with the bytes write produces, atomically and durably: it writes
// a temporary file path+".tmp" in the same directory, fsyncs and closes it, renames it over path
// and fsyncs the directory. When it returns nil, a crash leaves path with the new contents; when
// it returns an error, path is either untouched or (if only the final directory fsync failed)
// replaced but possibly not durably. Concurrent calls for the same path are not allowed.
func WriteFileAtomic(fsys FS, path string, write func(io.Writer) error) (err error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			fsys.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// RemoveTemps removes the temporary files WriteFileAtomic leaves in dir when the process dies
// during it: the files named <name>.tmp for which match(name) holds. It returns the paths removed
// and an error joining every failure. Call it only when no WriteFileAtomic into dir can be running
// (at start-up). It does not fsync dir: a crash that undoes a removal leaves a file the next call
// removes.
func RemoveTemps(fsys FS, dir string, match func(name string) bool) (removed []string, err error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".tmp")
		if !ok || e.IsDir() || !match(name) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := fsys.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}
