package hub

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/statehub/statehub/internal/fakeclock"
)

// The commit record (the payload of every log record) and the snapshot file are persisted
// formats: a new version must read what an old one wrote. These golden files pin both: the
// encoder must produce them byte for byte, and the decoder must read them back to the same
// values. STATEHUB_UPDATE_GOLDEN=1 rewrites them (only with a deliberate, versioned format change).

var goldenTime = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)

// goldenCommits covers every field a commit can carry.
func goldenCommits() []*Commit {
	return []*Commit{
		{Seq: 1, Changes: []Change{{Key: "/a", Value: []byte(`{"x":1.50,"n":12345678901234567890}`), Revision: 0}}},
		{Seq: 2, Changes: []Change{
			{Key: "/b/c", Value: []byte(`"é"`), Revision: 3, Expires: goldenTime},
			{Key: "/b/d", Revision: 7, Deleted: true},
		}},
		{Seq: 3, Changes: []Change{{Key: "/f", Value: []byte(`{"type":"image/svg+xml","size":6,"sha256":"ab"}`), Type: "image/svg+xml"}}},
		{Seq: 4, Changes: []Change{{Key: "/l", Value: []byte(`{"owner":"ci","fence":4,"expires":"2026-01-02T03:04:05.0000006Z"}`), Expires: goldenTime, lock: "cafe"}}},
		{Seq: 5, Changes: []Change{{Key: "/p/ann", Value: []byte(`{"x":1}`), Ephemeral: true}},
			Idem: &IdemRecord{Key: "k1", Fingerprint: "set /p/ann 1f", Result: Result{Key: "/p/ann", Revision: 0, Seq: 5, Value: []byte("1")}, Expires: goldenTime}},
		// Version 2: a presence, and reasons.
		{Seq: 6, Changes: []Change{{Key: "/p/bob", Value: []byte(`true`), Ephemeral: true, Presence: &Presence{Sub: "bob", Conn: "c0nn"}}}},
		{Seq: 7, Changes: []Change{
			{Key: "/p/bob", Value: []byte(`1`), Revision: 1, Ephemeral: true, Presence: &Presence{Conn: "c1"}, Reason: ReasonReplaced},
			{Key: "/p/cy", Revision: 4, Deleted: true, Reason: ReasonTimeout},
		}},
	}
}

// goldenCommitsV3 are the commits of testdata/commits-v3.golden: commits with a time (every
// commit Local makes), written as version 3, with and without presences and reasons.
func goldenCommitsV3() []*Commit {
	return []*Commit{
		{Seq: 8, Time: goldenTime, Changes: []Change{{Key: "/a", Value: []byte(`2`), Revision: 1, Expires: goldenTime}}},
		{Seq: 9, Time: goldenTime.Add(1500 * time.Millisecond), Changes: []Change{
			{Key: "/p/bob", Value: []byte(`2`), Revision: 2, Ephemeral: true, Presence: &Presence{Sub: "bob", Conn: "c2"}, Reason: ReasonReplaced},
			{Key: "/z", Revision: 1, Deleted: true},
		}, Idem: &IdemRecord{Key: "k2", Fingerprint: "tx 2f", Result: Result{Seq: 9}, Expires: goldenTime}},
	}
}

// TestCommitFormatV3Golden pins version 3, the commit's time.
func TestCommitFormatV3Golden(t *testing.T) {
	t.Parallel()
	var all []byte
	for _, c := range goldenCommitsV3() {
		rec := encodeCommit(nil, c)
		if rec[0] != commitVersion {
			t.Fatalf("commit %d with a time written as version %d", c.Seq, rec[0])
		}
		all = append(all, byte(len(rec)>>8), byte(len(rec)))
		all = append(all, rec...)
	}
	golden(t, "commits-v3.golden", all)
	checkFramedCommits(t, all, goldenCommitsV3())
}

// goldenCommitsV1 are the commits of testdata/commits-v1.golden, written by version 1 (before
// presences and reasons): they must still load.
func goldenCommitsV1() []*Commit { return goldenCommits()[:5] }

func TestCommitFormatV1Loads(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "commits-v1.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range goldenCommitsV1() {
		n := int(data[0])<<8 | int(data[1])
		if data[2] != commitVersion1 {
			t.Fatalf("commit %d: version %d in the version 1 file", i, data[2])
		}
		if rec := encodeCommit(nil, want); !bytes.Equal(rec, data[2:2+n]) {
			t.Errorf("commit %d: a commit without presences or reasons is no longer written as version 1", i)
		}
		got, err := decodeCommit(data[2 : 2+n])
		data = data[2+n:]
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalizeCommit(got), normalizeCommit(want)) {
			t.Errorf("commit %d decodes as %+v, want %+v", i, got, want)
		}
	}
}

// TestSnapshotFormatV2Loads: a snapshot written by version 2 (before presences) still loads.
func TestSnapshotFormatV2Loads(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "snapshot-v2.golden"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.seq != 5 || f.tree.Len() != 5 || len(f.idem) != 1 {
		t.Fatalf("snapshot decodes as seq %d, %d keys, idem %+v", f.seq, f.tree.Len(), f.idem)
	}
	it, ok := f.tree.Get(item{key: "/p/ann"})
	if !ok || !it.ephemeral() || it.presence() != nil || string(it.value()) != `{"x":1}` {
		t.Fatalf("/p/ann: %+v", it.entry())
	}
	part, err := readSnapshotPart(bufio.NewReader(bytes.NewReader(data)))
	if err != nil || !bytes.Equal(part, data) {
		t.Fatalf("readSnapshotPart: %v", err)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("STATEHUB_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with STATEHUB_UPDATE_GOLDEN=1)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from %s: a format change breaks reading old data (if deliberate, rerun with STATEHUB_UPDATE_GOLDEN=1)", path)
	}
}

func TestCommitFormatGolden(t *testing.T) {
	t.Parallel()
	var all []byte
	for _, c := range goldenCommits() {
		rec := encodeCommit(nil, c)
		all = append(all, byte(len(rec)>>8), byte(len(rec)))
		all = append(all, rec...)
	}
	golden(t, "commits.golden", all)

	data, _ := os.ReadFile(filepath.Join("testdata", "commits.golden"))
	checkFramedCommits(t, data, goldenCommits())
}

// checkFramedCommits decodes data, records each after its 2-byte big-endian length as the golden
// commit files hold them, and checks it holds the commits want, in order.
func checkFramedCommits(t *testing.T, data []byte, want []*Commit) {
	t.Helper()
	for i, w := range want {
		n := int(data[0])<<8 | int(data[1])
		got, err := decodeCommit(data[2 : 2+n])
		data = data[2+n:]
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalizeCommit(got), normalizeCommit(w)) {
			t.Errorf("commit %d decodes as %+v, want %+v", i, got, w)
		}
	}
}

// normalizeCommit makes empty and nil byte slices and times in other zones compare equal.
func normalizeCommit(c *Commit) Commit {
	out := *c
	if !c.Time.IsZero() {
		out.Time = c.Time.UTC()
	}
	out.Changes = make([]Change, len(c.Changes))
	for i, ch := range c.Changes {
		if len(ch.Value) == 0 {
			ch.Value = nil
		}
		ch.Expires = ch.Expires.UTC()
		out.Changes[i] = ch
	}
	if c.Idem != nil {
		r := *c.Idem
		r.Expires = r.Expires.UTC()
		if len(r.Result.Value) == 0 {
			r.Result.Value = nil
		}
		out.Idem = &r
	}
	return out
}

func TestSnapshotFormatGolden(t *testing.T) {
	t.Parallel()
	// The clock stands before the commits' TTL and idempotency deadlines: none expires meanwhile.
	h := New(Config{Clock: fakeclock.New(goldenTime)}).Store.(*Local)
	for _, c := range goldenCommits() {
		h.Replay(c)
	}
	var buf bytes.Buffer
	if _, err := h.writeSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "snapshot.golden", buf.Bytes())

	data, _ := os.ReadFile(filepath.Join("testdata", "snapshot.golden"))
	f, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.seq != 7 || f.tree.Len() != 6 || len(f.idem) != 1 || f.idem[0].Key != "k1" {
		t.Fatalf("snapshot decodes as seq %d, %d keys, idem %+v", f.seq, f.tree.Len(), f.idem)
	}
	want := map[string]Entry{}
	for _, c := range goldenCommits() {
		for _, ch := range c.Changes {
			if ch.Deleted {
				continue
			}
			want[ch.Key] = Entry{Key: ch.Key, Value: ch.Value, Revision: ch.Revision, Seq: c.Seq, Expires: ch.Expires.UTC(), Type: ch.Type, lock: ch.lock, Ephemeral: ch.Ephemeral, Presence: ch.Presence}
		}
	}
	f.tree.Scan(func(it item) bool {
		got := it.entry()
		got.Expires = got.Expires.UTC()
		if w := want[it.key]; !reflect.DeepEqual(got, w) {
			t.Errorf("snapshot entry %+v, want %+v", got, w)
		}
		return true
	})
}
