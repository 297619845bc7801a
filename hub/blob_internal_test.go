package hub

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

// fullFile is a temporary blob file on a disk that fills up after room bytes.
type fullFile struct {
	*os.File
	room int
}

func (f *fullFile) Write(p []byte) (int, error) {
	if len(p) > f.room {
		n, _ := f.File.Write(p[:f.room])
		f.room = 0
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.room -= len(p)
	return f.File.Write(p)
}

// fullBlobsFS is the operating system's FS on which stored files' temporary files fill the disk
// after 10 bytes, while full is set.
type fullBlobsFS struct {
	wal.OSFS
	full atomic.Bool
	made []string // the temporary files opened
	mu   sync.Mutex
}

func (f *fullBlobsFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasPrefix(filepath.Base(name), blobTempPrefix) || !f.full.Load() {
		return file, err
	}
	f.mu.Lock()
	f.made = append(f.made, name)
	f.mu.Unlock()
	return &fullFile{File: file.(*os.File), room: 10}, nil
}

// TestSetFileFullDisk: a file upload on a full disk fails with ErrUnavailable (the cause kept for
// errors.Is), leaves no temporary file and no key, and fails that write alone: the hub goes on.
// On the operating system's disk and on waltest's.
func TestSetFileFullDisk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// open returns a hub whose stored files' writes fail with ENOSPC until free is called, and
		// the names in its blob directory.
		open func(t *testing.T) (h *Hub, free func(), names func() []string)
	}{
		{"os", func(t *testing.T) (*Hub, func(), func() []string) {
			dir := t.TempDir()
			fsys := &fullBlobsFS{}
			fsys.full.Store(true)
			h := openTestStore(t, Config{}, StoreConfig{Dir: dir, FS: fsys})
			return h, func() { fsys.full.Store(false) }, func() []string {
				fsys.mu.Lock()
				if len(fsys.made) != 1 {
					t.Errorf("temporary files made: %v", fsys.made)
				}
				fsys.mu.Unlock()
				return dirNames(t, filepath.Join(dir, "blobs"))
			}
		}},
		{"waltest", func(t *testing.T) (*Hub, func(), func() []string) {
			fsys := waltest.New(1)
			fsys.SetFault(func(op waltest.Op, name string) error {
				if op == waltest.OpWrite && strings.HasPrefix(name, "/data/blobs/") {
					return syscall.ENOSPC
				}
				return nil
			})
			h := openTestStore(t, Config{}, StoreConfig{Dir: "/data", FS: fsys})
			return h, func() { fsys.SetFault(nil) }, func() []string {
				des, err := fsys.ReadDir("/data/blobs")
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, de := range des {
					names = append(names, de.Name())
				}
				return names
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, free, names := tc.open(t)
			defer h.Close()
			_, err := h.SetFile("/f", "text/csv", strings.NewReader(strings.Repeat("x", 100)), Cond{}, WriteOptions{})
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("SetFile on a full disk: %v, want ErrUnavailable and ENOSPC", err)
			}
			if left := names(); len(left) != 0 {
				t.Fatalf("the blob directory holds %v", left)
			}
			if _, err := h.Get("/f"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after the failed upload: %v", err)
			}
			if _, err := h.Set("/j", []byte(`1`), Cond{}, WriteOptions{}); err != nil {
				t.Fatalf("a JSON write after the failed upload: %v", err)
			}
			free()
			if _, err := h.SetFile("/f", "text/csv", strings.NewReader("a,b"), Cond{}, WriteOptions{}); err != nil {
				t.Fatalf("SetFile once there is room: %v", err)
			}
		})
	}
}

// TestSetFileUnwritableDir: a blob directory that cannot be made fails the upload with
// ErrUnavailable, not as an internal error.
func TestSetFileUnwritableDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blobs"), nil, 0o644); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	h := openTestStore(t, Config{}, StoreConfig{Dir: dir})
	defer h.Close()
	_, err := h.SetFile("/f", "text/csv", strings.NewReader("a,b"), Cond{}, WriteOptions{})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("SetFile: %v, want ErrUnavailable and ENOTDIR", err)
	}
}

// TestSetFileHoldsItsBlob: a write holds its blob from the moment the bytes are read, before they
// appear under their name. Here the bytes /b stores are /a's; /b's write is stopped just after
// its blob is renamed into place, while /a is deleted (the blob's count falls to 0, and the sweep
// runs) and a checkpoint sweeps the whole directory. Neither removes the blob: /b's bytes are
// there once its write is acknowledged.
func TestSetFileHoldsItsBlob(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	h := openTestStore(t, Config{}, StoreConfig{Dir: "/data", FS: fsys})
	defer h.Close()
	body := randomBytes(5, 10<<10)
	setFile(t, h, "/a", "text/plain", body)

	reached, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpSyncDir && name == "/data/blobs" {
			once.Do(func() {
				close(reached)
				<-resume
			})
		}
		return nil
	})
	done := make(chan error)
	go func() {
		_, err := h.SetFile("/b", "text/plain", bytes.NewReader(body), Cond{}, WriteOptions{})
		done <- err
	}()
	<-reached // /b's blob is in place, its write not acknowledged yet
	if _, err := h.Delete("/a", Cond{}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("SetFile /b: %v", err)
	}
	if _, got := fileBytes(t, h, "/b"); !bytes.Equal(got, body) {
		t.Fatal("/b has other bytes")
	}
	// Once /b is gone too, the blob is swept.
	if _, err := h.Delete("/b", Cond{}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if des, _ := fsys.ReadDir("/data/blobs"); len(des) != 0 {
		t.Fatalf("the blob directory holds %d files after every key is gone", len(des))
	}
}
