package hub

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

// forEachBlobStore runs body against every BlobStore: in memory, in a directory of the operating
// system's FS and of waltest's.
func forEachBlobStore(t *testing.T, body func(t *testing.T, b BlobStore)) {
	t.Helper()
	stores := []struct {
		name string
		make func(t *testing.T) BlobStore
	}{
		{"memory", func(*testing.T) BlobStore { return NewMemoryBlobStore() }},
		{"os", func(t *testing.T) BlobStore { return NewFSBlobStore(wal.OSFS{}, t.TempDir()+"/blobs") }},
		{"waltest", func(*testing.T) BlobStore { return NewFSBlobStore(waltest.New(1), "/data/blobs") }},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			body(t, s.make(t))
		})
	}
}

func readBlob(t *testing.T, b BlobStore, sum string) []byte {
	t.Helper()
	r, size, err := b.Open(sum)
	if err != nil {
		t.Fatalf("Open %s: %v", sum, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("Open %s: size %d, read %d bytes", sum, size, len(data))
	}
	return data
}

// TestBlobStore: the guarantees of BlobStore, the same for every implementation: content
// addressing, Open with its size and seeking, Remove, List, the limit, and failures that leave
// nothing behind.
func TestBlobStore(t *testing.T) {
	t.Parallel()
	forEachBlobStore(t, func(t *testing.T, b BlobStore) {
		if sums, err := b.List(); err != nil || len(sums) != 0 {
			t.Fatalf("List of a new store: %v, %v", sums, err)
		}
		big := randomBytes(3, 200<<10)
		sum, size, err := b.Put(bytes.NewReader(big), 1<<20)
		if err != nil || sum != hexSum(big) || size != int64(len(big)) {
			t.Fatalf("Put: %s %d %v; want %s %d", sum, size, err, hexSum(big), len(big))
		}
		if got := readBlob(t, b, sum); !bytes.Equal(got, big) {
			t.Fatal("Open gives other bytes")
		}
		// The same bytes again: the same name, one blob.
		if again, _, err := b.Put(iotest.OneByteReader(bytes.NewReader(big[:1000])), 1<<20); err != nil || again != hexSum(big[:1000]) {
			t.Fatalf("Put of a prefix: %s %v", again, err)
		}
		if again, _, err := b.Put(bytes.NewReader(big), 1<<20); err != nil || again != sum {
			t.Fatalf("Put of the same bytes: %s %v", again, err)
		}
		empty, n, err := b.Put(strings.NewReader(""), 10)
		if err != nil || n != 0 || empty != hexSum(nil) {
			t.Fatalf("Put of nothing: %s %d %v", empty, n, err)
		}
		want := []string{sum, hexSum(big[:1000]), empty}
		slices.Sort(want)
		if sums, err := b.List(); err != nil || !slices.Equal(sorted(sums), want) {
			t.Fatalf("List: %v %v, want %v", sums, err, want)
		}
		// Seeking, as http.ServeContent does.
		r, _, err := b.Open(sum)
		if err != nil {
			t.Fatal(err)
		}
		if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(big)) {
			t.Fatalf("Seek to the end: %d %v", end, err)
		}
		if _, err := r.Seek(100, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 10)
		if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, big[100:110]) {
			t.Fatalf("read after Seek: %q %v", head, err)
		}
		r.Close()

		// Failures leave nothing behind.
		if _, _, err := b.Put(bytes.NewReader(big), 1000); !errors.Is(err, ErrValueTooLarge) {
			t.Fatalf("Put past max: %v, want ErrValueTooLarge", err)
		}
		broken := errors.New("the client went away")
		if _, _, err := b.Put(io.MultiReader(bytes.NewReader(big[:5000]), iotest.ErrReader(broken)), 1<<20); !errors.Is(err, broken) {
			t.Fatalf("Put from a failing reader: %v", err)
		}
		if sums, _ := b.List(); !slices.Equal(sorted(sums), want) {
			t.Fatalf("List after failed Puts: %v, want %v", sums, want)
		}
		if fb, ok := b.(*FSBlobStore); ok {
			if temps, err := fb.RemoveTemps(); err != nil || len(temps) != 0 {
				t.Fatalf("temporary files left by failed Puts: %v %v", temps, err)
			}
		}

		if err := b.Remove(sum); err != nil {
			t.Fatal(err)
		}
		if err := b.Remove(sum); err != nil {
			t.Fatalf("Remove of an absent blob: %v", err)
		}
		if _, _, err := b.Open(sum); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open of a removed blob: %v, want fs.ErrNotExist", err)
		}
		if _, _, err := b.Open("../../etc/passwd"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open of a name that is no sha256: %v", err)
		}
		if sums, _ := b.List(); slices.Contains(sums, sum) || len(sums) != 2 {
			t.Fatalf("List after Remove: %v", sums)
		}
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestFSBlobStoreCrash crashes waltest's disk at every point of a run of Puts. After each crash:
// every blob whose Put returned nil is there, whole; every name that is a sha256 holds bytes that
// hash to it (no blob is visible half-written); temporary files are all RemoveTemps leaves.
func TestFSBlobStoreCrash(t *testing.T) {
	t.Parallel()
	contents := make([][]byte, 6)
	for i := range contents {
		contents[i] = randomBytes(uint64(i), 1+i*7000)
	}
	const dir = "/data/blobs"
	crashes := 0
	for n := 1; ; n++ {
		fsys := waltest.New(uint64(n))
		fsys.CrashAfter(n)
		b := NewFSBlobStore(fsys, dir)
		var acked []string
		for i, c := range contents {
			var r io.Reader = bytes.NewReader(c)
			if i%2 == 1 {
				r = iotest.HalfReader(r) // more, smaller writes
			}
			sum, _, err := b.Put(r, 1<<20)
			if err != nil {
				if !errors.Is(err, waltest.ErrCrashed) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("crash after %d operations: Put: %v, want ErrUnavailable and ErrCrashed", n, err)
				}
				break
			}
			acked = append(acked, sum)
		}
		if !fsys.Crashed() {
			break // the run ended before the crash: every point is covered
		}
		crashes++
		after := fsys.Crash()
		checkBlobDir(t, after, dir, acked, "crash after "+strconv.Itoa(n)+" operations")
		b = NewFSBlobStore(after, dir)
		if _, err := b.RemoveTemps(); err != nil {
			t.Fatal(err)
		}
		if des, _ := after.ReadDir(dir); len(des) > len(contents) {
			t.Fatalf("crash after %d operations: %d files after RemoveTemps", n, len(des))
		}
		// The store goes on on the disk that survived.
		if sum, _, err := b.Put(bytes.NewReader(contents[0]), 1<<20); err != nil || sum != hexSum(contents[0]) {
			t.Fatalf("crash after %d operations: Put after the crash: %v", n, err)
		}
	}
	if crashes < 6*5 {
		t.Fatalf("only %d crash points", crashes)
	}
}

// checkBlobDir checks a blob directory after a crash: every acknowledged blob is there and
// matches its name, and so does every other blob.
func checkBlobDir(t *testing.T, fsys *waltest.FS, dir string, acked []string, what string) {
	t.Helper()
	des, err := fsys.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: %v", what, err)
	}
	present := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		switch {
		case isHash(name):
			data, err := fsys.ReadFile(dir + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if hexSum(data) != name {
				t.Fatalf("%s: blob %s holds %d bytes that hash to %s", what, name, len(data), hexSum(data))
			}
			present[name] = true
		case strings.HasPrefix(name, blobTempPrefix):
		default:
			t.Fatalf("%s: a stray file %s", what, name)
		}
	}
	for _, sum := range acked {
		if !present[sum] {
			t.Fatalf("%s: acknowledged blob %s lost", what, sum)
		}
	}
}
