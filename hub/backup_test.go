package hub

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/statehub/statehub/hub/wal/waltest"
)

func setFile(t *testing.T, h *Hub, key, ct string, body []byte) {
	t.Helper()
	if _, err := h.SetFile(key, ct, bytes.NewReader(body), Cond{}, WriteOptions{}); err != nil {
		t.Fatalf("SetFile %s: %v", key, err)
	}
}

// fileBytes returns key's content type and bytes.
func fileBytes(t *testing.T, h *Hub, key string) (string, []byte) {
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
	return e.Type, b
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func backupOf(t *testing.T, h *Hub) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := h.WriteBackup(&buf); err != nil {
		t.Fatalf("WriteBackup: %v", err)
	}
	return buf.Bytes()
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestBackupRoundTrip: a backup carries JSON keys and stored files (one of 5 MB, two with the same
// bytes, an empty one); restored into an empty directory and reopened, every value, file and
// content type is back, and the blob store holds exactly the distinct blobs.
func TestBackupRoundTrip(t *testing.T) {
	t.Parallel()
	h := openTestStore(t, Config{MaxFileBytes: 8 << 20}, StoreConfig{Dir: t.TempDir()})
	files := map[string]struct {
		ct   string
		body []byte
	}{
		"/img/logo":  {"image/svg+xml", []byte("<svg xmlns=\"http://www.w3.org/2000/svg\">\x00\xff</svg>")},
		"/img/copy":  {"image/svg+xml", []byte("<svg xmlns=\"http://www.w3.org/2000/svg\">\x00\xff</svg>")},
		"/big":       {"application/octet-stream", randomBytes(1, 5<<20)},
		"/empty":     {"text/plain; charset=utf-8", nil},
		"/docs/note": {"text/markdown", []byte("# hello\n")},
	}
	for k, f := range files {
		setFile(t, h, k, f.ct, f.body)
	}
	mustSet(t, h, "/a", `[1,2]`, WriteOptions{})
	mustSet(t, h, "/b", `{"x":1.50}`, WriteOptions{})
	setFile(t, h, "/gone", "text/plain", []byte("replaced")) // overwritten by JSON: not in the backup
	mustSet(t, h, "/gone", `null`, WriteOptions{})
	backup := backupOf(t, h)
	seq := h.Seq()
	h.Close()

	// The backup is the snapshot followed by the blob section.
	br := bufio.NewReader(bytes.NewReader(backup))
	snap, err := readSnapshotPart(br)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if rest := backup[len(snap):]; !bytes.HasPrefix(rest, []byte(blobSectionMagic)) {
		t.Fatalf("after the snapshot: %.20q", rest)
	}

	dir := t.TempDir()
	if got, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(backup)); err != nil || got != seq {
		t.Fatalf("Restore = %d, %v; want %d", got, err, seq)
	}
	var want []string
	for _, f := range files {
		if s := hexSum(f.body); !slices.Contains(want, s) {
			want = append(want, s)
		}
	}
	slices.Sort(want)
	if got := dirNames(t, filepath.Join(dir, "blobs")); !slices.Equal(got, want) {
		t.Errorf("restored blobs %v, want %v", got, want)
	}
	h = openTestStore(t, Config{}, StoreConfig{Dir: dir})
	defer h.Close()
	for k, f := range files {
		ct, b := fileBytes(t, h, k)
		if ct != f.ct || !bytes.Equal(b, f.body) {
			t.Errorf("%s: %s, %d bytes; want %s, %d bytes", k, ct, len(b), f.ct, len(f.body))
		}
	}
	if e := mustGet(t, h, "/b"); string(e.Value) != `{"x":1.50}` || e.Type != "" {
		t.Errorf("/b = %s (%q)", e.Value, e.Type)
	}
	if e := mustGet(t, h, "/gone"); string(e.Value) != `null` || e.Type != "" {
		t.Errorf("/gone = %s (%q)", e.Value, e.Type)
	}
	if again := backupOf(t, h); !bytes.Equal(again, backup) {
		t.Errorf("the backup of the restored hub differs from the one restored")
	}
	if r := mustSet(t, h, "/c", `0`, WriteOptions{}); r.Seq != seq+1 {
		t.Errorf("first write after restore has seq %d, want %d", r.Seq, seq+1)
	}
}

// TestStoreKeepsFilesOnDisk: a store on the OS, whose fsyncs it times for Stats, keeps stored files
// in <data>/blobs, so they survive a restart.
func TestStoreKeepsFilesOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openTestStore(t, Config{}, StoreConfig{Dir: dir})
	setFile(t, h, "/f", "text/plain", []byte("kept"))
	h.Close()
	if names := dirNames(t, filepath.Join(dir, "blobs")); len(names) != 1 {
		t.Fatalf("blobs %v, want one", names)
	}
	h = openTestStore(t, Config{}, StoreConfig{Dir: dir})
	defer h.Close()
	if _, b := fileBytes(t, h, "/f"); string(b) != "kept" {
		t.Errorf("/f = %q", b)
	}
}

// TestBackupMemoryHub: a memory-only hub's backup restores into a data directory too.
func TestBackupMemoryHub(t *testing.T) {
	t.Parallel()
	h := New(Config{Logger: discardLogger()})
	setFile(t, h, "/f", "image/png", []byte("\x89PNG..."))
	mustSet(t, h, "/j", `true`, WriteOptions{})
	backup := backupOf(t, h)
	h.Close()
	dir := t.TempDir()
	if _, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	h = openTestStore(t, Config{}, StoreConfig{Dir: dir})
	defer h.Close()
	if ct, b := fileBytes(t, h, "/f"); ct != "image/png" || string(b) != "\x89PNG..." {
		t.Errorf("/f = %s %q", ct, b)
	}
}

// gateWriter blocks its first Write until release is closed, after signalling started.
type gateWriter struct {
	w       io.Writer
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.started)
		<-g.release
	})
	return g.w.Write(p)
}

// TestBackupPinsBlobs: files replaced and deleted after a backup froze the state, and swept, are
// still in the backup; once it ends they are removed from disk.
func TestBackupPinsBlobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openTestStore(t, Config{}, StoreConfig{Dir: dir})
	old := map[string][]byte{}
	for i := range 5 {
		k := fmt.Sprintf("/f%d", i)
		old[k] = randomBytes(uint64(i), 100<<10)
		setFile(t, h, k, "application/octet-stream", old[k])
	}
	var buf bytes.Buffer
	g := &gateWriter{w: &buf, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := h.WriteBackup(g)
		done <- err
	}()
	<-g.started
	for i := range 5 {
		k := fmt.Sprintf("/f%d", i)
		if i%2 == 0 {
			setFile(t, h, k, "text/plain", []byte("new "+k))
		} else if _, err := h.Delete(k, Cond{}, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Checkpoint(); err != nil { // sweeps the whole directory, too
		t.Fatal(err)
	}
	if n := len(dirNames(t, filepath.Join(dir, "blobs"))); n != 8 {
		t.Errorf("%d blobs while the backup streams, want the 5 it froze and 3 new ones", n)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("WriteBackup: %v", err)
	}
	if n := len(dirNames(t, filepath.Join(dir, "blobs"))); n != 3 {
		t.Errorf("%d blobs after the backup, want 3: the unused ones are swept", n)
	}
	h.Close()

	rdir := t.TempDir()
	if _, err := Restore(StoreConfig{Dir: rdir}, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	h = openTestStore(t, Config{}, StoreConfig{Dir: rdir})
	defer h.Close()
	for k, body := range old {
		if ct, b := fileBytes(t, h, k); ct != "application/octet-stream" || !bytes.Equal(b, body) {
			t.Errorf("%s: %s, %d bytes; want the frozen version", k, ct, len(b))
		}
	}
}

// TestBackupUnderWrites: backups taken while writers replace and delete files restore, and every
// file of the restored state has its bytes.
func TestBackupUnderWrites(t *testing.T) {
	t.Parallel()
	h := openTestStore(t, Config{}, StoreConfig{Dir: t.TempDir(), SnapshotRecords: 50})
	defer h.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := 0; !stop.Load(); i++ {
				k := fmt.Sprintf("/f%d", r.IntN(8))
				var err error
				switch r.IntN(4) {
				case 0:
					_, err = h.Delete(k, Cond{}, WriteOptions{})
				case 1:
					_, err = h.Set(k, []byte(`{"n":1}`), Cond{}, WriteOptions{})
				default:
					body := fmt.Appendf(nil, "%s written by %d, #%d: %s", k, w, i, strings.Repeat("x", r.IntN(64<<10)))
					_, err = h.SetFile(k, "text/plain", bytes.NewReader(body), Cond{}, WriteOptions{})
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 10 {
		pr, pw := io.Pipe()
		go func() {
			_, err := h.WriteBackup(pw)
			pw.CloseWithError(err)
		}()
		dir := t.TempDir()
		_, err := Restore(StoreConfig{Dir: dir}, pr) // streams straight from the writer
		pr.Close()
		if err != nil {
			t.Fatalf("backup %d: Restore: %v", i, err)
		}
		r := openTestStore(t, Config{}, StoreConfig{Dir: dir})
		var entries []Entry
		r.local().freeze().tree.Scan(func(it item) bool { entries = append(entries, it.entry()); return true })
		files := 0
		for _, e := range entries {
			if e.Type == "" {
				continue
			}
			files++
			fi, err := ParseFileInfo(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			_, b := fileBytes(t, r, e.Key)
			if int64(len(b)) != fi.Size || hexSum(b) != fi.SHA256 || !bytes.HasPrefix(b, []byte(e.Key+" written by")) {
				t.Errorf("backup %d: %s: %d bytes that do not match %s", i, e.Key, len(b), e.Value)
			}
		}
		r.Close()
		t.Logf("backup %d: %d files", i, files)
	}
	stop.Store(true)
	wg.Wait()
}

// TestBackupRefused: a damaged or incomplete backup is refused and leaves the directory empty, so
// a good one can be restored there next.
func TestBackupRefused(t *testing.T) {
	t.Parallel()
	h := New(Config{Logger: discardLogger()})
	defer h.Close()
	a, b := randomBytes(7, 300<<10), []byte("second file")
	setFile(t, h, "/a", "application/octet-stream", a)
	setFile(t, h, "/b", "text/plain", b)
	mustSet(t, h, "/j", `1`, WriteOptions{})
	backup := backupOf(t, h)
	var snap bytes.Buffer
	if _, err := h.local().writeSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	// Offsets of the bytes of /a in the backup.
	at := bytes.Index(backup, a[:64])
	if at < snap.Len() {
		t.Fatalf("the bytes of /a are not in the blob section (at %d)", at)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(backup)
		c[i] ^= 0x40
		return c
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"a corrupted blob byte", flip(at + 1000), "sha256 mismatch"},
		{"a corrupted snapshot byte", flip(snap.Len() - 6), "checksum mismatch"},
		{"a corrupted section checksum", flip(len(backup) - 1), "checksum mismatch"},
		{"truncated in a blob", backup[:at+5000], "unexpected EOF"},
		{"truncated before the trailer", backup[:len(backup)-3], "unexpected EOF"},
		{"truncated in the snapshot", backup[:snap.Len()/2], "unexpected EOF"},
		{"truncated at the blob section magic", backup[:snap.Len()+5], "unexpected EOF"},
		{"trailing bytes", append(bytes.Clone(backup), 0), "after the blob section"},
		{"the snapshot without its blobs", snap.Bytes(), "is not in the backup"},
		{"garbage after the snapshot", append(bytes.Clone(snap.Bytes()), "STATEHUB-JUNK-1\n!"...), "no blob section"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		_, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(c.data))
		if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Restore: %v; want ErrBadSnapshot with %q", c.name, err, c.want)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("%s: the failed restore left %v", c.name, names)
		}
		if _, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(backup)); err != nil {
			t.Errorf("%s: then restoring the good backup: %v", c.name, err)
		}
	}
}

// TestRestorePlainSnapshot: a snapshot without a blob section (the old backups, of JSON keys only)
// still restores.
func TestRestorePlainSnapshot(t *testing.T) {
	t.Parallel()
	h := New(Config{Logger: discardLogger()})
	mustSet(t, h, "/a", `[1,2]`, WriteOptions{})
	mustSet(t, h, "/b", `"x"`, WriteOptions{Idempotency: "k1"})
	var snap bytes.Buffer
	seq, err := h.local().writeSnapshot(&snap)
	if err != nil {
		t.Fatal(err)
	}
	// Without files, the backup is the snapshot and an empty blob section.
	backup := backupOf(t, h)
	h.Close()
	if !bytes.HasPrefix(backup, snap.Bytes()) || !bytes.HasPrefix(backup[snap.Len():], []byte(blobSectionMagic)) {
		t.Errorf("a backup without files is not the snapshot and a blob section")
	}
	for _, data := range [][]byte{snap.Bytes(), backup} {
		dir := t.TempDir()
		if got, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(data)); err != nil || got != seq {
			t.Fatalf("Restore = %d, %v", got, err)
		}
		r := openTestStore(t, Config{}, StoreConfig{Dir: dir})
		if e := mustGet(t, r, "/a"); string(e.Value) != `[1,2]` {
			t.Errorf("/a = %s", e.Value)
		}
		r.Close()
	}
}

// TestReadSnapshotPart: the walk over a streamed snapshot stops exactly at its end, for snapshots
// with every kind of entry.
func TestReadSnapshotPart(t *testing.T) {
	t.Parallel()
	h := New(Config{Logger: discardLogger()})
	defer h.Close()
	mustSet(t, h, "/a", `{"x":[1,2]}`, WriteOptions{})
	mustSet(t, h, "/t", `1`, WriteOptions{TTL: 3600e9, Idempotency: "k"})
	setFile(t, h, "/f", "text/plain", []byte("hi"))
	if _, err := h.Incr("/n", 2, WriteOptions{Idempotency: "k2"}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := h.local().writeSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(snap.Bytes()), strings.NewReader("tail")))
	got, err := readSnapshotPart(br)
	if err != nil || !bytes.Equal(got, snap.Bytes()) {
		t.Fatalf("readSnapshotPart: %d bytes, %v; want the %d of the snapshot", len(got), err, snap.Len())
	}
	if rest, _ := io.ReadAll(br); string(rest) != "tail" {
		t.Errorf("left %q", rest)
	}
}

// TestRestoreThroughFS: Restore writes stored files through StoreConfig.FS, durably: on waltest's
// disk, a crash right after it keeps every file, and the store opens with them. A failed restore
// leaves the directory empty there too.
func TestRestoreThroughFS(t *testing.T) {
	t.Parallel()
	h := New(Config{Logger: discardLogger()})
	a, b := randomBytes(11, 100<<10), []byte("second file")
	setFile(t, h, "/a", "application/octet-stream", a)
	setFile(t, h, "/b", "text/plain", b)
	backup := backupOf(t, h)
	h.Close()

	fsys := waltest.New(1)
	bad := bytes.Clone(backup)
	bad[bytes.Index(bad, a[:64])+100] ^= 1
	if _, err := Restore(StoreConfig{Dir: "/data", FS: fsys}, bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("Restore of a corrupted backup: %v, want ErrBadSnapshot", err)
	}
	if des, err := fsys.ReadDir("/data"); err != nil || len(des) != 0 {
		t.Fatalf("the failed restore left %v (%v)", des, err)
	}
	if _, err := Restore(StoreConfig{Dir: "/data", FS: fsys}, bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	r := openTestStore(t, Config{}, StoreConfig{Dir: "/data", FS: fsys.Crash()})
	defer r.Close()
	if _, got := fileBytes(t, r, "/a"); !bytes.Equal(got, a) {
		t.Error("/a has other bytes after the restore and a crash")
	}
	if ct, got := fileBytes(t, r, "/b"); !bytes.Equal(got, b) || ct != "text/plain" {
		t.Errorf("/b after the restore and a crash: %s %q", ct, got)
	}
}
