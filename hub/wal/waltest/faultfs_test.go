package waltest_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/statehub/statehub/hub/wal/waltest"
)

func create(t *testing.T, fsys *waltest.FS, name string) interface {
	io.Writer
	Sync() error
} {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCrashKeepsSyncedBytesAndAPrefix(t *testing.T) {
	t.Parallel()
	sawPartial, sawNone := false, false
	for seed := range uint64(200) {
		fsys := waltest.New(seed)
		fsys.MkdirAll("/d", 0o755)
		f := create(t, fsys, "/d/f")
		if err := fsys.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("synced|"))
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("unsynced"))
		got, err := fsys.Crash().ReadFile("/d/f")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix([]byte("synced|unsynced"), got) || len(got) < len("synced|") {
			t.Fatalf("seed %d: after crash %q", seed, got)
		}
		sawNone = sawNone || len(got) == len("synced|")
		sawPartial = sawPartial || (len(got) > len("synced|") && len(got) < len("synced|unsynced"))
	}
	if !sawPartial || !sawNone {
		t.Fatalf("crashes not varied: partial=%v none=%v", sawPartial, sawNone)
	}
}

// TestCrashKeepsAPrefixOfWritesIntoZeros: bytes written over the synced zeros of a file extended by
// Truncate survive as a prefix, with the zeros after it; the size stays.
func TestCrashKeepsAPrefixOfWritesIntoZeros(t *testing.T) {
	t.Parallel()
	const synced, written = "synced|", "unsynced"
	want := synced + written
	sawPartial, sawNone, sawAll := false, false, false
	for seed := range uint64(200) {
		fsys := waltest.New(seed)
		fsys.MkdirAll("/d", 0o755)
		f, err := fsys.OpenFile("/d/f", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(synced))
		if err := f.Truncate(32); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(f.Sync(), fsys.SyncDir("/d")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(written), int64(len(synced))); err != nil {
			t.Fatal(err)
		}
		got, err := fsys.Crash().ReadFile("/d/f")
		if err != nil {
			t.Fatal(err)
		}
		n := len(bytes.TrimRight(got, "\x00"))
		if len(got) != 32 || n < len(synced) || !bytes.HasPrefix([]byte(want), got[:n]) {
			t.Fatalf("seed %d: after crash %q", seed, got)
		}
		sawNone = sawNone || n == len(synced)
		sawAll = sawAll || n == len(want)
		sawPartial = sawPartial || (n > len(synced) && n < len(want))
	}
	if !sawPartial || !sawNone || !sawAll {
		t.Fatalf("crashes not varied: partial=%v none=%v all=%v", sawPartial, sawNone, sawAll)
	}
}

func TestCrashMayForgetUnsyncedNamespaceChanges(t *testing.T) {
	t.Parallel()
	lost, kept := 0, 0
	for seed := range uint64(200) {
		fsys := waltest.New(seed)
		fsys.MkdirAll("/d", 0o755)
		f := create(t, fsys, "/d/tmp")
		f.Write([]byte("x"))
		f.Sync()
		if err := fsys.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Rename("/d/tmp", "/d/final"); err != nil {
			t.Fatal(err)
		}
		after := fsys.Crash()
		_, errFinal := after.Stat("/d/final")
		_, errTmp := after.Stat("/d/tmp")
		switch {
		case errFinal == nil && errTmp != nil:
			kept++
		case errFinal != nil && errTmp == nil:
			lost++
		default:
			t.Fatalf("seed %d: rename half applied: final=%v tmp=%v", seed, errFinal, errTmp)
		}
	}
	if lost == 0 || kept == 0 {
		t.Fatalf("rename before SyncDir: lost %d, kept %d; want both", lost, kept)
	}

	// After SyncDir the rename always survives.
	fsys := waltest.New(1)
	fsys.MkdirAll("/d", 0o755)
	create(t, fsys, "/d/a")
	fsys.Rename("/d/a", "/d/b")
	fsys.SyncDir("/d")
	if _, err := fsys.Crash().Stat("/d/b"); err != nil {
		t.Fatalf("synced rename lost: %v", err)
	}
}

func TestCrashedFSFailsEverything(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	fsys.MkdirAll("/d", 0o755)
	f := create(t, fsys, "/d/f")
	fsys.CrashAfter(2)
	if _, err := f.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, waltest.ErrCrashed) {
		t.Fatalf("crashing Sync = %v", err)
	}
	if _, err := f.Write([]byte("b")); !errors.Is(err, waltest.ErrCrashed) {
		t.Fatalf("Write after crash = %v", err)
	}
	if _, err := fsys.Stat("/d/f"); !errors.Is(err, waltest.ErrCrashed) {
		t.Fatalf("Stat after crash = %v", err)
	}
	first, again := fsys.Crash(), fsys.Crash()
	if !fsys.Crashed() || first != again {
		t.Fatal("Crash is not idempotent")
	}
}

func TestFaultHook(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	fsys.MkdirAll("/d", 0o755)
	f := create(t, fsys, "/d/f")
	eio := errors.New("EIO")
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpWrite && name == "/d/f" {
			return eio
		}
		return nil
	})
	if _, err := f.Write([]byte("x")); !errors.Is(err, eio) {
		t.Fatalf("Write = %v", err)
	}
	fsys.SetFault(nil)
	if b, _ := fsys.ReadFile("/d/f"); len(b) != 0 {
		t.Fatalf("failed write changed the file: %q", b)
	}
}

func TestTruncateAfterSync(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for seed := range uint64(50) {
		fsys := waltest.New(seed)
		fsys.MkdirAll("/d", 0o755)
		fsys.WriteFile("/d/f", []byte("0123456789"))
		f, err := fsys.OpenFile("/d/f", os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(4)
		f.Write([]byte("ab")) // at offset 0: overwrites below the synced length
		b, _ := fsys.Crash().ReadFile("/d/f")
		seen[string(b)] = true
	}
	if len(seen) != 2 || !seen["0123456789"] || !seen["ab23"] {
		t.Fatalf("contents after crash: %v, want the synced or the current contents", seen)
	}
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	fsys.MkdirAll("/d", 0o755)
	fsys.WriteFile("/d/a", []byte("0123456789"))
	fsys.SetCapacity(14)
	f := create(t, fsys, "/d/b")
	if n, err := f.Write([]byte("abcdef")); n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write past the capacity = %d, %v; want 4, ENOSPC", n, err)
	}
	if b, _ := fsys.ReadFile("/d/b"); string(b) != "abcd" {
		t.Fatalf("a write past the capacity wrote %q, want what fits", b)
	}
	if n, err := f.Write([]byte("x")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk = %d, %v", n, err)
	}
	if fsys.Used() != 14 {
		t.Fatalf("Used = %d, want 14", fsys.Used())
	}
	if err := fsys.Remove("/d/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("efgh")); err != nil {
		t.Fatalf("Write after freeing space: %v", err)
	}
	fsys.SetCapacity(-1)
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("Write with no bound: %v", err)
	}
}

// TestRemoveDir: Remove removes an empty directory, as os.Remove does, and refuses one that holds
// anything. The removal survives a crash, and the files removed from it before stay removed.
func TestRemoveDir(t *testing.T) {
	t.Parallel()
	for seed := range uint64(50) {
		fsys := waltest.New(seed)
		fsys.MkdirAll("/d/sub", 0o755)
		create(t, fsys, "/d/f")
		if err := fsys.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Remove("/d"); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Fatalf("Remove of a directory with a file and a directory: %v, want ENOTEMPTY", err)
		}
		if err := fsys.Remove("/d/sub"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Remove("/d/f"); err != nil { // not synced: only the directory's removal syncs it
			t.Fatal(err)
		}
		if err := fsys.Remove("/d"); err != nil {
			t.Fatalf("Remove of an empty directory: %v", err)
		}
		if _, err := fsys.Stat("/d"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Stat of the removed directory: %v", err)
		}
		after := fsys.Crash()
		if _, err := after.Stat("/d"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("seed %d: the removed directory is back after a crash: %v", seed, err)
		}
		if _, err := after.ReadFile("/d/f"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("seed %d: a file of the removed directory is back after a crash: %v", seed, err)
		}
	}
}
