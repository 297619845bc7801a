package wal_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func TestWriteFileAtomicOS(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	path := filepath.Join(d, "snapshot")
	if err := wal.WriteFileAtomic(wal.OSFS{}, path, writeString("v1")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := wal.WriteFileAtomic(nil, path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("WriteFileAtomic = %v, want the write error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "v1" {
		t.Fatalf("failed write changed the file: %q", b)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file left behind: %v", err)
	}
}

// TestWriteFileAtomicCrash crashes at every mutating operation of a replacement: the file is
// always entirely old or entirely new, and entirely new once WriteFileAtomic has returned nil.
func TestWriteFileAtomicCrash(t *testing.T) {
	t.Parallel()
	const path = "/snap/state.json"
	for k := 1; k < 100; k++ {
		fsys := waltest.New(uint64(k))
		if err := fsys.MkdirAll("/snap", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := wal.WriteFileAtomic(fsys, path, writeString("old contents")); err != nil {
			t.Fatal(err)
		}
		fsys.CrashAfter(k)
		err := wal.WriteFileAtomic(fsys, path, writeString("new contents, longer"))
		crashed := fsys.Crashed()
		after := fsys.Crash()
		b, rerr := after.ReadFile(path)
		got := string(b)
		switch {
		case rerr != nil:
			t.Fatalf("crash at op %d: file lost: %v", k, rerr)
		case err == nil && got != "new contents, longer":
			t.Fatalf("crash at op %d: returned nil but file holds %q", k, got)
		case got != "old contents" && got != "new contents, longer":
			t.Fatalf("crash at op %d: torn file %q", k, got)
		}
		if !crashed {
			return // every operation has been a crash point
		}
	}
	t.Fatal("still crashing after 100 operations")
}
