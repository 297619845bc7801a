package hub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
	"github.com/statehub/statehub/internal/fakeclock"
)

func openTestStore(t *testing.T, cfg Config, sc StoreConfig) *Hub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	h, err := Open(cfg, sc)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return h
}

func mustSet(t *testing.T, h *Hub, key, value string, opt WriteOptions) Result {
	t.Helper()
	res, err := h.Set(key, []byte(value), Cond{}, opt)
	if err != nil {
		t.Fatalf("Set %s: %v", key, err)
	}
	return res
}

func mustGet(t *testing.T, h *Hub, key string) Entry {
	t.Helper()
	e, err := h.Get(key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return e
}

// TestStoreReopen: everything a write leaves behind (values, revisions, the seq, TTL deadlines,
// idempotency records) is there again after a clean restart.
func TestStoreReopen(t *testing.T) {
	t.Parallel()
	for _, snapshotEvery := range []int{1, 3, 1000} {
		t.Run("snapshot every "+strconv.Itoa(snapshotEvery), func(t *testing.T) {
			t.Parallel()
			clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			sc := StoreConfig{Dir: t.TempDir(), SnapshotRecords: snapshotEvery}
			cfg := Config{Clock: clock}
			h := openTestStore(t, cfg, sc)
			mustSet(t, h, "/a/x", `{"n":12345678901234567890}`, WriteOptions{})
			mustSet(t, h, "/a/x", `2e3`, WriteOptions{})
			mustSet(t, h, "/a/y", `"gone"`, WriteOptions{})
			mustSet(t, h, "/tmp/session", `1`, WriteOptions{TTL: time.Minute})
			if _, err := h.Incr("/count", 5, WriteOptions{Idempotency: "k1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Delete("/a/y", Cond{}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.DeletePrefix("/nothing/", WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if snapshotEvery == 1 {
				if err := h.local().store.snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			seq := h.Seq()
			h.Close()

			h = openTestStore(t, cfg, sc)
			defer h.Close()
			if got := h.Seq(); got != seq {
				t.Errorf("seq after reopen = %d, want %d", got, seq)
			}
			if e := mustGet(t, h, "/a/x"); string(e.Value) != "2e3" || e.Revision != 1 {
				t.Errorf("/a/x = %s rev %d, want 2e3 rev 1", e.Value, e.Revision)
			}
			if _, err := h.Get("/a/y"); !errors.Is(err, ErrNotFound) {
				t.Errorf("/a/y after reopen: %v, want ErrNotFound", err)
			}
			res, err := h.Incr("/count", 5, WriteOptions{Idempotency: "k1"})
			if err != nil || !res.Replayed || string(res.Value) != "5" {
				t.Errorf("idempotent retry after reopen = %+v, %v; want the first answer replayed", res, err)
			}
			if got := h.Seq(); got != seq {
				t.Errorf("the replayed retry changed the seq to %d", got)
			}
			clock.Advance(2 * time.Minute)
			if _, err := h.Get("/tmp/session"); !errors.Is(err, ErrNotFound) {
				t.Errorf("TTL key after reopen and expiry: %v, want ErrNotFound", err)
			}
			if got := h.Seq(); got != seq+1 {
				t.Errorf("expiry should commit once: seq %d, want %d", got, seq+1)
			}
		})
	}
}

// TestStoreResumeAcrossRestart: the history is rebuilt from the log, so a stream resumes across a
// restart without a reset.
func TestStoreResumeAcrossRestart(t *testing.T) {
	t.Parallel()
	sc := StoreConfig{Dir: t.TempDir()}
	h := openTestStore(t, Config{}, sc)
	r1 := mustSet(t, h, "/r/a", `1`, WriteOptions{})
	mustSet(t, h, "/r/b", `2`, WriteOptions{})
	mustSet(t, h, "/other", `3`, WriteOptions{})
	h.Close()

	h = openTestStore(t, Config{}, sc)
	defer h.Close()
	mustSet(t, h, "/r/a", `4`, WriteOptions{})
	since := Position{Seq: r1.Seq, Key: "/r/a"}
	sub, err := h.Subscribe("/r/", SubscribeOptions{Since: &since})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if sub.Reset {
		t.Fatal("resume across a restart gave a reset; the log should have rebuilt the history")
	}
	var got []string
	for _, e := range sub.TestInitial() {
		got = append(got, e.Key+"="+string(e.Value))
	}
	if want := "[/r/b=2 /r/a=4]"; fmt.Sprint(got) != want {
		t.Errorf("replay = %v, want %s", got, want)
	}
}

// TestStoreSnapshotRemovesLog: after snapshots, the log no longer holds what they cover, and a
// reopen still sees everything.
func TestStoreSnapshotRemovesLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := StoreConfig{Dir: dir, SnapshotRecords: 1 << 30}
	h := openTestStore(t, Config{}, sc)
	for i := range 50 {
		mustSet(t, h, "/k/"+strconv.Itoa(i), strconv.Itoa(i), WriteOptions{})
	}
	for range 3 {
		if err := h.local().store.snapshot(); err != nil {
			t.Fatal(err)
		}
		mustSet(t, h, "/k/last", `true`, WriteOptions{})
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	if len(snaps) != snapshotsKept {
		t.Errorf("%d snapshot files, want %d: %v", len(snaps), snapshotsKept, snaps)
	}
	h.Close()
	h = openTestStore(t, Config{}, sc)
	defer h.Close()
	if n := h.Len(); n != 51 {
		t.Errorf("%d keys after reopen, want 51", n)
	}
}

// TestStoreBadSnapshotFallsBack: a damaged newest snapshot is skipped for the one before it,
// whose log is still there.
func TestStoreBadSnapshotFallsBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := StoreConfig{Dir: dir, SnapshotRecords: 1 << 30}
	h := openTestStore(t, Config{}, sc)
	mustSet(t, h, "/a", `1`, WriteOptions{})
	h.local().store.snapshot()
	mustSet(t, h, "/b", `2`, WriteOptions{})
	h.local().store.snapshot()
	mustSet(t, h, "/c", `3`, WriteOptions{})
	h.Close()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	newest := snaps[len(snaps)-1]
	data, _ := os.ReadFile(newest)
	data[len(data)/2] ^= 0xff
	os.WriteFile(newest, data, 0o644)

	h = openTestStore(t, Config{}, sc)
	defer h.Close()
	for _, k := range []string{"/a", "/b", "/c"} {
		mustGet(t, h, k)
	}
}

// TestStoreCorruptLogRefusesStart: a damaged record before the tail stops start-up with an error
// that names the file; with AllowRepair the server starts from what precedes it.
func TestStoreCorruptLogRefusesStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := StoreConfig{Dir: dir}
	h := openTestStore(t, Config{}, sc)
	for i := range 20 {
		mustSet(t, h, "/k/"+strconv.Itoa(i), `"some value to make records longer"`, WriteOptions{})
	}
	h.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	data, _ := os.ReadFile(segs[0])
	data[len(data)/3] ^= 0xff
	os.WriteFile(segs[0], data, 0o644)

	_, err := Open(Config{Logger: discardLogger()}, sc)
	if !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("Open over a corrupt log: %v, want ErrCorrupt", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(filepath.Base(segs[0]))) {
		t.Errorf("error %q does not name the file", err)
	}
	sc.AllowRepair = true
	h = openTestStore(t, Config{}, sc)
	defer h.Close()
	if n := h.Len(); n == 0 || n >= 20 {
		t.Errorf("repair kept %d keys, want some but not all", n)
	}
}

// TestStoreRestore: a backup restores into an empty directory only, and a damaged one is refused.
func TestStoreRestore(t *testing.T) {
	t.Parallel()
	h := openTestStore(t, Config{}, StoreConfig{Dir: t.TempDir()})
	mustSet(t, h, "/a", `[1,2]`, WriteOptions{})
	mustSet(t, h, "/b", `{"x":1.50}`, WriteOptions{})
	var backup bytes.Buffer
	seq, err := h.local().writeSnapshot(&backup)
	if err != nil || seq != 2 {
		t.Fatalf("writeSnapshot = %d, %v", seq, err)
	}
	h.Close()

	dir := t.TempDir()
	if got, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(backup.Bytes())); err != nil || got != seq {
		t.Fatalf("Restore = %d, %v", got, err)
	}
	if _, err := Restore(StoreConfig{Dir: dir}, bytes.NewReader(backup.Bytes())); err == nil {
		t.Error("Restore into a non-empty directory succeeded")
	}
	bad := bytes.Clone(backup.Bytes())
	bad[len(bad)-6] ^= 1
	if _, err := Restore(StoreConfig{Dir: t.TempDir()}, bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("Restore of a damaged backup: %v, want ErrBadSnapshot", err)
	}
	h = openTestStore(t, Config{}, StoreConfig{Dir: dir})
	defer h.Close()
	if e := mustGet(t, h, "/b"); string(e.Value) != `{"x":1.50}` {
		t.Errorf("/b = %s", e.Value)
	}
	if r := mustSet(t, h, "/c", `0`, WriteOptions{}); r.Seq != seq+1 {
		t.Errorf("first write after restore has seq %d, want %d", r.Seq, seq+1)
	}
}

// TestStoreSyncFailure: after a failed fsync the write is not acknowledged, and no later write is.
func TestStoreSyncFailure(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	h := openTestStore(t, Config{}, StoreConfig{Dir: "/data", FS: fsys})
	defer h.Close()
	mustSet(t, h, "/ok", `1`, WriteOptions{})
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpSync {
			return syscall.EIO
		}
		return nil
	})
	if _, err := h.Set("/lost", []byte(`2`), Cond{}, WriteOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write during a failing fsync: %v, want ErrUnavailable", err)
	}
	fsys.SetFault(nil)
	if _, err := h.Set("/later", []byte(`3`), Cond{}, WriteOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write after a failed fsync: %v, want ErrUnavailable", err)
	}
}

// TestStoreCrashPoints crashes the file system at many random points under concurrent counter
// increments and CAS writes, with snapshots in the mix. After each crash, every acknowledged write
// is there and no counter exceeds what was attempted.
func TestStoreCrashPoints(t *testing.T) {
	t.Parallel()
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for seed := range uint64(rounds) {
		crashRound(t, seed)
	}
}

func crashRound(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	fsys := waltest.New(seed)
	sc := StoreConfig{Dir: "/data", FS: fsys, SnapshotRecords: 1 + rng.IntN(40)}
	h, err := Open(Config{Logger: discardLogger()}, sc)
	if err != nil {
		t.Fatalf("seed %d: Open: %v", seed, err)
	}
	fsys.CrashAfter(1 + rng.IntN(400))

	const writers = 4
	var mu sync.Mutex
	acked := map[string]int64{}    // counter -> highest acknowledged value
	attempts := map[string]int64{} // counter -> increments attempted
	ackedCAS := map[string]int64{} // key -> highest acknowledged revision
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counter := "/c/" + strconv.Itoa(w%2)
			cas := "/cas/" + strconv.Itoa(w)
			for i := 0; i < 200; i++ {
				mu.Lock()
				attempts[counter]++
				mu.Unlock()
				res, err := h.Incr(counter, 1, WriteOptions{})
				if err != nil {
					return
				}
				n, _ := strconv.ParseInt(string(res.Value), 10, 64)
				next := int64(i)
				res, err = h.Set(cas, []byte(strconv.Itoa(i)), Cond{NextRevision: &next}, WriteOptions{})
				if err != nil {
					return
				}
				mu.Lock()
				acked[counter] = max(acked[counter], n)
				ackedCAS[cas] = max(ackedCAS[cas], res.Revision)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	h.Close()

	h, err = Open(Config{Logger: discardLogger()}, StoreConfig{Dir: "/data", FS: fsys.Crash()})
	if err != nil {
		t.Fatalf("seed %d: reopen after crash: %v", seed, err)
	}
	defer h.Close()
	for key, want := range acked {
		e, err := h.Get(key)
		if err != nil {
			t.Fatalf("seed %d: %s lost after crash (acknowledged %d): %v", seed, key, want, err)
		}
		got, _ := strconv.ParseInt(string(e.Value), 10, 64)
		if got < want || got > attempts[key] {
			t.Fatalf("seed %d: %s = %d after crash; acknowledged %d, attempted %d", seed, key, got, want, attempts[key])
		}
	}
	for key, want := range ackedCAS {
		e, err := h.Get(key)
		if err != nil || e.Revision < want {
			t.Fatalf("seed %d: %s at revision %d (%v) after crash, acknowledged %d", seed, key, e.Revision, err, want)
		}
	}
}

// TestStoreCrashWithFiles crashes the file system at random points while writers store files
// (some with the same bytes), overwrite and delete them, with snapshots and their sweeps in the
// mix. waltest keeps only what was synced. After each crash, on what survived: every name in
// <data>/blobs that is a sha256 holds bytes that hash to it (no blob is visible half-written);
// after reopening, every key holds what its last acknowledged write left (or what a later,
// unacknowledged one did; under SyncNone, any state it had), every file key's bytes are there
// and match its sha256, and the blob
// directory holds exactly the blobs keys refer to, with no temporary file left.
func TestStoreCrashWithFiles(t *testing.T) {
	t.Parallel()
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	pool := make([][]byte, 6) // the same bytes under several keys share a blob
	for i := range pool {
		pool[i] = randomBytes(uint64(i), i*i*1500)
	}
	for seed := range uint64(rounds) {
		fileCrashRound(t, seed, pool)
	}
}

// fileState is what a key holds in fileCrashRound: "" when absent, else the sha256 of its file.
type fileState = string

func fileCrashRound(t *testing.T, seed uint64, pool [][]byte) {
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: %s", seed, fmt.Sprintf(format, args...))
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	fsys := waltest.New(seed)
	sc := StoreConfig{Dir: "/data", FS: fsys, SnapshotRecords: 1 + rng.IntN(8)}
	// Without fsyncs an acknowledged write may be lost, but a key's bytes never are: the blob
	// is durable before its commit, and removed only once the log is durable past its last use.
	lossy := rng.IntN(3) == 0
	if lossy {
		sc.Sync = wal.SyncNone
	}
	h, err := Open(Config{Logger: discardLogger()}, sc)
	if err != nil {
		fail("Open: %v", err)
	}
	fsys.CrashAfter(1 + rng.IntN(300))

	const writers, keysEach = 3, 3
	// Each key has one writer, so its states come in order: the last acknowledged one, then the
	// ones tried after it, any of which a crash may have kept (lossy: any state it ever had).
	var mu sync.Mutex
	allowed := map[string][]fileState{}
	for w := range writers {
		for k := range keysEach {
			allowed[fmt.Sprintf("/f/%d/%d", w, k)] = []fileState{""} // absent at first
		}
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		wrng := rand.New(rand.NewPCG(seed, uint64(w)))
		go func() {
			defer wg.Done()
			for i := range 30 {
				key := fmt.Sprintf("/f/%d/%d", w, i%keysEach)
				var state fileState
				var body []byte
				if wrng.IntN(4) > 0 {
					body = pool[wrng.IntN(len(pool))]
					state = hexSum(body)
				}
				mu.Lock()
				allowed[key] = append(allowed[key], state)
				mu.Unlock()
				var err error
				if body != nil {
					_, err = h.SetFile(key, "application/octet-stream", bytes.NewReader(body), Cond{}, WriteOptions{})
				} else {
					_, err = h.Delete(key, Cond{}, WriteOptions{})
					if errors.Is(err, ErrNotFound) {
						err = nil
					}
				}
				if err != nil {
					return
				}
				if !lossy {
					mu.Lock()
					allowed[key] = []fileState{state}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	h.Close()

	after := fsys.Crash()
	checkBlobDir(t, after, "/data/blobs", nil, fmt.Sprintf("seed %d", seed))
	h, err = Open(Config{Logger: discardLogger()}, StoreConfig{Dir: "/data", FS: after})
	if err != nil {
		fail("reopen after crash: %v", err)
	}
	defer h.Close()
	referred := map[string]bool{}
	for key, states := range allowed {
		got := ""
		e, f, err := h.OpenFile(key)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			fail("%s after crash: %v", key, err)
		default:
			data, err := io.ReadAll(f)
			f.Close()
			fi, perr := ParseFileInfo(e.Value)
			if err != nil || perr != nil || hexSum(data) != fi.SHA256 || int64(len(data)) != fi.Size {
				fail("%s after crash: %d bytes (%v) hashing to %s, described as %s", key, len(data), err, hexSum(data), e.Value)
			}
			got = fi.SHA256
			referred[got] = true
		}
		if !slices.Contains(states, got) {
			fail("%s after crash holds %q; its last acknowledged state and later tries are %q", key, got, states)
		}
	}
	des, err := after.ReadDir("/data/blobs")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fail("%v", err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
		if !referred[de.Name()] {
			fail("after reopening, the blob directory holds %s, which no key refers to", de.Name())
		}
	}
	if len(names) != len(referred) {
		fail("after reopening, the blob directory holds %v; keys refer to %d blobs", names, len(referred))
	}
	if _, err := h.SetFile("/after", "text/plain", strings.NewReader("after the crash"), Cond{}, WriteOptions{}); err != nil {
		fail("SetFile after reopening: %v", err)
	}
}

// TestStoreRepairsInvalidUTF8: values that are not UTF-8, which a version before CheckUTF8 could
// store (Set trusts its caller to have compacted the value, as such a version did), are repaired
// when they are loaded back, from the log and from a snapshot: each run of invalid bytes becomes
// U+FFFD, the revision and seq stay, and subscribers get the repaired value.
func TestStoreRepairsInvalidUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stored, want string
	}{
		{"the report's bytes", "\"\xff\xfe\"", "\"\uFFFD\""},
		{"surrogate half in a key", "{\"k\xed\xa0\x80\":\"v\"}", "{\"k\uFFFD\":\"v\"}"},
		{"truncated after valid text", "[\"ok\",\"日本\xe2\x82\"]", "[\"ok\",\"日本\uFFFD\"]"},
		{"lone continuation bytes apart", "\"a\x80b\x80\"", "\"a\uFFFDb\uFFFD\""},
		{"valid text unchanged", "\"€ 𝄞\"", "\"€ 𝄞\""},
	}
	for _, from := range []string{"log", "snapshot"} {
		t.Run(from, func(t *testing.T) {
			t.Parallel()
			sc := StoreConfig{Dir: t.TempDir()}
			h := openTestStore(t, Config{}, sc)
			written := make([]Result, len(tests))
			for i, tc := range tests {
				written[i] = mustSet(t, h, "/old/"+strconv.Itoa(i), tc.stored, WriteOptions{})
			}
			if from == "snapshot" {
				if err := h.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			h.Close()

			h = openTestStore(t, Config{}, sc)
			defer h.Close()
			for i, tc := range tests {
				e := mustGet(t, h, "/old/"+strconv.Itoa(i))
				if string(e.Value) != tc.want || e.Revision != written[i].Revision || e.Seq != written[i].Seq {
					t.Errorf("%s: loaded %q rev %d seq %d; want %q rev %d seq %d", tc.name, e.Value, e.Revision, e.Seq,
						tc.want, written[i].Revision, written[i].Seq)
				}
			}
			sub, err := h.Subscribe("/old/", SubscribeOptions{Snapshot: true})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			for _, e := range sub.TestInitial() {
				if !utf8.Valid(e.Value) {
					t.Errorf("subscription delivers %s = %q, not UTF-8", e.Key, e.Value)
				}
			}
		})
	}
}

func FuzzDecodeCommit(f *testing.F) {
	exp := time.Unix(1700000000, 5)
	for _, c := range []*Commit{
		{Seq: 1, Changes: []Change{{Key: "/a", Value: []byte(`1`)}}},
		{Seq: 9, Changes: []Change{{Key: "/a", Revision: 3, Deleted: true}, {Key: "/b", Value: []byte(`"x"`), Expires: exp}}},
		{Seq: 3, Changes: []Change{{Key: "/n", Value: []byte(`5`)}}, Idem: &IdemRecord{Key: "k", Fingerprint: "incr /n 1", Expires: exp, Result: Result{Key: "/n", Value: []byte(`5`), Seq: 3}}},
		{Seq: 4, Changes: []Change{{Key: "/u", Value: []byte("{\"k\xff\":[\"\xed\xa0\x80\",\"日本\xe2\x82\"]}")}}}, // from a version before CheckUTF8
		{Seq: 5, Changes: []Change{ // version 2: a presence and reasons
			{Key: "/p/a", Value: []byte(`1`), Ephemeral: true, Presence: &Presence{Sub: "ann", Conn: "c0nn"}, Reason: ReasonReplaced},
			{Key: "/p/b", Revision: 2, Deleted: true, Reason: ReasonTimeout},
		}},
		{Seq: 6, Time: exp, Changes: []Change{{Key: "/t", Value: []byte(`1`)}}}, // version 3: the commit's time
		{Seq: 7, Time: exp, Changes: []Change{{Key: "/p/c", Value: []byte(`1`), Ephemeral: true, Presence: &Presence{Conn: "c1"}, Reason: ReasonReplaced}}},
	} {
		f.Add(encodeCommit(nil, c))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommit(data)
		if err != nil {
			return
		}
		for _, ch := range c.Changes {
			if !utf8.Valid(ch.Value) {
				t.Fatalf("decoded value %q of %s is not UTF-8", ch.Value, ch.Key)
			}
		}
		again, err := decodeCommit(encodeCommit(nil, c))
		if err != nil {
			t.Fatalf("re-encoded commit does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the commit:\n%v\n%v", c, again)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	h := New(Config{})
	h.Set("/a", []byte(`{"x":[1,2]}`), Cond{}, WriteOptions{})
	h.Set("/b/c", []byte(`"y"`), Cond{}, WriteOptions{TTL: time.Hour})
	h.Incr("/n", 3, WriteOptions{Idempotency: "k"})
	h.Set("/u", []byte("{\"k\xff\":[\"\xed\xa0\x80\"]}"), Cond{}, WriteOptions{}) // as a version before CheckUTF8 could
	h.Set("/p/a", []byte(`true`), Cond{}, WriteOptions{Session: h.NewSession(), Subject: "ann"})
	var buf bytes.Buffer
	h.local().writeSnapshot(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		fr.tree.Scan(func(it item) bool {
			if !utf8.Valid(it.value()) {
				t.Fatalf("loaded value %q of %s is not UTF-8", it.value(), it.key)
			}
			return true
		})
		var out bytes.Buffer
		if err := fr.write(&out); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSnapshot(out.Bytes()); err != nil {
			t.Fatalf("a re-written snapshot does not load: %v", err)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncBuffer is a log destination for tests that read what was logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStoreRemovesStaleTemps: the temporary files a kill -9 leaves (a snapshot's, a stored file's)
// are removed at Open, with a log line, and the directory opens as if they had never been there.
// Files that are not the store's are left alone.
func TestStoreRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := StoreConfig{Dir: dir}
	h := openTestStore(t, Config{}, sc)
	mustSet(t, h, "/a", `1`, WriteOptions{})
	if err := h.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	mustSet(t, h, "/b", `2`, WriteOptions{})
	h.Close()
	stale := []string{
		filepath.Join(dir, snapshotName(7)+".tmp"),
		filepath.Join(dir, snapshotName(1<<40)+".tmp"), // newer than every snapshot
		filepath.Join(dir, "blobs", "tmp-123456"),
	}
	kept := []string{filepath.Join(dir, "notes.tmp"), filepath.Join(dir, "snap-x.snap.tmp")}
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(p, []byte("half a file"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	h = openTestStore(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, sc)
	defer h.Close()
	if a, b := mustGet(t, h, "/a"), mustGet(t, h, "/b"); string(a.Value) != `1` || string(b.Value) != `2` {
		t.Fatalf("after reopening: /a %s, /b %s", a.Value, b.Value)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it removed", p, err)
		}
		if !strings.Contains(logs.String(), filepath.Base(p)) {
			t.Errorf("no log line names %s:\n%s", p, logs.String())
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
	if !strings.Contains(logs.String(), "removed stale temporary files") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestStoreStartsOnAFullDisk: a server killed on a full disk, its log ending in a torn tail,
// starts again while the disk is still full. It serves what was acknowledged; writes fail with
// ErrUnavailable (ENOSPC) until there is room.
func TestStoreStartsOnAFullDisk(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	sc := StoreConfig{Dir: "/data", FS: fsys}
	h := openTestStore(t, Config{}, sc)
	for i := range 100 {
		mustSet(t, h, "/k/"+strconv.Itoa(i), `"`+strings.Repeat("v", 1000)+`"`, WriteOptions{})
	}
	h.Close()
	des, err := fsys.ReadDir("/data/wal")
	if err != nil || len(des) == 0 {
		t.Fatalf("log directory: %v %v", des, err)
	}
	seg := "/data/wal/" + des[len(des)-1].Name()
	b, err := fsys.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(seg, append(b, 0x30, 0, 0, 0, 0x9a, 0xbc)); err != nil { // a torn header
		t.Fatal(err)
	}
	fsys.SetCapacity(fsys.Used())
	h = openTestStore(t, Config{}, sc)
	defer h.Close()
	if e := mustGet(t, h, "/k/99"); len(e.Value) != 1002 {
		t.Fatalf("/k/99 = %q", e.Value)
	}
	if _, err := h.Set("/more", []byte(`1`), Cond{}, WriteOptions{}); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a write on the full disk: %v, want ErrUnavailable and ENOSPC", err)
	}
}

// TestStoreCloseReportsFlushFailure: Close returns the error of the final flush, so a server whose
// last writes never reached the disk does not exit 0; a clean Close returns nil.
func TestStoreCloseReportsFlushFailure(t *testing.T) {
	t.Parallel()
	fsys := waltest.New(1)
	sc := StoreConfig{Dir: "/data", FS: fsys, Sync: wal.SyncNone} // writes are acknowledged before the fsync
	h := openTestStore(t, Config{}, sc)
	mustSet(t, h, "/a", `1`, WriteOptions{})
	if err := h.Close(); err != nil {
		t.Fatalf("clean Close: %v", err)
	}
	h = openTestStore(t, Config{}, sc)
	mustSet(t, h, "/b", `2`, WriteOptions{})
	fsys.SetFault(func(op waltest.Op, name string) error {
		if op == waltest.OpSync {
			return syscall.ENOSPC
		}
		return nil
	})
	if err := h.Close(); !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, wal.ErrSyncFailed) {
		t.Fatalf("Close with a failing fsync: %v, want ErrSyncFailed and ENOSPC", err)
	}
}

// TestStoreSnapshotLoadsEveryKey: a snapshot of a tree many nodes deep loads back every key, in
// order, with its value (the entries go into the tree in two passes: snapshot.go).
func TestStoreSnapshotLoadsEveryKey(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3, 63, 64, 65, 5001} {
		dir := t.TempDir()
		sc := StoreConfig{Dir: dir, SnapshotRecords: 1 << 30}
		h := openTestStore(t, Config{}, sc)
		for i := range n {
			mustSet(t, h, "/k/"+strconv.Itoa(i*7919%n), strconv.Itoa(i), WriteOptions{})
		}
		want := h.local().freeze().tree.Copy()
		if err := h.local().store.snapshot(); err != nil {
			t.Fatal(err)
		}
		h.Close()
		h = openTestStore(t, Config{}, sc)
		got := h.local().freeze().tree
		if got.Len() != n || want.Len() != n {
			t.Fatalf("%d keys: %d after reopen, %d before", n, got.Len(), want.Len())
		}
		wi, gi := want.Iter(), got.Iter()
		for ok := wi.First() && gi.First(); ok; ok = wi.Next() && gi.Next() {
			if w, g := wi.Item(), gi.Item(); w.key != g.key || string(w.value()) != string(g.value()) {
				t.Fatalf("%d keys: %q=%s after reopen, want %q=%s", n, g.key, g.value(), w.key, w.value())
			}
		}
		h.Close()
	}
}
