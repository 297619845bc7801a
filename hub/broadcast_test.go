package hub_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal/waltest"
)

// bcastOf renders an event as a subscriber tells them apart: a broadcast by its path and message,
// a change by its id and value.
func bcastOf(e hub.Event) string {
	if e.Broadcast {
		return "broadcast " + e.Key + " " + string(e.Value)
	}
	return evs(e)
}

func bcastAll(es []hub.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = bcastOf(e)
	}
	return out
}

// TestBroadcastReachesPathAndPrefixes: a broadcast reaches the subscriptions of its path and of
// every prefix above it, once each, and no other; a broadcast to a prefix reaches that prefix and
// those above it, not the keys below it.
func TestBroadcastReachesPathAndPrefixes(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{})
		paths := []string{"/", "/room/", "/room/1/", "/room/1/cursor", "/room/1/cursor/", "/room/2/", "/room/1/other", "/roomy/"}
		subs := map[string]*hub.Subscription{}
		for _, p := range paths {
			subs[p] = must(h.Subscribe(p, hub.SubscribeOptions{}))
		}
		tests := []struct {
			path string
			want []string // the subscriptions that get it
		}{
			{"/room/1/cursor", []string{"/", "/room/", "/room/1/", "/room/1/cursor"}},
			{"/room/1/", []string{"/", "/room/", "/room/1/"}},
			{"/", []string{"/"}},
		}
		for i, tc := range tests {
			msg := fmt.Sprintf(`{"n":%d}`, i)
			if err := h.Broadcast(tc.path, []byte(msg)); err != nil {
				t.Fatalf("Broadcast(%s): %v", tc.path, err)
			}
			var got []string
			for _, p := range paths {
				q := queued(subs[p])
				switch {
				case len(q) == 0:
					continue
				case len(q) > 1:
					t.Fatalf("%s: subscription %s got %v, want one broadcast", tc.path, p, bcastAll(q))
				case !q[0].Broadcast || q[0].Key != tc.path || string(q[0].Value) != msg:
					t.Fatalf("%s: subscription %s got %v", tc.path, p, bcastAll(q))
				}
				got = append(got, p)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("broadcast to %s reached %v, want %v", tc.path, got, tc.want)
			}
		}
		if st := h.Stats(); st.Seq != 0 || st.HistoryEvents != 0 {
			t.Fatalf("after broadcasts: seq %d, %d history events; want nothing committed", st.Seq, st.HistoryEvents)
		}
	})
}

// TestBroadcastNotAChange: a broadcast goes out between the changes as the hub delivered them,
// compacted, and is never in the history, a replay, a snapshot or a key's history; it takes no
// seq.
func TestBroadcastNotAChange(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{})
		sub := must(h.Subscribe("/r/", hub.SubscribeOptions{}))
		r1 := set(t, h, "/r/a", `1`)
		if err := h.Broadcast("/r/a", []byte(` { "x" : [1, 2] } `)); err != nil {
			t.Fatal(err)
		}
		r2 := set(t, h, "/r/a", `2`)
		got := bcastAll(queued(sub))
		want := []string{"/r/a:0:1 1", `broadcast /r/a {"x":[1,2]}`, "/r/a:1:2 2"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("live events %v, want %v", got, want)
		}
		if r2.Seq != r1.Seq+1 || h.Seq() != r2.Seq {
			t.Fatalf("seqs %d, %d, store at %d: a broadcast took a seq", r1.Seq, r2.Seq, h.Seq())
		}
		for _, opt := range []hub.SubscribeOptions{
			{Since: &hub.Position{Seq: 0}},
			{Since: &hub.Position{Seq: r1.Seq}},
			{Snapshot: true},
		} {
			s := must(h.Subscribe("/r/", opt))
			for _, e := range s.TestInitial() {
				if e.Broadcast {
					t.Fatalf("Subscribe(%+v) starts with a broadcast: %v", opt, bcastAll(s.TestInitial()))
				}
			}
			s.Close()
		}
		page := must(h.History("/r/a", 0, 10))
		if len(page.Entries) != 2 {
			t.Fatalf("history of /r/a: %+v, want the two changes", page.Entries)
		}
	})
}

// TestBroadcastRefused: a bad path or message is refused with the error a value gets.
func TestBroadcastRefused(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{Limits: hub.Limits{MaxBroadcastBytes: 16, MaxJSONDepth: 3}})
	sub := must(h.Subscribe("/", hub.SubscribeOptions{}))
	tests := []struct {
		name, path, msg string
		want            error
	}{
		{"bad path", "/a//b", `1`, hub.ErrInvalidKey},
		{"not JSON", "/a", `{x}`, hub.ErrInvalidValue},
		{"empty", "/a", ``, hub.ErrInvalidValue},
		{"not UTF-8", "/a", "\"\xff\"", hub.ErrInvalidValue},
		{"too deep", "/a", `[[[[1]]]]`, hub.ErrValueTooDeep},
		{"too large", "/a", `"` + strings.Repeat("x", 15) + `"`, hub.ErrValueTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.Broadcast(tc.path, []byte(tc.msg)); !errors.Is(err, tc.want) {
				t.Fatalf("Broadcast(%q, %q) = %v, want %v", tc.path, tc.msg, err, tc.want)
			}
		})
	}
	if err := h.Broadcast("/a", []byte(`"`+strings.Repeat("x", 14)+`"`)); err != nil {
		t.Fatalf("a message of exactly the limit: %v", err)
	}
	if q := queued(sub); len(q) != 1 {
		t.Fatalf("subscriber got %v, want only the good message", bcastAll(q))
	}
}

// TestBroadcastSlowConsumer: broadcasts fill a subscriber's queue as events do, in count and in
// bytes; a full queue closes it as a slow consumer, and the broadcaster never waits.
func TestBroadcastSlowConsumer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  hub.Config
		fit  int
	}{
		{"events", hub.Config{QueueSize: 3}, 3},
		{"bytes", hub.Config{QueueBytes: 3 * 100}, 3}, // each broadcast below is 100 bytes of path and message
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t, tc.cfg)
			slow := must(h.Subscribe("/c/", hub.SubscribeOptions{}))
			msg := `"` + strings.Repeat("m", 100-len("/c/k")-2) + `"`
			for range tc.fit + 5 {
				if err := h.Broadcast("/c/k", []byte(msg)); err != nil {
					t.Fatal(err)
				}
			}
			if q := queued(slow); len(q) != tc.fit {
				t.Fatalf("%d queued, want the %d that fit", len(q), tc.fit)
			}
			if _, ok := slow.Next(); ok || !errors.Is(slow.Err(), hub.ErrSlowConsumer) {
				t.Fatalf("open %v, Err %v, want ErrSlowConsumer", ok, slow.Err())
			}
		})
	}
}

// TestBroadcastsOnlyIgnoresChanges: a subscription of broadcasts alone is never offered a change,
// so however many changes its path takes, its queue stays empty and it is never closed as a slow
// consumer; it counts among the subscribers, and closing or draining ends it.
func TestBroadcastsOnlyIgnoresChanges(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{QueueSize: 2})
	only := must(h.Subscribe("/r/", hub.SubscribeOptions{BroadcastsOnly: true}))
	closed := must(h.Subscribe("/r/", hub.SubscribeOptions{BroadcastsOnly: true}))
	if n := h.Subscribers(); n != 2 {
		t.Fatalf("Subscribers() = %d, want 2", n)
	}
	closed.Close()
	if n := h.Subscribers(); n != 1 {
		t.Fatalf("after Close: Subscribers() = %d, want 1", n)
	}
	for i := range 10 {
		set(t, h, fmt.Sprintf("/r/k%d", i), `1`)
	}
	if q := queued(only); len(q) != 0 || only.Err() != nil {
		t.Fatalf("after 10 changes: queued %v, Err %v; want nothing", bcastAll(q), only.Err())
	}
	if err := h.Broadcast("/r/k1", []byte(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	if q := queued(only); len(q) != 1 || bcastOf(q[0]) != `broadcast /r/k1 "hi"` {
		t.Fatalf("queued %v, want the broadcast", bcastAll(q))
	}
	h.Drain()
	if _, ok := only.Next(); ok || !errors.Is(only.Err(), hub.ErrShutdown) {
		t.Fatalf("after Drain: open %v, Err %v; want ErrShutdown", ok, only.Err())
	}
}

// TestBroadcastAfterClose: a closed hub refuses a broadcast.
func TestBroadcastAfterClose(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{})
	h.Close()
	if err := h.Broadcast("/a", []byte(`1`)); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Broadcast after Close = %v, want ErrClosed", err)
	}
}

// TestEtcdBroadcastAcrossNodes: a broadcast through one node reaches the subscribers of every
// node sharing the etcd prefix, between the changes in etcd's order; its revision is passed as a
// position, so a stream that starts at it resumes without a reset, and a fresh node's replay from
// etcd (Store.Since) holds no broadcast.
func TestEtcdBroadcastAcrossNodes(t *testing.T) {
	t.Parallel()
	// An etcd of its own: the position check below needs the broadcast to be etcd's last revision.
	endpoints := ownEtcd(t)
	open := func() *hub.Hub {
		return openEtcdHub(t, hub.Config{}, hub.EtcdConfig{Endpoints: endpoints, Prefix: "/bcast/"})
	}
	a, b := open(), open()
	onB := confSubscribe(t, b, "/room/", hub.SubscribeOptions{})
	r1 := set(t, a, "/room/1/c", `1`)
	if err := a.Broadcast("/room/1/c", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	r2 := set(t, a, "/room/1/c", `2`)
	confEvent(t, onB.next(), "/room/1/c", 0, r1.Seq, false)
	if e := onB.next(); !e.Broadcast || e.Key != "/room/1/c" || string(e.Value) != `{"x":1}` {
		t.Fatalf("node b got %v (broadcast %v), want the broadcast of node a", confEvents([]hub.Event{e}), e.Broadcast)
	}
	confEvent(t, onB.next(), "/room/1/c", 1, r2.Seq, false)

	// The broadcast is etcd's last revision: a snapshot starts at it, and a resume from there
	// neither waits for a change that never comes nor resets.
	if err := a.Broadcast("/room/", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	if e := onB.next(); !e.Broadcast || e.Key != "/room/" {
		t.Fatalf("node b got %v, want the second broadcast", confEvents([]hub.Event{e}))
	}
	snap := must(b.Subscribe("/room/", hub.SubscribeOptions{Snapshot: true}))
	snap.Close()
	if snap.Start <= r2.Seq {
		t.Fatalf("snapshot at %d, want the broadcast's revision after %d", snap.Start, r2.Seq)
	}
	again := must(b.Subscribe("/room/", hub.SubscribeOptions{Since: &hub.Position{Seq: snap.Start}}))
	again.Close()
	if again.Reset || len(again.TestInitial()) != 0 {
		t.Fatalf("resume from the snapshot's start %d: reset %v, %v", snap.Start, again.Reset, confEvents(again.TestInitial()))
	}

	// A fresh node reads the replay back from etcd: the changes, no broadcast.
	c := open()
	replay := must(c.Subscribe("/room/", hub.SubscribeOptions{Since: &hub.Position{Seq: r1.Seq}}))
	replay.Close()
	if replay.Reset || len(replay.TestInitial()) != 1 || replay.TestInitial()[0].Seq != r2.Seq || replay.TestInitial()[0].Broadcast {
		t.Fatalf("replay on a fresh node: reset %v, %v; want the second change only", replay.Reset, confEvents(replay.TestInitial()))
	}
}

// BenchmarkBroadcast is the hub's own cost of a broadcast next to a write of the same message, on
// the single binary's disk store (its WAL over waltest's in-memory file system, so no real fsync),
// with no subscriber: a broadcast skips the commit, the log and the history.
func BenchmarkBroadcast(b *testing.B) {
	msg := []byte(`{"x":1,"y":"some text"}`)
	for _, op := range []string{"broadcast", "set"} {
		b.Run(op, func(b *testing.B) {
			h, err := hub.Open(hub.Config{Logger: slog.New(slog.DiscardHandler)}, hub.StoreConfig{Dir: "/data", FS: waltest.New(1)})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			b.ReportAllocs()
			for b.Loop() {
				if op == "broadcast" {
					err = h.Broadcast("/room/1/cursor", msg)
				} else {
					_, err = h.Set("/room/1/cursor", msg, hub.Cond{}, hub.WriteOptions{})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
