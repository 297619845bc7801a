package hub_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
)

func readFile(t *testing.T, h *hub.Hub, key string) (hub.Entry, []byte) {
	t.Helper()
	e, f, err := h.OpenFile(key)
	if err != nil {
		t.Fatalf("OpenFile %s: %v", key, err)
	}
	if f == nil {
		t.Fatalf("%s is not a file: %s", key, e.Value)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return e, b
}

func blobNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestFileRoundTrip(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{MaxFileBytes: 1 << 20})
		body := []byte("<svg xmlns=\"http://www.w3.org/2000/svg\">\x00\xff</svg>")
		sub := must(h.Subscribe("/f", hub.SubscribeOptions{}))
		defer sub.Close()
		res, err := h.SetFile("/f", "image/svg+xml", bytes.NewReader(body), hub.Cond{}, hub.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		want := `{"type":"image/svg+xml","size":` + strconv.Itoa(len(body)) + `,"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
		e, got := readFile(t, h, "/f")
		if !bytes.Equal(got, body) || e.Type != "image/svg+xml" || string(e.Value) != want || e.Seq != res.Seq {
			t.Fatalf("entry %+v, bytes %q", e, got)
		}
		if ev, _ := sub.Next(); ev.Type != "image/svg+xml" || string(ev.Value) != want {
			t.Fatalf("event %+v", ev)
		}
		// A JSON value has no file.
		set(t, h, "/j", `1`)
		if e, f, err := h.OpenFile("/j"); err != nil || f != nil || e.Type != "" {
			t.Fatalf("OpenFile of JSON: %v %v %+v", f, err, e)
		}
		if _, err := h.Incr("/f", 1, hub.WriteOptions{}); !errors.Is(err, hub.ErrNotInteger) {
			t.Fatalf("incr of a file: %v", err)
		}
		if _, err := h.SetFile("/big", "application/octet-stream", strings.NewReader(strings.Repeat("x", 1<<20+1)), hub.Cond{}, hub.WriteOptions{}); !errors.Is(err, hub.ErrValueTooLarge) {
			t.Fatalf("too large: %v", err)
		}
		if _, err := h.SetFile("/bad", "not a type", strings.NewReader("x"), hub.Cond{}, hub.WriteOptions{}); !errors.Is(err, hub.ErrInvalidValue) {
			t.Fatalf("bad content type: %v", err)
		}
		if _, err := h.SetFile("/f", "text/csv", strings.NewReader("a,b"), hub.Cond{NextRevision: ptr(int64(7))}, hub.WriteOptions{}); !errors.Is(err, hub.ErrRevisionConflict) {
			t.Fatalf("failed precondition: %v", err)
		}
		if _, b := readFile(t, h, "/f"); !bytes.Equal(b, body) {
			t.Fatal("a failed write changed the file")
		}
	})
}

// TestFilesOnDisk: blobs are content-addressed under <data>/blobs, survive a restart (with and
// without a snapshot) and are removed when no key refers to them any more.
func TestFilesOnDisk(t *testing.T) {
	t.Parallel()
	for _, every := range []int{1, 1000} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := hub.Config{Logger: slog.New(slog.DiscardHandler)}
			sc := hub.StoreConfig{Dir: dir, SnapshotRecords: every}
			h := must(hub.Open(cfg, sc))
			must(h.SetFile("/a", "text/plain; charset=utf-8", strings.NewReader("alpha"), hub.Cond{}, hub.WriteOptions{}))
			must(h.SetFile("/b", "text/plain", strings.NewReader("alpha"), hub.Cond{}, hub.WriteOptions{})) // same bytes
			must(h.SetFile("/c", "application/octet-stream", strings.NewReader("gamma"), hub.Cond{}, hub.WriteOptions{}))
			if n := len(blobNames(t, dir)); n != 2 {
				t.Fatalf("%d blobs, want 2: %v", n, blobNames(t, dir))
			}
			h.Close()

			h = must(hub.Open(cfg, sc))
			defer h.Close()
			if e, b := readFile(t, h, "/a"); string(b) != "alpha" || e.Type != "text/plain; charset=utf-8" {
				t.Fatalf("after restart: %+v %q", e, b)
			}
			if e, b := readFile(t, h, "/c"); string(b) != "gamma" || e.Type != "application/octet-stream" {
				t.Fatalf("after restart: %+v %q", e, b)
			}
			set(t, h, "/c", `"now json"`) // gamma is unreferenced
			if n := len(blobNames(t, dir)); n != 1 {
				t.Fatalf("%d blobs after overwriting /c, want 1: %v", n, blobNames(t, dir))
			}
			must(h.Delete("/a", hub.Cond{}, hub.WriteOptions{}))
			if n := len(blobNames(t, dir)); n != 1 {
				t.Fatalf("alpha removed while /b holds it: %v", blobNames(t, dir))
			}
			must(h.DeletePrefix("/", hub.WriteOptions{}))
			if names := blobNames(t, dir); len(names) != 0 {
				t.Fatalf("blobs left after deleting every key: %v", names)
			}
		})
	}
}

// TestMemoryHubWritesNothingToDisk: a memory-only hub keeps stored files in memory. Storing,
// sharing, reading, overwriting, deleting and backing up files, and closing the hub, create
// nothing in the temporary directory, where it once kept them.
func TestMemoryHubWritesNothingToDisk(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // os.TempDir and os.MkdirTemp("", ...) now point here; not parallel
	h := hub.New(hub.Config{Logger: slog.New(slog.DiscardHandler)})
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	must(h.SetFile("/a", "application/octet-stream", bytes.NewReader(big), hub.Cond{}, hub.WriteOptions{}))
	must(h.SetFile("/b", "application/octet-stream", bytes.NewReader(big), hub.Cond{}, hub.WriteOptions{}))
	must(h.SetFile("/c", "text/plain", strings.NewReader("gamma"), hub.Cond{}, hub.WriteOptions{}))
	if _, b := readFile(t, h, "/a"); !bytes.Equal(b, big) {
		t.Fatal("/a has other bytes")
	}
	must(h.Delete("/a", hub.Cond{}, hub.WriteOptions{}))
	if _, b := readFile(t, h, "/b"); !bytes.Equal(b, big) {
		t.Fatal("/b lost its bytes when /a, which shared them, was deleted")
	}
	set(t, h, "/c", `"json now"`)
	var backup bytes.Buffer
	if _, err := h.WriteBackup(&backup); err != nil || !bytes.Contains(backup.Bytes(), big[:4096]) {
		t.Fatalf("WriteBackup: %v, %d bytes", err, backup.Len())
	}
	for _, when := range []string{"while it runs", "after Close"} {
		if when == "after Close" {
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		}
		des, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			t.Errorf("%s, the memory-only hub has made %s in the temporary directory", when, de.Name())
		}
	}
}
