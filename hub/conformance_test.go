package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal/waltest"
	"github.com/statehub/statehub/internal/fakeclock"
)

// The conformance suite runs every store test body against every store: Local in memory, Local
// on the disk layer (the WAL over waltest's file system) and Etcd. The bodies assert only what
// every store promises. A seq is strictly increasing and shared by a commit's events, but not
// consecutive: Etcd's seq is the cluster revision, which bookkeeping writes and the other tests
// on the same etcd advance too (the one known difference, documented in etcd.go). A subscriber
// reads its queue on another goroutine, and Etcd's own deletes (an expiry, a session's end)
// reach the feed through its watch after the fake clock has moved, so bodies wait for each event
// (confStream.next, whose deadline only guards against a hang) and prove that nothing happened
// by writing a marker and seeing it come next (confStream.quiet); they never sleep.

// forEveryStore runs body against every store, each in a parallel subtest. mk builds a hub from a
// config whose Journal is left nil; the hub is closed when the test ends.
func forEveryStore(t *testing.T, body func(t *testing.T, mk func(hub.Config) *hub.Hub)) {
	t.Helper()
	stores := []struct {
		name string
		open func(t *testing.T, cfg hub.Config) *hub.Hub
	}{
		{"memory", func(t *testing.T, cfg hub.Config) *hub.Hub { return newHub(t, cfg) }},
		{"disk", newDiskHub},
		{"etcd", func(t *testing.T, cfg hub.Config) *hub.Hub { return newEtcdHub(t, cfg) }},
		{"etcd3.6", func(t *testing.T, cfg hub.Config) *hub.Hub { return newEmbeddedEtcdHub(t, cfg) }},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			body(t, func(cfg hub.Config) *hub.Hub { return s.open(t, cfg) })
		})
	}
}

// newDiskHub returns a hub on the disk store (Open) over an in-memory waltest file system.
func newDiskHub(t *testing.T, cfg hub.Config) *hub.Hub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := hub.Open(cfg, hub.StoreConfig{Dir: "/data", FS: waltest.New(1)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestConformance runs each case of the suite on every store.
func TestConformance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body func(t *testing.T, mk func(hub.Config) *hub.Hub)
	}{
		{"seq", confSeq},
		{"values as written", confValuesAsWritten},
		{"revisions", confRevisions},
		{"cas", confCAS},
		{"if-match", confIfMatch},
		{"if-none-match", confIfNoneMatch},
		{"incr", confIncr},
		{"tx atomicity", confTxAtomicity},
		{"delete subtree", confDeleteSubtree},
		{"delete large subtree", confDeleteLargeSubtree},
		{"ttl expiry", confTTL},
		{"feed since", confFeedSince},
		{"feed snapshot", confFeedSnapshot},
		{"feed paged snapshot", confFeedPagedSnapshot},
		{"backup of many keys", confBackupPages},
		{"feed reset", confFeedReset},
		{"idempotency", confIdempotency},
		{"lock fences", confLockFences},
		{"lock waiters", confLockWaiters},
		{"lock fifo", confLockFIFO},
		{"fenced writes", confFencedWrites},
		{"lock expiry", confLockExpiry},
		{"sessions", confSessions},
		{"presence", confPresence},
		{"on disconnect", confOnDisconnect},
		{"history", confHistory},
		{"broadcast", confBroadcast},
		{"broadcasts only", confBroadcastsOnly},
		{"history retention", confHistoryRetention},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEveryStore(t, c.body)
		})
	}
}

// confDeadline bounds every wait for an event. It only guards against a hang: nothing is asserted
// about how long anything takes.
const confDeadline = 30 * time.Second

// confStream reads a subscription's live events on a goroutine, so a test waits for each with a
// deadline.
type confStream struct {
	t   *testing.T
	h   *hub.Hub
	sub *hub.Subscription
	ch  chan hub.Event
	n   int // markers written, for unique values
}

// confSubscribe subscribes to path; the subscription ends with the test.
func confSubscribe(t *testing.T, h *hub.Hub, path string, opt hub.SubscribeOptions) *confStream {
	t.Helper()
	sub, err := h.Subscribe(path, opt)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", path, err)
	}
	s := &confStream{t: t, h: h, sub: sub, ch: make(chan hub.Event)}
	done := make(chan struct{})
	go func() {
		defer close(s.ch)
		for {
			e, ok := sub.Next()
			if !ok {
				return
			}
			select {
			case s.ch <- e:
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		sub.Close()
	})
	return s
}

// next waits for the next live event.
func (s *confStream) next() hub.Event {
	s.t.Helper()
	select {
	case e, ok := <-s.ch:
		if !ok {
			s.t.Fatalf("subscription of %s ended: %v", s.sub.Path, s.sub.Err())
		}
		return e
	case <-time.After(confDeadline):
		s.t.Fatalf("no event on %s within %v", s.sub.Path, confDeadline)
	}
	panic("unreachable")
}

// until writes marker (a key under the subscribed path) and returns the live events before its
// event: everything committed, on this path, before the marker.
func (s *confStream) until(marker string) []hub.Event {
	s.t.Helper()
	s.n++
	if _, err := s.h.Set(marker, []byte(strconv.Itoa(s.n)), hub.Cond{}, hub.WriteOptions{}); err != nil {
		s.t.Fatalf("marker %s: %v", marker, err)
	}
	var out []hub.Event
	for {
		e := s.next()
		if e.Key == marker && !e.Deleted && string(e.Value) == strconv.Itoa(s.n) {
			return out
		}
		out = append(out, e)
	}
}

// quiet asserts that nothing on the path changed before marker's write.
func (s *confStream) quiet(marker, what string) {
	s.t.Helper()
	if evs := s.until(marker); len(evs) != 0 {
		s.t.Fatalf("%s: events %v, want none", what, confEvents(evs))
	}
}

// confEvents formats events for messages.
func confEvents(es []hub.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s rev %d seq %d deleted %v value %s", e.Key, e.Revision, e.Seq, e.Deleted, e.Value)
	}
	return out
}

// confEvent checks one event of a change.
func confEvent(t *testing.T, e hub.Event, key string, rev int64, seq uint64, deleted bool) {
	t.Helper()
	if e.Key != key || e.Revision != rev || e.Seq != seq || e.Deleted != deleted || e.Snapshot || deleted != (e.Value == nil) {
		t.Fatalf("event %v, want %s rev %d seq %d deleted %v", confEvents([]hub.Event{e}), key, rev, seq, deleted)
	}
}

// confDeleted checks the event of a delete the store made by itself (an expiry, the end of a
// session), whose seq the test does not know.
func confDeleted(t *testing.T, e hub.Event, key string, rev int64) {
	t.Helper()
	if e.Seq == 0 {
		t.Fatalf("event %v has no seq", confEvents([]hub.Event{e}))
	}
	confEvent(t, e, key, rev, e.Seq, true)
}

// confEntry returns key's entry, which must exist.
func confEntry(t *testing.T, h *hub.Hub, key string) hub.Entry {
	t.Helper()
	e, err := h.Get(key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return e
}

// confAbsent asserts that key does not exist.
func confAbsent(t *testing.T, h *hub.Hub, key string) {
	t.Helper()
	if e, err := h.Get(key); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("Get %s = %+v, %v; want ErrNotFound", key, e, err)
	}
}

// confValuesAsWritten: a value comes back byte for byte as it was written (compacted): through
// Get, List, events, a transaction, an idempotent retry's answer and a snapshot, number literals
// and characters that HTML escaping would rewrite (<, >, &, U+2028) included.
func confValuesAsWritten(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	const v = "{\"html\":\"<b>&amp;</b>\",\"sep\":\"a\u2028b\",\"n\":12345678901234567890,\"f\":1.50}"
	s := confSubscribe(t, h, "/v/", hub.SubscribeOptions{})
	first, err := h.Set("/v/a", []byte(v), hub.Cond{}, hub.WriteOptions{Idempotency: "as-written"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.Set("/v/a", []byte(v), hub.Cond{}, hub.WriteOptions{Idempotency: "as-written"}); err != nil || again.Seq != first.Seq {
		t.Fatalf("the idempotent retry answered %+v, %v; want the first answer %+v", again, err, first)
	}
	if _, err := h.Tx(nil, []hub.TxOp{{Op: "set", Key: "/v/b", Value: []byte(v)}}, hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"/v/a", "/v/b"} {
		if e := confEntry(t, h, key); string(e.Value) != v {
			t.Fatalf("Get %s = %s, want %s", key, e.Value, v)
		}
	}
	page, err := h.List("/v/", hub.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		if string(e.Value) != v {
			t.Fatalf("List: %s = %s, want %s", e.Key, e.Value, v)
		}
	}
	for _, key := range []string{"/v/a", "/v/b"} {
		if e := s.next(); e.Key != key || string(e.Value) != v {
			t.Fatalf("event %s = %s, want %s = %s", e.Key, e.Value, key, v)
		}
	}
	snap := confSubscribe(t, h, "/v/", hub.SubscribeOptions{Snapshot: true}).sub.TestInitial()
	if len(snap) != 2 {
		t.Fatalf("snapshot %v, want /v/a and /v/b", confEvents(snap))
	}
	for _, e := range snap {
		if string(e.Value) != v {
			t.Fatalf("snapshot: %s = %s, want %s", e.Key, e.Value, v)
		}
	}
}

// confSeq: every commit takes a seq larger than every earlier one; its answer, the entries it
// writes and its events all carry it; a write that changes nothing commits nothing.
func confSeq(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	s := confSubscribe(t, h, "/c/", hub.SubscribeOptions{})
	ctx := context.Background()
	var last uint64
	// commit checks a commit's seq and that its events, on keys, carry it.
	commit := func(what string, seq uint64, keys ...string) {
		t.Helper()
		if seq <= last {
			t.Fatalf("%s committed at seq %d, not after %d", what, seq, last)
		}
		last = seq
		if cur := h.Seq(); cur < seq {
			t.Fatalf("%s: Seq() = %d after a commit at %d", what, cur, seq)
		}
		for _, k := range keys {
			if e := s.next(); e.Key != k || e.Seq != seq {
				t.Fatalf("%s: event %v, want %s at seq %d", what, confEvents([]hub.Event{e}), k, seq)
			}
		}
	}
	entrySeq := func(key string, seq uint64) {
		t.Helper()
		if e := confEntry(t, h, key); e.Seq != seq {
			t.Fatalf("%s has seq %d, want that of its last write, %d", key, e.Seq, seq)
		}
	}

	r := set(t, h, "/c/a", `1`)
	commit("set", r.Seq, "/c/a")
	entrySeq("/c/a", r.Seq)
	r = must(h.Set("/c/b", []byte(`2`), hub.Cond{NextRevision: ptr[int64](0)}, hub.WriteOptions{}))
	commit("cas", r.Seq, "/c/b")
	entrySeq("/c/b", r.Seq)
	r = must(h.Incr("/c/n", 2, hub.WriteOptions{}))
	commit("incr", r.Seq, "/c/n")
	entrySeq("/c/n", r.Seq)
	r = must(h.Set("/c/t", []byte(`3`), hub.Cond{}, hub.WriteOptions{TTL: time.Hour}))
	commit("set with ttl", r.Seq, "/c/t")
	entrySeq("/c/t", r.Seq)
	r = must(h.Delete("/c/a", hub.Cond{}, hub.WriteOptions{}))
	commit("delete", r.Seq, "/c/a")
	tx := must(h.Tx(nil, []hub.TxOp{
		{Op: hub.TxSet, Key: "/c/y", Value: json.RawMessage(`1`)},
		{Op: hub.TxSet, Key: "/c/x", Value: json.RawMessage(`2`)},
	}, hub.WriteOptions{}))
	commit("tx", tx.Seq, "/c/x", "/c/y")
	entrySeq("/c/x", tx.Seq)
	entrySeq("/c/y", tx.Seq)
	lk := must(h.Lock(ctx, "/c/l", hub.LockOptions{}))
	commit("lock", lk.Seq, "/c/l")
	entrySeq("/c/l", lk.Seq)
	if lk.Fence != lk.Seq {
		t.Fatalf("lock fence %d, want the acquisition's seq %d", lk.Fence, lk.Seq)
	}
	rn := must(h.RenewLock("/c/l", lk.Token, time.Hour))
	commit("renew", rn.Seq, "/c/l")
	entrySeq("/c/l", rn.Seq)
	r = must(h.Unlock("/c/l", lk.Token))
	commit("unlock", r.Seq, "/c/l")
	r = must(h.DeletePrefix("/c/", hub.WriteOptions{}))
	commit("delete subtree", r.Seq, "/c/b", "/c/n", "/c/t", "/c/x", "/c/y")

	// Writes that change nothing answer a seq no earlier than the last commit and commit nothing.
	r = must(h.DeletePrefix("/c/none/", hub.WriteOptions{}))
	if r.Seq < last || r.Deleted != 0 {
		t.Fatalf("deleting an empty subtree = %+v, want nothing deleted at a seq from %d", r, last)
	}
	if _, err := h.Set("/c/b", []byte(`1`), hub.Cond{NextRevision: ptr[int64](5)}, hub.WriteOptions{}); !errors.Is(err, hub.ErrRevisionConflict) {
		t.Fatalf("a conflicting write: %v", err)
	}
	s.quiet("/c/marker", "writes that change nothing")
}

// confRevisions: a key's revision is 0 when created and +1 on every change, whatever the write;
// a delete's event carries the last revision + 1; a re-created key starts at 0 again.
func confRevisions(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{Clock: fakeclock.New(t0)})
	s := confSubscribe(t, h, "/r/", hub.SubscribeOptions{})
	session := h.NewSession()
	var token string
	steps := []struct {
		name    string
		key     string
		do      func() (int64, uint64, error) // the answer's revision and seq
		rev     int64                         // the revision the change gives the key
		deleted bool
	}{
		{"create", "/r/k", resultOf(func() (hub.Result, error) { return h.Set("/r/k", []byte(`1`), hub.Cond{}, hub.WriteOptions{}) }), 0, false},
		{"set", "/r/k", resultOf(func() (hub.Result, error) { return h.Set("/r/k", []byte(`2`), hub.Cond{}, hub.WriteOptions{}) }), 1, false},
		{"incr", "/r/k", resultOf(func() (hub.Result, error) { return h.Incr("/r/k", 1, hub.WriteOptions{}) }), 2, false},
		{"set with ttl", "/r/k", resultOf(func() (hub.Result, error) {
			return h.Set("/r/k", []byte(`3`), hub.Cond{}, hub.WriteOptions{TTL: time.Hour})
		}), 3, false},
		{"ephemeral set", "/r/k", resultOf(func() (hub.Result, error) {
			return h.Set("/r/k", []byte(`4`), hub.Cond{}, hub.WriteOptions{Session: session})
		}), 4, false},
		{"tx set", "/r/k", txResultOf(h, hub.TxOp{Op: hub.TxSet, Key: "/r/k", Value: json.RawMessage(`5`)}), 5, false},
		{"tx incr", "/r/k", txResultOf(h, hub.TxOp{Op: hub.TxIncr, Key: "/r/k", By: 1}), 6, false},
		{"delete", "/r/k", resultOf(func() (hub.Result, error) { return h.Delete("/r/k", hub.Cond{}, hub.WriteOptions{}) }), 7, true},
		{"re-create", "/r/k", resultOf(func() (hub.Result, error) { return h.Incr("/r/k", 1, hub.WriteOptions{}) }), 0, false},
		{"tx delete", "/r/k", txResultOf(h, hub.TxOp{Op: hub.TxDelete, Key: "/r/k"}), 1, true},
		{"re-create in a tx", "/r/k", txResultOf(h, hub.TxOp{Op: hub.TxSet, Key: "/r/k", Value: json.RawMessage(`1`)}), 0, false},
		{"subtree delete", "/r/k", func() (int64, uint64, error) {
			r, err := h.DeletePrefix("/r/", hub.WriteOptions{})
			return 1, r.Seq, err // DeletePrefix answers no revision
		}, 1, true},
		{"lock", "/r/l", func() (int64, uint64, error) {
			lk, err := h.Lock(context.Background(), "/r/l", hub.LockOptions{})
			token = lk.Token
			return lk.Revision, lk.Seq, err
		}, 0, false},
		{"renew", "/r/l", func() (int64, uint64, error) {
			lk, err := h.RenewLock("/r/l", token, time.Hour)
			return lk.Revision, lk.Seq, err
		}, 1, false},
		{"unlock", "/r/l", func() (int64, uint64, error) {
			r, err := h.Unlock("/r/l", token)
			return r.Revision, r.Seq, err
		}, 2, true},
	}
	for _, st := range steps {
		rev, seq, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if rev != st.rev {
			t.Fatalf("%s answered revision %d, want %d", st.name, rev, st.rev)
		}
		confEvent(t, s.next(), st.key, st.rev, seq, st.deleted)
		if st.deleted {
			confAbsent(t, h, st.key)
		} else if e := confEntry(t, h, st.key); e.Revision != st.rev || e.Seq != seq {
			t.Fatalf("%s: entry at revision %d seq %d, want %d at %d", st.name, e.Revision, e.Seq, st.rev, seq)
		}
	}
}

func resultOf(do func() (hub.Result, error)) func() (int64, uint64, error) {
	return func() (int64, uint64, error) {
		r, err := do()
		return r.Revision, r.Seq, err
	}
}

func txResultOf(h *hub.Hub, op hub.TxOp) func() (int64, uint64, error) {
	return func() (int64, uint64, error) {
		r, err := h.Tx(nil, []hub.TxOp{op}, hub.WriteOptions{})
		if err != nil {
			return 0, 0, err
		}
		return r.Ops[0].Revision, r.Seq, nil
	}
}

// A condState is the state a precondition case starts from.
type condState int

const (
	stAbsent  condState = iota
	stRev1              // written twice: revision 1
	stDeleted           // written once, then deleted
)

// confSetup puts key in state st and returns the seqs of its two writes (0 when none).
func confSetup(t *testing.T, h *hub.Hub, key string, st condState) (old, cur uint64) {
	t.Helper()
	switch st {
	case stRev1:
		old = set(t, h, key, `"old"`).Seq
		cur = set(t, h, key, `"cur"`).Seq
	case stDeleted:
		old = set(t, h, key, `"old"`).Seq
		must(h.Delete(key, hub.Cond{}, hub.WriteOptions{}))
	}
	return old, cur
}

// condCase is one write under a precondition: a set of "new", or a delete.
type condCase struct {
	name    string
	state   condState
	cond    func(old, cur uint64) hub.Cond
	delete  bool
	wantErr error // nil: the write succeeds
}

// runCondCases runs each case on a key of its own, under /p/<case>/: a failed write changes
// nothing (no event, the entry as it was) and reports the key's current revision; a successful
// one commits exactly its change.
func runCondCases(t *testing.T, mk func(hub.Config) *hub.Hub, cases []condCase) {
	h := mk(hub.Config{})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := fmt.Sprintf("/p/%d/", i)
			key := dir + "k"
			old, cur := confSetup(t, h, key, tc.state)
			s := confSubscribe(t, h, dir, hub.SubscribeOptions{})
			before, getErr := h.Get(key)
			rev := int64(-1)
			if getErr == nil {
				rev = before.Revision
			}
			var res hub.Result
			var err error
			if tc.delete {
				res, err = h.Delete(key, tc.cond(old, cur), hub.WriteOptions{})
			} else {
				res, err = h.Set(key, []byte(`"new"`), tc.cond(old, cur), hub.WriteOptions{})
			}
			if tc.wantErr != nil {
				var ce *hub.ConflictError
				if !errors.Is(err, tc.wantErr) || !errors.As(err, &ce) || ce.Key != key || ce.Revision != rev {
					t.Fatalf("write = %+v, %v; want %v reporting %s at revision %d", res, err, tc.wantErr, key, rev)
				}
				s.quiet(dir+"marker", "a failed precondition")
				after, gone := h.Get(key)
				if (getErr == nil) != (gone == nil) || after.Revision != before.Revision || string(after.Value) != string(before.Value) {
					t.Fatalf("the entry changed from %+v to %+v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			want := rev + 1 // 0 for a key created
			if res.Revision != want {
				t.Fatalf("write answered revision %d, want %d", res.Revision, want)
			}
			confEvent(t, s.next(), key, want, res.Seq, tc.delete)
		})
	}
}

// confCAS: X-Revision (NextRevision: the revision the write will make, 0 to create) and a
// delete's Revision (the revision the key is at).
func confCAS(t *testing.T, mk func(hub.Config) *hub.Hub) {
	next := func(n int64) func(uint64, uint64) hub.Cond {
		return func(uint64, uint64) hub.Cond { return hub.Cond{NextRevision: ptr(n)} }
	}
	at := func(n int64) func(uint64, uint64) hub.Cond {
		return func(uint64, uint64) hub.Cond { return hub.Cond{Revision: ptr(n)} }
	}
	runCondCases(t, mk, []condCase{
		{"create absent", stAbsent, next(0), false, nil},
		{"absent, next 1", stAbsent, next(1), false, hub.ErrRevisionConflict},
		{"absent, next -1", stAbsent, next(-1), false, hub.ErrRevisionConflict},
		{"rev 1, next 2", stRev1, next(2), false, nil},
		{"rev 1, next 1", stRev1, next(1), false, hub.ErrRevisionConflict},
		{"rev 1, next 0", stRev1, next(0), false, hub.ErrRevisionConflict},
		{"rev 1, next 3", stRev1, next(3), false, hub.ErrRevisionConflict},
		{"deleted, next 0", stDeleted, next(0), false, nil},
		{"deleted, next 1", stDeleted, next(1), false, hub.ErrRevisionConflict},
		{"set at rev 1", stRev1, at(1), false, nil},
		{"set at rev 0 of rev 1", stRev1, at(0), false, hub.ErrRevisionConflict},
		{"delete at rev 1", stRev1, at(1), true, nil},
		{"delete at rev 0 of rev 1", stRev1, at(0), true, hub.ErrRevisionConflict},
		{"delete absent at rev 0", stAbsent, at(0), true, hub.ErrRevisionConflict},
		{"delete with next revision", stRev1, next(2), true, nil},
	})
}

// confIfMatch: If-Match (MatchSeqs: the ETag, the seq of the key's last change; MatchAny: *).
func confIfMatch(t *testing.T, mk func(hub.Config) *hub.Hub) {
	seqs := func(which ...string) func(uint64, uint64) hub.Cond {
		return func(old, cur uint64) hub.Cond {
			var c hub.Cond
			for _, w := range which {
				switch w {
				case "old":
					c.MatchSeqs = append(c.MatchSeqs, old)
				case "cur":
					c.MatchSeqs = append(c.MatchSeqs, cur)
				case "zero":
					c.MatchSeqs = append(c.MatchSeqs, 0)
				}
			}
			return c
		}
	}
	anyMatch := func(uint64, uint64) hub.Cond { return hub.Cond{MatchAny: true} }
	runCondCases(t, mk, []condCase{
		{"current seq", stRev1, seqs("cur"), false, nil},
		{"old seq", stRev1, seqs("old"), false, hub.ErrPreconditionFailed},
		{"old or current", stRev1, seqs("old", "cur"), false, nil},
		{"seq 0", stRev1, seqs("zero"), false, hub.ErrPreconditionFailed},
		{"absent", stAbsent, seqs("zero"), false, hub.ErrPreconditionFailed},
		{"deleted, its old seq", stDeleted, seqs("old"), false, hub.ErrPreconditionFailed},
		{"any, present", stRev1, anyMatch, false, nil},
		{"any, absent", stAbsent, anyMatch, false, hub.ErrPreconditionFailed},
		{"delete, current seq", stRev1, seqs("cur"), true, nil},
		{"delete, old seq", stRev1, seqs("old"), true, hub.ErrPreconditionFailed},
	})
}

// confIfNoneMatch: If-None-Match: * (Absent).
func confIfNoneMatch(t *testing.T, mk func(hub.Config) *hub.Hub) {
	absent := func(uint64, uint64) hub.Cond { return hub.Cond{Absent: true} }
	runCondCases(t, mk, []condCase{
		{"absent", stAbsent, absent, false, nil},
		{"present", stRev1, absent, false, hub.ErrPreconditionFailed},
		{"deleted", stDeleted, absent, false, nil},
	})
}

// confIncr: an increment creates, adds, refuses what is not a 64-bit integer and overflows at both
// ends; a refused one changes nothing.
func confIncr(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	tests := []struct {
		name    string
		start   string // "" for an absent key
		by      int64
		want    string
		wantErr error
	}{
		{"create", "", 5, "5", nil},
		{"create negative", "", -5, "-5", nil},
		{"add", "41", 1, "42", nil},
		{"subtract", "-3", -4, "-7", nil},
		{"by zero", "7", 0, "7", nil},
		{"to the maximum", strconv.FormatInt(math.MaxInt64-1, 10), 1, strconv.FormatInt(math.MaxInt64, 10), nil},
		{"to the minimum", strconv.FormatInt(math.MinInt64+1, 10), -1, strconv.FormatInt(math.MinInt64, 10), nil},
		{"overflow", strconv.FormatInt(math.MaxInt64, 10), 1, "", hub.ErrOverflow},
		{"overflow by much", "1", math.MaxInt64, "", hub.ErrOverflow},
		{"underflow", strconv.FormatInt(math.MinInt64, 10), -1, "", hub.ErrOverflow},
		{"underflow by much", "-2", math.MinInt64, "", hub.ErrOverflow},
		{"a string", `"1"`, 1, "", hub.ErrNotInteger},
		{"a fraction", `1.5`, 1, "", hub.ErrNotInteger},
		{"an exponent", `1e3`, 1, "", hub.ErrNotInteger},
		{"an object", `{"n":1}`, 1, "", hub.ErrNotInteger},
		{"null", `null`, 1, "", hub.ErrNotInteger},
		{"past 64 bits", "9223372036854775808", -1, "", hub.ErrNotInteger},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := fmt.Sprintf("/i/%d/", i)
			key := dir + "n"
			if tc.start != "" {
				set(t, h, key, tc.start)
			}
			s := confSubscribe(t, h, dir, hub.SubscribeOptions{})
			res, err := h.Incr(key, tc.by, hub.WriteOptions{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Incr = %+v, %v; want %v", res, err, tc.wantErr)
				}
				s.quiet(dir+"marker", "a refused increment")
				if e := confEntry(t, h, key); string(e.Value) != tc.start || e.Revision != 0 {
					t.Fatalf("after a refused increment %s is %s at revision %d", key, e.Value, e.Revision)
				}
				return
			}
			if err != nil {
				t.Fatalf("Incr: %v", err)
			}
			rev := int64(0)
			if tc.start != "" {
				rev = 1
			}
			if string(res.Value) != tc.want || res.Revision != rev {
				t.Fatalf("Incr = %s at revision %d, want %s at %d", res.Value, res.Revision, tc.want, rev)
			}
			e := s.next()
			confEvent(t, e, key, rev, res.Seq, false)
			if string(e.Value) != tc.want {
				t.Fatalf("event value %s, want %s", e.Value, tc.want)
			}
			if e := confEntry(t, h, key); string(e.Value) != tc.want {
				t.Fatalf("%s = %s, want %s", key, e.Value, tc.want)
			}
		})
	}
}

// confTxAtomicity: a transaction commits all its changes at one seq, their events in key order,
// or, when a check or an operation fails, nothing at all.
func confTxAtomicity(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	set(t, h, "/t/a", `1`)
	set(t, h, "/t/s", `"x"`)
	set(t, h, "/t/d", `true`)
	lk := must(h.Lock(context.Background(), "/t/l", hub.LockOptions{}))
	s := confSubscribe(t, h, "/t/", hub.SubscribeOptions{})
	values := func() map[string]string {
		out := map[string]string{}
		for _, k := range []string{"/t/a", "/t/s", "/t/d", "/t/new", "/t/l"} {
			if e, err := h.Get(k); err == nil {
				out[k] = fmt.Sprintf("%s@%d", e.Value, e.Revision)
			}
		}
		return out
	}
	before := values()
	ops := func(extra ...hub.TxOp) []hub.TxOp {
		return append([]hub.TxOp{
			{Op: hub.TxSet, Key: "/t/new", Value: json.RawMessage(`1`)},
			{Op: hub.TxIncr, Key: "/t/a", By: 1},
			{Op: hub.TxDelete, Key: "/t/d"},
		}, extra...)
	}
	failures := []struct {
		name    string
		checks  []hub.TxCheck
		ops     []hub.TxOp
		wantErr error
		key     string // the key a ConflictError names
	}{
		{"a check of a wrong revision", []hub.TxCheck{{Key: "/t/a", Revision: 0}, {Key: "/t/s", Revision: 3}}, ops(), hub.ErrRevisionConflict, "/t/s"},
		{"a check that a present key is absent", []hub.TxCheck{{Key: "/t/a", Revision: -1}}, ops(), hub.ErrRevisionConflict, "/t/a"},
		{"a check that an absent key exists", []hub.TxCheck{{Key: "/t/nope", Revision: 0}}, ops(), hub.ErrRevisionConflict, "/t/nope"},
		{"an incr of a string", nil, ops(hub.TxOp{Op: hub.TxIncr, Key: "/t/s", By: 1}), hub.ErrNotInteger, ""},
		{"an overflow", nil, []hub.TxOp{
			{Op: hub.TxSet, Key: "/t/new", Value: json.RawMessage(`1`)},
			{Op: hub.TxIncr, Key: "/t/a", By: math.MaxInt64},
		}, hub.ErrOverflow, ""},
		{"a write to a held lock", nil, ops(hub.TxOp{Op: hub.TxSet, Key: "/t/l", Value: json.RawMessage(`1`)}), hub.ErrLocked, ""},
		{"a delete of a held lock", nil, ops(hub.TxOp{Op: hub.TxDelete, Key: "/t/l"}), hub.ErrLocked, ""},
	}
	for _, f := range failures {
		res, err := h.Tx(f.checks, f.ops, hub.WriteOptions{})
		if !errors.Is(err, f.wantErr) {
			t.Fatalf("%s: Tx = %+v, %v; want %v", f.name, res, err, f.wantErr)
		}
		var ce *hub.ConflictError
		if f.key != "" && (!errors.As(err, &ce) || ce.Key != f.key) {
			t.Fatalf("%s: %v, want a conflict naming %s", f.name, err, f.key)
		}
		s.quiet("/t/marker", f.name)
		if after := values(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("%s changed the state from %v to %v", f.name, before, after)
		}
	}

	res, err := h.Tx([]hub.TxCheck{{Key: "/t/a", Revision: 0}, {Key: "/t/new", Revision: -1}},
		ops(hub.TxOp{Op: hub.TxDelete, Key: "/t/absent"}), hub.WriteOptions{})
	if err != nil {
		t.Fatalf("Tx: %v", err)
	}
	wantOps := []hub.TxOpResult{
		{Key: "/t/new", Revision: 0},
		{Key: "/t/a", Revision: 1, Value: json.RawMessage(`2`)},
		{Key: "/t/d", Revision: 1},
		{Key: "/t/absent", Revision: -1},
	}
	if fmt.Sprint(res.Ops) != fmt.Sprint(wantOps) || res.Replayed {
		t.Fatalf("Tx = %+v, want ops %+v", res, wantOps)
	}
	// One commit, its events in key order.
	confEvent(t, s.next(), "/t/a", 1, res.Seq, false)
	confEvent(t, s.next(), "/t/d", 1, res.Seq, true)
	confEvent(t, s.next(), "/t/new", 0, res.Seq, false)
	s.quiet("/t/marker", "after the transaction")
	if e := confEntry(t, h, "/t/a"); string(e.Value) != "2" || e.Seq != res.Seq {
		t.Fatalf("/t/a = %+v after the transaction at seq %d", e, res.Seq)
	}
	confAbsent(t, h, "/t/d")
	must(h.Unlock("/t/l", lk.Token))
}

// confDeleteSubtree: deleting a subtree deletes every key under it, locks and ephemeral keys
// included, in one commit whose events come in key order; nothing outside it changes.
func confDeleteSubtree(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	set(t, h, "/d/b", `1`)
	set(t, h, "/d/b", `2`)
	set(t, h, "/d/a", `1`)
	set(t, h, "/d/c/x", `1`)
	set(t, h, "/dd", `1`)  // shares the prefix's characters, not its subtree
	set(t, h, "/e/d", `1`) // another subtree
	must(h.Lock(context.Background(), "/d/l", hub.LockOptions{}))
	must(h.Set("/d/p", []byte(`1`), hub.Cond{}, hub.WriteOptions{Session: h.NewSession()}))
	s := confSubscribe(t, h, "/", hub.SubscribeOptions{})
	res, err := h.DeletePrefix("/d/", hub.WriteOptions{})
	if err != nil || res.Deleted != 5 {
		t.Fatalf("DeletePrefix = %+v, %v; want 5 deleted", res, err)
	}
	for _, want := range []struct {
		key string
		rev int64
	}{{"/d/a", 1}, {"/d/b", 2}, {"/d/c/x", 1}, {"/d/l", 1}, {"/d/p", 1}} {
		confEvent(t, s.next(), want.key, want.rev, res.Seq, true)
		confAbsent(t, h, want.key)
	}
	s.quiet("/marker", "after the subtree delete")
	confEntry(t, h, "/dd")
	confEntry(t, h, "/e/d")

	res, err = h.DeletePrefix("/d/", hub.WriteOptions{})
	if err != nil || res.Deleted != 0 {
		t.Fatalf("deleting an empty subtree = %+v, %v", res, err)
	}
	s.quiet("/marker", "deleting an empty subtree")
	if _, err := h.DeletePrefix("/d", hub.WriteOptions{}); !errors.Is(err, hub.ErrInvalidKey) {
		t.Fatalf("DeletePrefix of a key: %v, want ErrInvalidKey", err)
	}
}

// confDeleteLargeSubtree: a subtree larger than one etcd transaction is still deleted in one
// commit, its events in key order.
func confDeleteLargeSubtree(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	const n = 150
	var keys []string
	for batch := 0; batch < n; batch += 50 {
		var ops []hub.TxOp
		for i := batch; i < batch+50; i++ {
			k := fmt.Sprintf("/big/%03d", i)
			keys = append(keys, k)
			ops = append(ops, hub.TxOp{Op: hub.TxSet, Key: k, Value: json.RawMessage(strconv.Itoa(i))})
		}
		must(h.Tx(nil, ops, hub.WriteOptions{}))
	}
	s := confSubscribe(t, h, "/big/", hub.SubscribeOptions{})
	res, err := h.DeletePrefix("/big/", hub.WriteOptions{Idempotency: "big"})
	if err != nil || res.Deleted != n {
		t.Fatalf("DeletePrefix = %+v, %v; want %d deleted", res, err, n)
	}
	for _, k := range keys {
		confEvent(t, s.next(), k, 1, res.Seq, true)
	}
	// A retry answers the first result and deletes nothing again.
	again, err := h.DeletePrefix("/big/", hub.WriteOptions{Idempotency: "big"})
	if err != nil || !again.Replayed || again.Deleted != n || again.Seq != res.Seq {
		t.Fatalf("retried DeletePrefix = %+v, %v; want the first answer %+v, replayed", again, err, res)
	}
	s.quiet("/big/marker", "after the subtree delete")
	if p := must(h.List("/big/", hub.ListOptions{})); len(p.Entries) != 1 {
		t.Fatalf("after the delete /big/ lists %d entries, want the marker only", len(p.Entries))
	}
}

// confTTL: a key with a TTL is deleted, with its event, once the clock passes its deadline; an
// increment keeps the deadline, a rewrite without TTL cancels it, a rewrite with one replaces it.
func confTTL(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{Clock: clock})
	const ttl = 10 * time.Second
	withTTL := func(key, value string, d time.Duration) hub.Result {
		t.Helper()
		return must(h.Set(key, []byte(value), hub.Cond{}, hub.WriteOptions{TTL: d}))
	}
	// Keys are named so that, in the order of their deadlines and then of their names, each key
	// that must stay comes before one that expires at or after it.
	withTTL("/x/a", `1`, ttl) // expires at t0+ttl
	withTTL("/x/b", `1`, ttl) // rewritten without a TTL: stays
	set(t, h, "/x/b", `2`)    //
	withTTL("/x/c", `1`, ttl) // incremented: keeps its deadline
	must(h.Incr("/x/c", 1, hub.WriteOptions{}))
	withTTL("/x/d", `1`, ttl)   // rewritten at the same instant with the same TTL: expires
	withTTL("/x/d", `2`, ttl)   //
	withTTL("/x/e", `1`, ttl)   // rewritten with a longer TTL: expires at t0+3ttl
	withTTL("/x/e", `2`, 3*ttl) //
	withTTL("/x/f", `1`, ttl)   // deleted and re-created without a TTL: stays
	must(h.Delete("/x/f", hub.Cond{}, hub.WriteOptions{}))
	set(t, h, "/x/f", `2`)
	must(h.Incr("/x/n", 1, hub.WriteOptions{TTL: 2 * ttl})) // an increment may set a TTL
	entry := confEntry(t, h, "/x/a")
	if !entry.Expires.Equal(t0.Add(ttl)) {
		t.Fatalf("/x/a expires at %v, want %v", entry.Expires, t0.Add(ttl))
	}
	if e := confEntry(t, h, "/x/b"); !e.Expires.IsZero() {
		t.Fatalf("/x/b rewritten without a TTL still expires at %v", e.Expires)
	}
	revs := map[string]int64{}
	for _, k := range []string{"/x/a", "/x/c", "/x/d", "/x/e", "/x/n"} {
		revs[k] = confEntry(t, h, k).Revision
	}
	s := confSubscribe(t, h, "/x/", hub.SubscribeOptions{})

	// expires advances the clock by d and waits for the deletes of keys, in that order.
	expires := func(d time.Duration, keys ...string) {
		t.Helper()
		clock.Advance(d)
		var last uint64
		for _, k := range keys {
			e := s.next()
			confDeleted(t, e, k, revs[k]+1)
			if e.Seq < last {
				t.Fatalf("expiry of %s at seq %d, after seq %d", k, e.Seq, last)
			}
			last = e.Seq
			confAbsent(t, h, k)
		}
	}
	clock.Advance(ttl - time.Nanosecond)
	s.quiet("/x/marker", "before the deadline")
	expires(time.Nanosecond, "/x/a", "/x/c", "/x/d")
	s.quiet("/x/marker", "after the first deadline")
	for _, k := range []string{"/x/b", "/x/e", "/x/f", "/x/n"} {
		confEntry(t, h, k)
	}
	expires(ttl, "/x/n")
	expires(ttl, "/x/e")
	clock.Advance(time.Hour)
	s.quiet("/x/marker", "an hour later")
	confEntry(t, h, "/x/b")
	confEntry(t, h, "/x/f")
}

// confFeedSince: a subscription from a position replays exactly the changes after it (the history
// then the live queue, without a gap or a repeat), a position inside a commit included.
func confFeedSince(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	set(t, h, "/other", `0`)
	ra := set(t, h, "/f/a", `1`)
	rb := set(t, h, "/f/b", `2`)
	set(t, h, "/other", `1`)
	tx := must(h.Tx(nil, []hub.TxOp{
		{Op: hub.TxSet, Key: "/f/x", Value: json.RawMessage(`3`)},
		{Op: hub.TxSet, Key: "/f/y", Value: json.RawMessage(`4`)},
		{Op: hub.TxSet, Key: "/f/z", Value: json.RawMessage(`5`)},
	}, hub.WriteOptions{}))
	rd := must(h.Delete("/f/a", hub.Cond{}, hub.WriteOptions{}))
	type ev struct {
		key string
		seq uint64
	}
	all := []ev{{"/f/a", ra.Seq}, {"/f/b", rb.Seq}, {"/f/x", tx.Seq}, {"/f/y", tx.Seq}, {"/f/z", tx.Seq}, {"/f/a", rd.Seq}}
	tests := []struct {
		name string
		pos  hub.Position
		want []ev
	}{
		{"after the first", hub.Position{Seq: ra.Seq}, all[1:]},
		{"after the first, by its id", hub.Position{Seq: ra.Seq, Key: "/f/a"}, all[1:]},
		{"inside a commit", hub.Position{Seq: tx.Seq, Key: "/f/x"}, all[3:]},
		{"after a commit", hub.Position{Seq: tx.Seq}, all[5:]},
		{"at the end", hub.Position{Seq: rd.Seq}, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := confSubscribe(t, h, "/f/", hub.SubscribeOptions{Since: &tc.pos})
			if s.sub.Reset {
				t.Fatalf("resume from %+v gave a reset", tc.pos)
			}
			got := append([]hub.Event(nil), s.sub.TestInitial()...)
			got = append(got, s.until(fmt.Sprintf("/f/m/%d", i))...)
			var gotKeys []ev
			for _, e := range got {
				if strings.HasPrefix(e.Key, "/f/m/") {
					continue // an earlier case's marker
				}
				if e.Snapshot {
					t.Fatalf("replay holds a snapshot entry %v", confEvents([]hub.Event{e}))
				}
				gotKeys = append(gotKeys, ev{e.Key, e.Seq})
			}
			if fmt.Sprint(gotKeys) != fmt.Sprint(tc.want) {
				t.Fatalf("from %+v replayed %v, want %v", tc.pos, confEvents(got), tc.want)
			}
		})
	}
	// A plain subscription starts after every answered write: the next event is a later change.
	s := confSubscribe(t, h, "/f/", hub.SubscribeOptions{})
	if n := len(s.sub.TestInitial()); n != 0 {
		t.Fatalf("a plain subscription has %d initial events", n)
	}
	if got := s.until("/f/m/plain"); len(got) != 0 {
		t.Fatalf("a plain subscription after the writes got %v", confEvents(got))
	}
}

// confFeedSnapshot: a snapshot subscription starts with the entries as of its Start, then only
// later changes.
func confFeedSnapshot(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	ra := set(t, h, "/s/a", `1`)
	set(t, h, "/s/b", `1`)
	rb := set(t, h, "/s/b", `2`)
	set(t, h, "/s/c", `1`)
	must(h.Delete("/s/c", hub.Cond{}, hub.WriteOptions{}))
	set(t, h, "/other", `1`)
	s := confSubscribe(t, h, "/s/", hub.SubscribeOptions{Snapshot: true})
	init := s.sub.TestInitial()
	if len(init) != 2 || s.sub.Reset {
		t.Fatalf("snapshot %v (reset %v), want /s/a and /s/b", confEvents(init), s.sub.Reset)
	}
	for i, want := range []struct {
		key string
		rev int64
		seq uint64
		val string
	}{{"/s/a", 0, ra.Seq, "1"}, {"/s/b", 1, rb.Seq, "2"}} {
		e := init[i]
		if e.Key != want.key || e.Revision != want.rev || e.Seq != want.seq || string(e.Value) != want.val || !e.Snapshot || e.Deleted {
			t.Fatalf("snapshot entry %v, want %s rev %d seq %d = %s", confEvents([]hub.Event{e}), want.key, want.rev, want.seq, want.val)
		}
	}
	if s.sub.Start < rb.Seq {
		t.Fatalf("snapshot starts at %d, before the last write it shows (%d)", s.sub.Start, rb.Seq)
	}
	rc := set(t, h, "/s/a", `3`)
	if rc.Seq <= s.sub.Start {
		t.Fatalf("a write after the snapshot at seq %d, not after its start %d", rc.Seq, s.sub.Start)
	}
	confEvent(t, s.next(), "/s/a", 1, rc.Seq, false)
	s.quiet("/s/marker", "after the snapshot's first change")

	// A key's own snapshot.
	k := confSubscribe(t, h, "/s/b", hub.SubscribeOptions{Snapshot: true})
	if len(k.sub.TestInitial()) != 1 || k.sub.TestInitial()[0].Key != "/s/b" || k.sub.TestInitial()[0].Seq != rb.Seq {
		t.Fatalf("snapshot of /s/b: %v", confEvents(k.sub.TestInitial()))
	}
}

// confFeedPagedSnapshot: a snapshot of a subtree of several pages, read page by page while writes
// change it, shows every key exactly once, as it was at the snapshot's seq, in key order, each
// page within PageEntries; the live queue holds exactly the changes after it.
func confFeedPagedSnapshot(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	const n = 2*hub.PageEntries + 37
	key := func(i int) string { return fmt.Sprintf("/p/%04d", i) }
	for i := range n {
		set(t, h, key(i), strconv.Itoa(i))
	}
	set(t, h, "/q", `1`) // outside the subtree
	s := confSubscribe(t, h, "/p/", hub.SubscribeOptions{Snapshot: true})
	page, err := s.sub.NextEntries(nil)
	if err != nil || len(page) == 0 || len(page) > hub.PageEntries {
		t.Fatalf("first page: %d entries, %v", len(page), err)
	}
	// Changes while the rest is unread: in the page read, in the pages to come, a new key.
	var changes []hub.Result
	changes = append(changes, set(t, h, key(0), `"changed"`), set(t, h, key(n-1), `"changed"`))
	changes = append(changes, must(h.Delete(key(n-2), hub.Cond{}, hub.WriteOptions{})))
	changes = append(changes, set(t, h, "/p/9999", `"new"`))
	all := page
	for {
		next, err := s.sub.NextEntries(nil)
		if err != nil {
			t.Fatalf("NextEntries: %v", err)
		}
		if len(next) == 0 {
			break
		}
		if len(next) > hub.PageEntries {
			t.Fatalf("a page of %d entries", len(next))
		}
		all = append(all, next...)
	}
	if len(all) != n {
		t.Fatalf("%d entries, want %d", len(all), n)
	}
	for i, e := range all {
		if e.Key != key(i) || string(e.Value) != strconv.Itoa(i) || e.Revision != 0 || !e.Snapshot || e.Seq > s.sub.Start {
			t.Fatalf("entry %d: %v, want %s = %d at rev 0, seq at most %d", i, confEvents([]hub.Event{e}), key(i), i, s.sub.Start)
		}
	}
	for i, want := range []struct {
		key     string
		rev     int64
		deleted bool
	}{{key(0), 1, false}, {key(n - 1), 1, false}, {key(n - 2), 1, true}, {"/p/9999", 0, false}} {
		confEvent(t, s.next(), want.key, want.rev, changes[i].Seq, want.deleted)
	}
	s.quiet("/p/marker", "after the changes")
}

// confBackupPages: a backup of several pages of keys (Etcd's is read a page at a time) and a
// stored file restores to the same keys, values, revisions and file, at the backup's seq.
func confBackupPages(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	const n = 2*hub.PageEntries + 5
	key := func(i int) string { return fmt.Sprintf("/b/%04d", i) }
	for i := range n {
		set(t, h, key(i), strconv.Itoa(i))
	}
	set(t, h, key(1), `"again"`)
	must(h.SetFile("/b/file", "text/plain", strings.NewReader("file bytes"), hub.Cond{}, hub.WriteOptions{}))
	var buf bytes.Buffer
	seq, err := h.WriteBackup(&buf)
	if err != nil {
		t.Fatalf("WriteBackup: %v", err)
	}
	dir := t.TempDir()
	if got, err := hub.Restore(hub.StoreConfig{Dir: dir}, &buf); err != nil || got != seq {
		t.Fatalf("Restore: seq %d, %v; want %d", got, err, seq)
	}
	r, err := hub.Open(hub.Config{Logger: slog.New(slog.DiscardHandler)}, hub.StoreConfig{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if r.Len() != n+1 {
		t.Fatalf("restored %d keys, want %d", r.Len(), n+1)
	}
	for i := range n {
		want, got := confEntry(t, h, key(i)), confEntry(t, r, key(i))
		if string(got.Value) != string(want.Value) || got.Revision != want.Revision || got.Seq != want.Seq {
			t.Fatalf("%s restored as %s rev %d seq %d, want %s rev %d seq %d", key(i), got.Value, got.Revision, got.Seq, want.Value, want.Revision, want.Seq)
		}
	}
	_, f, err := r.OpenFile("/b/file")
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "file bytes" {
		t.Fatalf("restored file: %q", b)
	}
}

// confFeedReset: a resume from a position older than the retained history either replays
// exactly the later changes from the store (a store that keeps them: etcd, until it compacts) or
// starts with a reset: the current entries, then later changes.
func confFeedReset(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{HistorySize: 2})
	ra := set(t, h, "/z/a", `1`)
	rb := set(t, h, "/z/b", `1`)
	rc := set(t, h, "/z/c", `1`)
	rd := set(t, h, "/z/a", `2`)
	rx := must(h.Delete("/z/c", hub.Cond{}, hub.WriteOptions{}))
	s := confSubscribe(t, h, "/z/", hub.SubscribeOptions{Since: &hub.Position{Seq: ra.Seq}})
	if !s.sub.Reset {
		got := confEvents(s.sub.TestInitial())
		want := fmt.Sprint([]string{
			fmt.Sprintf("/z/b rev 0 seq %d deleted false value 1", rb.Seq),
			fmt.Sprintf("/z/c rev 0 seq %d deleted false value 1", rc.Seq),
			fmt.Sprintf("/z/a rev 1 seq %d deleted false value 2", rd.Seq),
			fmt.Sprintf("/z/c rev 1 seq %d deleted true value ", rx.Seq),
		})
		if fmt.Sprint(got) != want {
			t.Fatalf("resume from seq %d past a history of 2 events, from the store: %v, want %v", ra.Seq, got, want)
		}
		re := set(t, h, "/z/b", `2`)
		confEvent(t, s.next(), "/z/b", 1, re.Seq, false)
		p := hub.Position{Seq: rd.Seq, Key: "/z/a", Snapshot: true}
		if s := confSubscribe(t, h, "/z/", hub.SubscribeOptions{Since: &p}); !s.sub.Reset {
			t.Fatal("resume from a snapshot position: no reset")
		}
		return
	}
	init := s.sub.TestInitial()
	if len(init) != 2 || init[0].Key != "/z/a" || init[0].Seq != rd.Seq || string(init[0].Value) != "2" || init[1].Key != "/z/b" || !init[0].Snapshot || !init[1].Snapshot {
		t.Fatalf("reset entries %v, want /z/a = 2 and /z/b", confEvents(init))
	}
	re := set(t, h, "/z/b", `2`)
	confEvent(t, s.next(), "/z/b", 1, re.Seq, false)

	// A snapshot position cannot be resumed from either.
	p := hub.Position{Seq: rd.Seq, Key: "/z/a", Snapshot: true}
	if s := confSubscribe(t, h, "/z/", hub.SubscribeOptions{Since: &p}); !s.sub.Reset {
		t.Fatal("resume from a snapshot position: no reset")
	}
}

// confIdempotency: a retry with the same idempotency key answers the first result, replayed, and
// changes nothing; a different request with the key is refused; a failed request leaves the key
// unused; once the window has passed the key is new again.
func confIdempotency(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{Clock: clock, IdempotencyWindow: time.Hour})
	set(t, h, "/o/del", `1`)
	s := confSubscribe(t, h, "/o/", hub.SubscribeOptions{})
	idem := func(k string) hub.WriteOptions { return hub.WriteOptions{Idempotency: k} }
	writes := []struct {
		name      string
		do        func() (hub.Result, error)
		different func() (hub.Result, error) // the same idempotency key for something else
		key       string                     // the key of its event
		deleted   bool
	}{
		{"set", func() (hub.Result, error) { return h.Set("/o/s", []byte(`1`), hub.Cond{}, idem("k-set")) },
			func() (hub.Result, error) { return h.Set("/o/s", []byte(`2`), hub.Cond{}, idem("k-set")) }, "/o/s", false},
		{"incr", func() (hub.Result, error) { return h.Incr("/o/n", 5, idem("k-incr")) },
			func() (hub.Result, error) { return h.Incr("/o/n", 6, idem("k-incr")) }, "/o/n", false},
		{"delete", func() (hub.Result, error) { return h.Delete("/o/del", hub.Cond{}, idem("k-del")) },
			func() (hub.Result, error) { return h.Set("/o/del", []byte(`1`), hub.Cond{}, idem("k-del")) }, "/o/del", true},
		{"tx", func() (hub.Result, error) {
			r, err := h.Tx([]hub.TxCheck{{Key: "/o/t", Revision: -1}}, []hub.TxOp{{Op: hub.TxSet, Key: "/o/t", Value: json.RawMessage(`1`)}}, idem("k-tx"))
			return hub.Result{Seq: r.Seq, Revision: opRev(r), Replayed: r.Replayed}, err
		}, func() (hub.Result, error) { return h.Incr("/o/t", 1, idem("k-tx")) }, "/o/t", false},
		{"set with ttl", func() (hub.Result, error) {
			return h.Set("/o/ttl", []byte(`1`), hub.Cond{}, hub.WriteOptions{Idempotency: "k-ttl", TTL: time.Minute})
		}, func() (hub.Result, error) {
			return h.Set("/o/ttl", []byte(`1`), hub.Cond{}, hub.WriteOptions{Idempotency: "k-ttl", TTL: 2 * time.Minute})
		}, "/o/ttl", false},
	}
	for _, w := range writes {
		first, err := w.do()
		if err != nil || first.Replayed {
			t.Fatalf("%s: %+v, %v", w.name, first, err)
		}
		confEvent(t, s.next(), w.key, first.Revision, first.Seq, w.deleted)
		before, _ := h.Get(w.key)
		retry, err := w.do()
		if err != nil || !retry.Replayed {
			t.Fatalf("%s retried: %+v, %v; want the first answer replayed", w.name, retry, err)
		}
		retry.Replayed = false
		if fmt.Sprint(retry) != fmt.Sprint(first) {
			t.Fatalf("%s retried answers %+v, want %+v", w.name, retry, first)
		}
		if _, err := w.different(); !errors.Is(err, hub.ErrIdempotencyMismatch) {
			t.Fatalf("%s: another request with its idempotency key: %v, want ErrIdempotencyMismatch", w.name, err)
		}
		s.quiet("/o/marker", w.name+" retried")
		after, _ := h.Get(w.key)
		if after.Revision != before.Revision || after.Seq != before.Seq {
			t.Fatalf("%s: a retry changed %s from %+v to %+v", w.name, w.key, before, after)
		}
	}

	// A request that fails records nothing: the key is free for the next one.
	if _, err := h.Set("/o/f", []byte(`1`), hub.Cond{NextRevision: ptr[int64](3)}, idem("k-fail")); !errors.Is(err, hub.ErrRevisionConflict) {
		t.Fatalf("a conflicting write: %v", err)
	}
	r, err := h.Set("/o/f", []byte(`1`), hub.Cond{}, idem("k-fail"))
	if err != nil || r.Replayed {
		t.Fatalf("a write with the idempotency key of a failed one: %+v, %v", r, err)
	}
	confEvent(t, s.next(), "/o/f", 0, r.Seq, false)

	// Past the window the key is new: the same request commits again.
	clock.Advance(time.Hour + time.Second)
	confDeleted(t, s.next(), "/o/ttl", 1) // the key with a TTL expired meanwhile
	again, err := h.Incr("/o/n", 5, idem("k-incr"))
	if err != nil || again.Replayed || string(again.Value) != "10" {
		t.Fatalf("incr with an idempotency key past its window: %+v, %v; want a new increment to 10", again, err)
	}
	confEvent(t, s.next(), "/o/n", 1, again.Seq, false)
}

func opRev(r hub.TxResult) int64 {
	if len(r.Ops) == 0 {
		return -2
	}
	return r.Ops[0].Revision
}

// confLockFences: a lock's fence is the seq that acquired it, strictly larger for every later
// acquisition, kept by renewals; a held lock refuses other writes and wrong tokens.
func confLockFences(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{Clock: clock})
	ctx := context.Background()
	s := confSubscribe(t, h, "/l/", hub.SubscribeOptions{})
	set(t, h, "/l/plain", `1`)
	s.next()
	if _, err := h.Lock(ctx, "/l/plain", hub.LockOptions{}); !errors.Is(err, hub.ErrNotLock) {
		t.Fatalf("locking a plain value: %v, want ErrNotLock", err)
	}
	var fences []uint64
	for round := range 3 {
		key := "/l/a"
		if round == 1 {
			key = "/l/b" // fences increase across keys too
		}
		lk, err := h.Lock(ctx, key, hub.LockOptions{TTL: time.Minute, Owner: "o" + strconv.Itoa(round)})
		if err != nil {
			t.Fatalf("round %d: Lock: %v", round, err)
		}
		if lk.Fence != lk.Seq || lk.Token == "" || lk.Owner != "o"+strconv.Itoa(round) || !lk.Expires.Equal(clock.Now().Add(time.Minute)) {
			t.Fatalf("round %d: lock %+v", round, lk)
		}
		if len(fences) > 0 && lk.Fence <= fences[len(fences)-1] {
			t.Fatalf("round %d: fence %d after fence %d", round, lk.Fence, fences[len(fences)-1])
		}
		fences = append(fences, lk.Fence)
		confEvent(t, s.next(), key, 0, lk.Seq, false)
		st := lockState(t, h, key)
		if st.Fence != lk.Fence || st.Owner != lk.Owner || !st.Expires.Equal(lk.Expires) {
			t.Fatalf("round %d: lock state %+v, lock %+v", round, st, lk)
		}

		_, err = h.Lock(ctx, key, hub.LockOptions{Owner: "other"})
		var le *hub.LockedError
		if !errors.As(err, &le) || le.Owner != lk.Owner || le.Fence != lk.Fence {
			t.Fatalf("round %d: a second Lock: %v, want a LockedError of %s with fence %d", round, err, lk.Owner, lk.Fence)
		}
		for name, write := range map[string]func() error{
			"set":    func() error { _, err := h.Set(key, []byte(`1`), hub.Cond{}, hub.WriteOptions{}); return err },
			"incr":   func() error { _, err := h.Incr(key, 1, hub.WriteOptions{}); return err },
			"delete": func() error { _, err := h.Delete(key, hub.Cond{}, hub.WriteOptions{}); return err },
			"tx": func() error {
				_, err := h.Tx(nil, []hub.TxOp{{Op: hub.TxSet, Key: key, Value: json.RawMessage(`1`)}}, hub.WriteOptions{})
				return err
			},
		} {
			if err := write(); !errors.Is(err, hub.ErrLocked) {
				t.Fatalf("round %d: %s of a held lock: %v, want ErrLocked", round, name, err)
			}
		}
		if _, err := h.RenewLock(key, "wrong", time.Minute); !errors.Is(err, hub.ErrLockToken) {
			t.Fatalf("round %d: renew with a wrong token: %v, want ErrLockToken", round, err)
		}
		if _, err := h.Unlock(key, "wrong"); !errors.Is(err, hub.ErrLockToken) {
			t.Fatalf("round %d: unlock with a wrong token: %v, want ErrLockToken", round, err)
		}
		s.quiet("/l/marker", "refused writes to a held lock")

		clock.Advance(30 * time.Second)
		rn, err := h.RenewLock(key, lk.Token, 2*time.Minute)
		if err != nil {
			t.Fatalf("round %d: renew: %v", round, err)
		}
		if rn.Fence != lk.Fence || rn.Revision != 1 || !rn.Expires.Equal(clock.Now().Add(2*time.Minute)) {
			t.Fatalf("round %d: renewed %+v of %+v", round, rn, lk)
		}
		confEvent(t, s.next(), key, 1, rn.Seq, false)
		if st := lockState(t, h, key); st.Fence != lk.Fence {
			t.Fatalf("round %d: renewal changed the fence: %+v", round, st)
		}
		clock.Advance(time.Minute) // past the first TTL, within the renewed one
		if st := lockState(t, h, key); st.Fence != lk.Fence {
			t.Fatalf("round %d: the renewed lock is gone: %+v", round, st)
		}
		r, err := h.Unlock(key, lk.Token)
		if err != nil {
			t.Fatalf("round %d: unlock: %v", round, err)
		}
		confEvent(t, s.next(), key, 2, r.Seq, true)
		if _, err := h.Unlock(key, lk.Token); !errors.Is(err, hub.ErrNotFound) {
			t.Fatalf("round %d: a second unlock: %v, want ErrNotFound", round, err)
		}
		if _, err := h.RenewLock(key, lk.Token, 0); !errors.Is(err, hub.ErrNotFound) {
			t.Fatalf("round %d: renewing a released lock: %v, want ErrNotFound", round, err)
		}
	}
	clock.Advance(time.Hour)
	s.quiet("/l/marker", "after every release")
}

// confLockWaiters: a waiter gets the lock once its holder releases it, or once it expires, with
// a larger fence; waiters queued on one lock get it one at a time.
func confLockWaiters(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0) // a wait never times out unless the test advances the clock
	h := mk(hub.Config{Clock: clock})
	ctx := context.Background()
	type reply struct {
		lk  hub.Lock
		err error
	}
	replies := make(chan reply, 8)
	wait := func(key string) {
		go func() {
			lk, err := h.Lock(ctx, key, hub.LockOptions{Wait: 24 * time.Hour, Owner: "waiter", TTL: time.Hour})
			replies <- reply{lk, err}
		}()
	}
	got := func(after hub.Lock) hub.Lock {
		t.Helper()
		select {
		case r := <-replies:
			if r.err != nil {
				t.Fatalf("waiter: %v", r.err)
			}
			if r.lk.Fence <= after.Fence || r.lk.Owner != "waiter" {
				t.Fatalf("a waiter got %+v after %+v", r.lk, after)
			}
			if st := lockState(t, h, r.lk.Key); st.Fence != r.lk.Fence || st.Owner != "waiter" {
				t.Fatalf("lock state %+v, want the waiter's %+v", st, r.lk)
			}
			return r.lk
		case <-time.After(confDeadline):
			t.Fatalf("no waiter got the lock within %v", confDeadline)
		}
		panic("unreachable")
	}

	// Released by its holder.
	first := must(h.Lock(ctx, "/w/a", hub.LockOptions{Owner: "first"}))
	wait("/w/a")
	must(h.Unlock("/w/a", first.Token))
	second := got(first)

	// Released by expiry.
	held := must(h.Lock(ctx, "/w/b", hub.LockOptions{TTL: time.Minute, Owner: "held"}))
	wait("/w/b")
	clock.Advance(time.Minute)
	last := got(held)
	if last.Fence <= second.Fence {
		t.Fatalf("fence %d after %d", last.Fence, second.Fence)
	}

	// Waiters take turns.
	const waiters = 4
	for range waiters {
		wait("/w/b")
	}
	for range waiters {
		must(h.Unlock("/w/b", last.Token))
		last = got(last)
	}
	must(h.Unlock("/w/b", last.Token))
}

// confLockExpiry: a lock that is not renewed expires with a delete event; its token no longer
// works.
func confLockExpiry(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{Clock: clock})
	lk := must(h.Lock(context.Background(), "/e/l", hub.LockOptions{TTL: 30 * time.Second}))
	s := confSubscribe(t, h, "/e/", hub.SubscribeOptions{})
	clock.Advance(30*time.Second - time.Nanosecond)
	s.quiet("/e/marker", "before the lock's deadline")
	lockState(t, h, "/e/l")
	clock.Advance(time.Nanosecond)
	confDeleted(t, s.next(), "/e/l", 1)
	confAbsent(t, h, "/e/l")
	if _, err := h.RenewLock("/e/l", lk.Token, 0); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("renewing an expired lock: %v, want ErrNotFound", err)
	}
	if _, err := h.Unlock("/e/l", lk.Token); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("releasing an expired lock: %v, want ErrNotFound", err)
	}
	again := must(h.Lock(context.Background(), "/e/l", hub.LockOptions{}))
	if again.Fence <= lk.Fence {
		t.Fatalf("fence %d after an expired lock's %d", again.Fence, lk.Fence)
	}
}

// confSessions: an ephemeral key is deleted, with its event, once its session has ended and the
// grace period has passed; a plain rewrite makes it ordinary, a write through another session
// moves it there, and a write through a session that has already ended lives one grace period.
func confSessions(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	const grace = 10 * time.Second
	h := mk(hub.Config{Clock: clock, EphemeralGrace: grace})
	eph := func(key string, s *hub.Session) hub.Result {
		t.Helper()
		return must(h.Set(key, []byte(`{"here":true}`), hub.Cond{}, hub.WriteOptions{Session: s}))
	}
	s1, s2 := h.NewSession(), h.NewSession()
	ann := eph("/p/ann", s1)
	eph("/p/bob", s1)
	set(t, h, "/p/bob", `"plain"`) // ordinary from now on
	eph("/p/cat", s1)
	eph("/p/cat", s2) // moved to s2, which stays
	eph("/p/dan", s1)
	must(h.Delete("/p/dan", hub.Cond{}, hub.WriteOptions{})) // deleted, then re-created plainly
	set(t, h, "/p/dan", `"plain"`)
	if e := confEntry(t, h, "/p/ann"); !e.Ephemeral {
		t.Fatalf("/p/ann written through a session is not ephemeral: %+v", e)
	}
	if e := confEntry(t, h, "/p/bob"); e.Ephemeral {
		t.Fatalf("/p/bob rewritten plainly is still ephemeral: %+v", e)
	}
	s := confSubscribe(t, h, "/p/", hub.SubscribeOptions{})

	clock.Advance(time.Hour) // a live session keeps its keys however long
	s.quiet("/p/marker", "live sessions")
	s1.End()
	s1.End() // idempotent
	clock.Advance(grace - time.Nanosecond)
	s.quiet("/p/marker", "within the grace period")
	clock.Advance(time.Nanosecond)
	confDeleted(t, s.next(), "/p/ann", ann.Revision+1)
	confAbsent(t, h, "/p/ann")
	s.quiet("/p/marker", "after s1's grace period")
	confEntry(t, h, "/p/bob")
	confEntry(t, h, "/p/cat")

	// A write through a session that has ended (a request that raced its connection's end) lives
	// one grace period.
	late := eph("/p/eve", s1)
	confEvent(t, s.next(), "/p/eve", late.Revision, late.Seq, false)
	clock.Advance(grace)
	confDeleted(t, s.next(), "/p/eve", late.Revision+1)
	confAbsent(t, h, "/p/eve")

	s2.End()
	clock.Advance(grace)
	confDeleted(t, s.next(), "/p/cat", 2)
	s.quiet("/p/marker", "after s2's grace period")
	confEntry(t, h, "/p/bob")
	confEntry(t, h, "/p/dan")
}

// confHistory: a key's history reads its changes newest first, deletes included, paged by the
// cursor; other keys' changes are not in it. Below what the store retains, ErrHistoryGone.
func confHistory(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	var want []string
	for i := range 5 {
		r := set(t, h, "/hist/k", fmt.Sprint(i))
		want = append(want, fmt.Sprintf("/hist/k rev %d seq %d deleted false value %d", r.Revision, r.Seq, i))
		set(t, h, "/hist/other", fmt.Sprint(i))
	}
	rx := must(h.Delete("/hist/k", hub.Cond{}, hub.WriteOptions{}))
	want = append(want, fmt.Sprintf("/hist/k rev 5 seq %d deleted true value ", rx.Seq))
	r := set(t, h, "/hist/k", `"again"`)
	want = append(want, fmt.Sprintf("/hist/k rev 0 seq %d deleted false value \"again\"", r.Seq))
	slices.Reverse(want)

	var got []string
	var before uint64
	for pages := 0; ; pages++ {
		page, err := h.History("/hist/k", before, 3)
		if errors.Is(err, hub.ErrHistoryGone) && pages > 0 {
			break // a store whose retention began after seq 0 cannot tell the first change
		}
		if err != nil {
			t.Fatalf("History(before %d): %v", before, err)
		}
		if len(page.Entries) > 3 {
			t.Fatalf("page of %d entries, limit 3", len(page.Entries))
		}
		got = append(got, confEvents(page.Entries)...)
		if page.Before == 0 {
			break
		}
		if page.Before >= before && before != 0 {
			t.Fatalf("cursor %d does not go down from %d", page.Before, before)
		}
		before = page.Before
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history\n%v\nwant\n%v", got, want)
	}
	if _, err := h.History("/hist/", 0, 0); !errors.Is(err, hub.ErrInvalidKey) {
		t.Fatalf("history of a prefix: %v, want ErrInvalidKey", err)
	}
	if page, err := h.History("/hist/none", 0, 0); err != nil || len(page.Entries) != 0 {
		t.Fatalf("history of a key never written: %v, %v", confEvents(page.Entries), err)
	}
}

// confLockFIFO: waiters of a key get the lock one at a time, in the order they started waiting.
func confLockFIFO(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{Clock: clock})
	ctx := context.Background()
	const key, waiters = "/fifo/k", 20
	holder := must(h.Lock(ctx, key, hub.LockOptions{Owner: "holder"}))
	got := make(chan hub.Lock, waiters)
	for i := range waiters {
		go func() {
			lk, err := h.Lock(ctx, key, hub.LockOptions{Wait: 24 * time.Hour, Owner: strconv.Itoa(i)})
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
			}
			got <- lk
		}()
		deadline := time.Now().Add(confDeadline)
		for h.LockWaiters(key) != i+1 { // waiter i is queued before waiter i+1 starts
			if time.Now().After(deadline) {
				t.Fatalf("waiter %d never queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	must(h.Unlock(key, holder.Token))
	last := holder
	for i := range waiters {
		select {
		case lk := <-got:
			if lk.Owner != strconv.Itoa(i) || lk.Fence <= last.Fence {
				t.Fatalf("acquisition %d went to waiter %q (fence %d after %d)", i, lk.Owner, lk.Fence, last.Fence)
			}
			last = lk
			must(h.Unlock(key, lk.Token))
		case <-time.After(confDeadline):
			t.Fatalf("acquisition %d: no waiter got the lock within %v", i, confDeadline)
		}
	}
	if n := h.LockWaiters(key); n != 0 {
		t.Fatalf("%d waiters left in the queue", n)
	}
}

// confFencedWrites: a write with a fence holds only while its lock is held with that fence:
// after a release, an expiry or a new acquisition it fails with ErrFenceStale and changes nothing.
func confFencedWrites(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{Clock: clock})
	ctx := context.Background()
	const lockKey, data = "/fw/locks/deploy", "/fw/state"
	s := confSubscribe(t, h, "/fw/locks/", hub.SubscribeOptions{})
	stale := func(what string, cond hub.Cond) {
		t.Helper()
		if _, err := h.Set(data, []byte(`"stale"`), cond, hub.WriteOptions{}); !errors.Is(err, hub.ErrFenceStale) {
			t.Fatalf("%s: Set: %v, want ErrFenceStale", what, err)
		}
		if _, err := h.Delete(data, cond, hub.WriteOptions{}); !errors.Is(err, hub.ErrFenceStale) {
			t.Fatalf("%s: Delete: %v, want ErrFenceStale", what, err)
		}
		if e, err := h.Get(data); err == nil && string(e.Value) == `"stale"` {
			t.Fatalf("%s: a stale write changed %s", what, data)
		}
	}
	stale("no lock yet", hub.Cond{Fence: 1, FenceLock: lockKey})

	lk := must(h.Lock(ctx, lockKey, hub.LockOptions{TTL: time.Minute}))
	s.next()
	fenced := hub.Cond{Fence: lk.Fence, FenceLock: lockKey}
	must(h.Set(data, []byte(`1`), fenced, hub.WriteOptions{}))
	must(h.Set(data, []byte(`2`), fenced, hub.WriteOptions{}))
	must(h.RenewLock(lockKey, lk.Token, time.Minute)) // a renewal keeps the fence
	s.next()
	must(h.Set(data, []byte(`3`), fenced, hub.WriteOptions{}))
	stale("a fence other than the lock's", hub.Cond{Fence: lk.Fence + 1, FenceLock: lockKey})
	var fe *hub.FenceError
	if _, err := h.Set(data, []byte(`0`), hub.Cond{Fence: lk.Fence + 1, FenceLock: lockKey}, hub.WriteOptions{}); !errors.As(err, &fe) || fe.Lock != lockKey || fe.Current != lk.Fence {
		t.Fatalf("stale write: %v (%+v), want a FenceError naming %s at fence %d", err, fe, lockKey, lk.Fence)
	}

	// Released.
	must(h.Unlock(lockKey, lk.Token))
	s.next()
	stale("after the release", fenced)

	// Taken again: the old fence is stale, the new one writes.
	lk2 := must(h.Lock(ctx, lockKey, hub.LockOptions{TTL: time.Minute}))
	s.next()
	stale("after a new acquisition", fenced)
	fenced2 := hub.Cond{Fence: lk2.Fence, FenceLock: lockKey}
	must(h.Set(data, []byte(`4`), fenced2, hub.WriteOptions{}))

	// Expired.
	clock.Advance(time.Minute)
	if ev := s.next(); !ev.Deleted {
		t.Fatalf("expiry: %+v, want a delete", ev)
	}
	stale("after the expiry", fenced2)
	if e := must(h.Get(data)); string(e.Value) != `4` {
		t.Fatalf("%s = %s, want 4", data, e.Value)
	}
	must(h.Delete(data, hub.Cond{}, hub.WriteOptions{}))
}

// confBroadcast: a broadcast reaches the subscribers of its path and of the prefixes above it,
// between the changes in the order the node delivered them, and no one else; it takes no
// position: a replay never holds it, and the seqs of the changes around it stay what they are.
func confBroadcast(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	key := confSubscribe(t, h, "/bc/room/x", hub.SubscribeOptions{})
	pre := confSubscribe(t, h, "/bc/", hub.SubscribeOptions{})
	other := confSubscribe(t, h, "/bcother", hub.SubscribeOptions{})
	r1 := set(t, h, "/bc/room/x", `1`)
	if err := h.Broadcast("/bc/room/x", []byte(`{"c": "<&>"}`)); err != nil {
		t.Fatal(err)
	}
	r2 := set(t, h, "/bc/room/x", `2`)
	for _, s := range []*confStream{key, pre} {
		confEvent(t, s.next(), "/bc/room/x", 0, r1.Seq, false)
		if e := s.next(); !e.Broadcast || e.Key != "/bc/room/x" || string(e.Value) != `{"c":"<&>"}` {
			t.Fatalf("%s: %v (broadcast %v), want the broadcast, compact and as sent", s.sub.Path, confEvents([]hub.Event{e}), e.Broadcast)
		}
		confEvent(t, s.next(), "/bc/room/x", 1, r2.Seq, false)
	}
	other.quiet("/bcother", "a broadcast to another key")
	// A broadcast to a prefix reaches its subscribers, not those of the keys below it.
	if err := h.Broadcast("/bc/", []byte(`"all"`)); err != nil {
		t.Fatal(err)
	}
	if e := pre.next(); !e.Broadcast || e.Key != "/bc/" || string(e.Value) != `"all"` {
		t.Fatalf("broadcast to /bc/: %v", confEvents([]hub.Event{e}))
	}
	key.quiet("/bc/room/x", "a broadcast to the prefix above a key") // its marker is a third change
	// A resume from before the broadcast replays the changes only.
	s := confSubscribe(t, h, "/bc/room/", hub.SubscribeOptions{Since: &hub.Position{Seq: r1.Seq, Key: "/bc/room/x"}})
	if s.sub.Reset || len(s.sub.TestInitial()) != 2 || s.sub.TestInitial()[0].Seq != r2.Seq {
		t.Fatalf("resume after %d: reset %v, %v; want the changes after it, no broadcast", r1.Seq, s.sub.Reset, confEvents(s.sub.TestInitial()))
	}
	for _, e := range s.sub.TestInitial() {
		if e.Broadcast {
			t.Fatalf("a replay holds a broadcast: %v", confEvents(s.sub.TestInitial()))
		}
	}
}

// confBroadcastsOnly: a subscription of broadcasts alone gets the broadcasts to its path and to the
// paths below it, and no change, replay or snapshot (its Since and Snapshot are ignored), while a
// plain subscription of the same path gets both.
func confBroadcastsOnly(t *testing.T, mk func(hub.Config) *hub.Hub) {
	h := mk(hub.Config{})
	r0 := set(t, h, "/bo/room/x", `0`)
	only := confSubscribe(t, h, "/bo/", hub.SubscribeOptions{BroadcastsOnly: true, Since: &hub.Position{Seq: r0.Seq - 1}, Snapshot: true})
	if only.sub.Reset || len(only.sub.TestInitial()) != 0 {
		t.Fatalf("broadcasts only, with since and snapshot: reset %v, replay %v; want neither", only.sub.Reset, confEvents(only.sub.TestInitial()))
	}
	if es, err := only.sub.NextEntries(nil); err != nil || len(es) != 0 {
		t.Fatalf("broadcasts only, with snapshot: entries %v, %v; want none", confEvents(es), err)
	}
	all := confSubscribe(t, h, "/bo/", hub.SubscribeOptions{})
	r1 := set(t, h, "/bo/room/x", `1`)
	if err := h.Broadcast("/bo/room/x", []byte(`{"c":1}`)); err != nil {
		t.Fatal(err)
	}
	r2 := set(t, h, "/bo/room/x", `2`)
	if err := h.Broadcast("/bo/", []byte(`"end"`)); err != nil {
		t.Fatal(err)
	}
	isBroadcast := func(e hub.Event, path, msg string) bool {
		return e.Broadcast && e.Key == path && string(e.Value) == msg
	}
	confEvent(t, all.next(), "/bo/room/x", 1, r1.Seq, false)
	if e := all.next(); !isBroadcast(e, "/bo/room/x", `{"c":1}`) {
		t.Fatalf("plain subscription: %v, want the broadcast", confEvents([]hub.Event{e}))
	}
	confEvent(t, all.next(), "/bo/room/x", 2, r2.Seq, false)
	// The second broadcast comes right after the first: no change came between them.
	if e := only.next(); !isBroadcast(e, "/bo/room/x", `{"c":1}`) {
		t.Fatalf("broadcasts only: %v, want the broadcast", confEvents([]hub.Event{e}))
	}
	if e := only.next(); !isBroadcast(e, "/bo/", `"end"`) {
		t.Fatalf("broadcasts only: %v, want the second broadcast and no change", confEvents([]hub.Event{e}))
	}
}
