package hub

import (
	"bytes"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/statehub/statehub/internal/fakeclock"
)

var sessT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const sessGrace = 10 * time.Second

// sessHub is a memory hub on a fake clock with the default grace, closed at the end of the test.
func sessHub(t *testing.T) (*Hub, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(sessT0)
	h := New(Config{Clock: clock, EphemeralGrace: sessGrace, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { h.Close() })
	return h, clock
}

func sessSet(t *testing.T, s *Session, key, value string) Result {
	t.Helper()
	res, err := s.h.Set(key, []byte(value), Cond{}, WriteOptions{Session: s})
	if err != nil {
		t.Fatalf("ephemeral set %s: %v", key, err)
	}
	return res
}

func sessExists(h *Hub, key string) bool {
	_, err := h.Get(key)
	return err == nil
}

// TestEphemeralDeletedAfterGrace: a key of an ended session lives exactly the grace period, then
// goes with an ordinary delete event.
func TestEphemeralDeletedAfterGrace(t *testing.T) {
	t.Parallel()
	h, clock := sessHub(t)
	sub, err := h.Subscribe("/room/", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	s := h.NewSession()
	res := sessSet(t, s, "/room/ann", `{"name":"Ann"}`)
	if e, _ := h.Get("/room/ann"); !e.Ephemeral {
		t.Fatal("the entry is not marked ephemeral")
	}
	if got := s.Owned(); got != 1 {
		t.Fatalf("Owned = %d, want 1", got)
	}

	clock.Advance(time.Hour) // a live session keeps its keys however long
	if !sessExists(h, "/room/ann") {
		t.Fatal("a live session's key was deleted")
	}
	s.End()
	s.End() // idempotent
	clock.Advance(sessGrace - time.Nanosecond)
	if !sessExists(h, "/room/ann") {
		t.Fatal("deleted before the grace period ended")
	}
	clock.Advance(time.Nanosecond)
	if sessExists(h, "/room/ann") {
		t.Fatal("still there after the grace period")
	}
	set, _ := sub.Next()
	del, _ := sub.Next()
	if set.Deleted || !del.Deleted || del.Key != "/room/ann" || del.Revision != res.Revision+1 {
		t.Fatalf("events %+v then %+v, want the set then its delete at revision %d", set, del, res.Revision+1)
	}
}

// TestEphemeralRewrite: a later write within the grace period transfers or clears ownership.
func TestEphemeralRewrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		rewrite func(t *testing.T, h *Hub, next *Session)
		kept    bool // after the old session's grace and then the new one's end + grace
	}{
		{"new session takes over, then ends", func(t *testing.T, h *Hub, next *Session) {
			sessSet(t, next, "/p/k", `2`)
		}, false},
		{"plain set makes it ordinary", func(t *testing.T, h *Hub, next *Session) {
			if _, err := h.Set("/p/k", []byte(`2`), Cond{}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"incr makes it ordinary", func(t *testing.T, h *Hub, next *Session) {
			if _, err := h.Incr("/p/k", 1, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"delete and plain re-create", func(t *testing.T, h *Hub, next *Session) {
			if _, err := h.Delete("/p/k", Cond{}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Set("/p/k", []byte(`3`), Cond{}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, clock := sessHub(t)
			old, next := h.NewSession(), h.NewSession()
			sessSet(t, old, "/p/k", `1`)
			old.End()
			clock.Advance(sessGrace / 2)
			tc.rewrite(t, h, next)
			clock.Advance(sessGrace) // the old session's deadline passes: stale
			if !sessExists(h, "/p/k") {
				t.Fatal("deleted with the old owner although it was written again")
			}
			if got := old.Owned(); got != 0 {
				t.Fatalf("old session still owns %d keys", got)
			}
			next.End()
			clock.Advance(sessGrace)
			if got := sessExists(h, "/p/k"); got != tc.kept {
				t.Fatalf("after the new session's grace: exists = %v, want %v", got, tc.kept)
			}
		})
	}
}

// TestEphemeralCASAndTTL: an ephemeral write takes the same preconditions and TTL as Set.
func TestEphemeralCASAndTTL(t *testing.T) {
	t.Parallel()
	h, clock := sessHub(t)
	s := h.NewSession()
	zero, one := int64(0), int64(1)
	if _, err := h.Set("/c", []byte(`1`), Cond{NextRevision: &one}, WriteOptions{Session: s}); err == nil {
		t.Fatal("CAS with a wrong revision succeeded")
	}
	if _, err := h.Set("/c", []byte(`1`), Cond{NextRevision: &zero}, WriteOptions{TTL: time.Second, Session: s}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second) // the TTL ends first, while the session is live
	if sessExists(h, "/c") {
		t.Fatal("the TTL of an ephemeral key did not apply")
	}
	s.End()
	clock.Advance(sessGrace) // its ephemeral deadline finds the key gone: nothing happens
	if seq := h.Seq(); seq != 2 {
		t.Fatalf("seq = %d, want 2 (the set and the expiry only)", seq)
	}
}

// TestEphemeralWriteAfterEnd: a write that races the end of its session starts its grace at once.
func TestEphemeralWriteAfterEnd(t *testing.T) {
	t.Parallel()
	h, clock := sessHub(t)
	s := h.NewSession()
	s.End()
	sessSet(t, s, "/late", `1`)
	clock.Advance(sessGrace)
	if sessExists(h, "/late") {
		t.Fatal("a key written after End outlived the grace period")
	}
}

// TestEphemeralManyKeysOneTimer: many ended sessions use the one expiry queue; all go in one
// commit when their grace periods end together.
func TestEphemeralManyKeysOneTimer(t *testing.T) {
	t.Parallel()
	h, clock := sessHub(t)
	for i := range 100 {
		s := h.NewSession()
		sessSet(t, s, "/many/k"+string(rune('a'+i%26))+string(rune('a'+i/26)), `1`)
		s.End()
	}
	before := h.Seq()
	clock.Advance(sessGrace)
	if n := h.Len(); n != 0 {
		t.Fatalf("%d keys left", n)
	}
	if got := h.Seq(); got != before+1 {
		t.Fatalf("seq went from %d to %d, want one commit", before, got)
	}
}

// TestEphemeralRestart: the flag survives a restart, through the log and through a snapshot, and
// keys no session owns any more are deleted one grace period after start-up.
func TestEphemeralRestart(t *testing.T) {
	t.Parallel()
	for _, viaSnapshot := range []bool{false, true} {
		name := map[bool]string{false: "log", true: "snapshot"}[viaSnapshot]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock := fakeclock.New(sessT0)
			cfg := Config{Clock: clock, EphemeralGrace: sessGrace, Logger: slog.New(slog.DiscardHandler)}
			h, err := Open(cfg, StoreConfig{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			s := h.NewSession()
			sessSet(t, s, "/who/ann", `1`)
			sessSet(t, s, "/who/bob", `1`)
			if _, err := h.Set("/who/bob", []byte(`2`), Cond{}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if viaSnapshot {
				if err := h.local().store.snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			h.Close() // the session never ended: the process died with it

			h, err = Open(cfg, StoreConfig{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if e, err := h.Get("/who/ann"); err != nil || !e.Ephemeral {
				t.Fatalf("after restart: %+v, %v; want the ephemeral key", e, err)
			}
			if e, err := h.Get("/who/bob"); err != nil || e.Ephemeral {
				t.Fatalf("after restart: %+v, %v; want an ordinary key", e, err)
			}
			clock.Advance(sessGrace - time.Nanosecond)
			if !sessExists(h, "/who/ann") {
				t.Fatal("deleted before the grace period")
			}
			clock.Advance(time.Nanosecond)
			if sessExists(h, "/who/ann") || !sessExists(h, "/who/bob") {
				t.Fatal("after the grace period: want ann deleted and bob kept")
			}
		})
	}
}

// TestEphemeralRestartRewrite: a client that reconnects after a restart and writes its key again
// keeps it.
func TestEphemeralRestartRewrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := fakeclock.New(sessT0)
	cfg := Config{Clock: clock, EphemeralGrace: sessGrace, Logger: slog.New(slog.DiscardHandler)}
	h, err := Open(cfg, StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sessSet(t, h.NewSession(), "/who/ann", `1`)
	h.Close()
	h, err = Open(cfg, StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s := h.NewSession()
	sessSet(t, s, "/who/ann", `2`)
	clock.Advance(2 * sessGrace)
	if !sessExists(h, "/who/ann") {
		t.Fatal("a key written again after the restart was deleted with the orphans")
	}
}

// TestEphemeralCodec: flag 4 round-trips in commit records and snapshots; records without it
// (written before it existed) decode as before.
func TestEphemeralCodec(t *testing.T) {
	t.Parallel()
	c := &Commit{Seq: 7, Changes: []Change{
		{Key: "/a", Value: []byte(`1`), Revision: 0, Ephemeral: true},
		{Key: "/b", Value: []byte(`2`), Revision: 3},
		{Key: "/c", Revision: 4, Deleted: true},
	}}
	rec := encodeCommit(nil, c)
	got, err := decodeCommit(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	old := []byte{1, 7, 1, 2, '/', 'a', 0, 0, 1, '1', 0} // version 1, flags 0: no ephemeral bit
	oc, err := decodeCommit(old)
	if err != nil || oc.Changes[0].Ephemeral {
		t.Fatalf("old record: %+v, %v", oc, err)
	}

	h, _ := sessHub(t)
	sessSet(t, h.NewSession(), "/e", `1`)
	if _, err := h.Set("/f", []byte(`1`), Cond{}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := h.local().writeSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := decodeSnapshot(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.tree.Get(item{key: "/e"})
	p, _ := f.tree.Get(item{key: "/f"})
	if !e.ephemeral() || p.ephemeral() || e.owner() != nil {
		t.Fatalf("snapshot entries %+v, %+v: want /e ephemeral without owner, /f not", e, p)
	}
}

// TestDrainingClosesChannel: transports learn of a shutdown from Draining.
func TestDrainingClosesChannel(t *testing.T) {
	t.Parallel()
	h, _ := sessHub(t)
	select {
	case <-h.Draining():
		t.Fatal("closed before Drain")
	default:
	}
	h.Drain()
	h.Drain()
	<-h.Draining()
}
