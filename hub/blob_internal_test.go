package hub

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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

// TestSetFileFullDisk: a file upload on a full disk fails with ErrUnavailable (the cause kept for
// errors.Is), leaves no temporary file and no key, and fails that write alone: the hub goes on.
func TestSetFileFullDisk(t *testing.T) {
	t.Parallel()
	forBoth := []struct {
		name string
		open func(t *testing.T) *Hub
	}{
		{"memory", func(*testing.T) *Hub { return New(Config{Logger: discardLogger()}) }},
		{"disk", func(t *testing.T) *Hub { return openTestStore(t, Config{}, StoreConfig{Dir: t.TempDir()}) }},
	}
	for _, tc := range forBoth {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.open(t)
			defer h.Close()
			var made []string
			h.local().blobs.create = func(dir string) (blobTemp, error) {
				f, err := os.CreateTemp(dir, "tmp-*")
				if err != nil {
					return nil, err
				}
				made = append(made, f.Name())
				return &fullFile{File: f, room: 10}, nil
			}
			_, err := h.SetFile("/f", "text/csv", strings.NewReader(strings.Repeat("x", 100)), Cond{}, WriteOptions{})
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("SetFile on a full disk: %v, want ErrUnavailable and ENOSPC", err)
			}
			if len(made) != 1 {
				t.Fatalf("temporary files made: %v", made)
			}
			if _, err := os.Stat(made[0]); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("temporary file left behind: %v", err)
			}
			if des, _ := os.ReadDir(filepath.Dir(made[0])); len(des) != 0 {
				t.Fatalf("blob directory holds %d files", len(des))
			}
			if _, err := h.Get("/f"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after the failed upload: %v", err)
			}
			if _, err := h.Set("/j", []byte(`1`), Cond{}, WriteOptions{}); err != nil {
				t.Fatalf("a JSON write after the failed upload: %v", err)
			}
			h.local().blobs.create = createTemp // space freed
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
