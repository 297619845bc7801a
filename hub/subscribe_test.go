package hub_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/hubtest"
)

// evs renders what a subscriber must see of an event.
func evs(e hub.Event) string {
	s := e.ID() + " " + string(e.Value)
	if e.Deleted {
		s += " deleted"
	}
	return s
}

func ids(es []hub.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID()
	}
	return out
}

// queued takes every event already in the subscription's queue, without waiting.
func queued(sub *hub.Subscription) []hub.Event {
	out, _ := sub.Take(nil)
	return out
}

func filterEvents(all []hub.Event, path string) []hub.Event {
	var out []hub.Event
	for _, e := range all {
		if hub.Covers(path, e.Key) {
			out = append(out, e)
		}
	}
	return out
}

func TestSubscribeLive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"prefix", "/a/b/", []string{"/a/b/c:0:1", "/a/b/d/e:0:4", "/a/b/c:1:6", "/a/b/d/e:1:7", "/a/b/c:0:9"}},
		{"deeper prefix", "/a/b/d/", []string{"/a/b/d/e:0:4", "/a/b/d/e:1:7"}},
		{"key", "/a/b", []string{"/a/b:0:3"}},
		{"sibling key", "/a/bc", []string{"/a/bc:0:2"}},
		{"root", "/", []string{"/a/b/c:0:1", "/a/bc:0:2", "/a/b:0:3", "/a/b/d/e:0:4", "/a/x:0:5", "/a/b/c:1:6", "/a/b/d/e:1:7", "/a/b-c:0:8", "/a/b/c:0:9"}},
		{"nothing", "/z/", nil},
	}
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{})
		subs := make([]*hub.Subscription, len(tests))
		for i, tc := range tests {
			subs[i] = must(h.Subscribe(tc.path, hub.SubscribeOptions{}))
			if subs[i].Start != 0 || subs[i].TestInitial() != nil || subs[i].Reset {
				t.Fatalf("%s: plain subscription %+v", tc.name, subs[i])
			}
		}
		for _, k := range []string{"/a/b/c", "/a/bc", "/a/b", "/a/b/d/e", "/a/x"} {
			set(t, h, k, `{"k":"`+k+`"}`)
		}
		must(h.Delete("/a/b/c", hub.Cond{}, hub.WriteOptions{}))
		must(h.DeletePrefix("/a/b/d/", hub.WriteOptions{}))
		set(t, h, "/a/b-c", `1`)
		set(t, h, "/a/b/c", `2`)
		for i, tc := range tests {
			got := queued(subs[i])
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("%s: events %v, want %v", tc.name, ids(got), tc.want)
			}
			for _, e := range got {
				if e.Deleted != (e.Value == nil) || e.Snapshot {
					t.Errorf("%s: event %+v", tc.name, e)
				}
			}
		}
		if _, err := h.Subscribe("/a.b/", hub.SubscribeOptions{}); !errors.Is(err, hub.ErrInvalidKey) {
			t.Errorf("Subscribe to an invalid path: %v", err)
		}
	})
}

// sinceFixture commits:
//
//	1 set /r/a   2 set /r/b   3 set /s/x   4 delete /r/ (/r/a and /r/b)   5 set /r/c   6 set /r/a
func sinceFixture(t *testing.T, h *hub.Hub) {
	set(t, h, "/r/a", `"a"`)
	set(t, h, "/r/b", `"b"`)
	set(t, h, "/s/x", `"x"`)
	must(h.DeletePrefix("/r/", hub.WriteOptions{}))
	set(t, h, "/r/c", `"c"`)
	set(t, h, "/r/a", `"a2"`)
}

func TestSubscribeSince(t *testing.T) {
	t.Parallel()
	all := []string{"/r/a:0:1", "/r/b:0:2", "/r/a:1:4", "/r/b:1:4", "/r/c:0:5", "/r/a:0:6"}
	tests := []struct {
		name  string
		path  string
		since string
		want  []string
	}{
		{"from the start", "/r/", "0", all},
		{"after the first event", "/r/", "/r/a:0:1", all[1:]},
		{"after another path's event", "/r/", "/s/x:0:3", all[2:]},
		{"after a seq", "/r/", "3", all[2:]},
		{"mid-commit, after the first delete", "/r/", "/r/a:1:4", all[3:]},
		{"mid-commit, between keys", "/r/", "/r/aa:7:4", all[3:]},
		{"mid-commit, before the first key", "/r/", "/r/0:0:4", all[2:]},
		{"after the whole commit", "/r/", "/r/b:1:4", all[4:]},
		{"after a seq with a commit", "/r/", "4", all[4:]},
		{"up to date", "/r/", "6", nil},
		{"a key", "/r/a", "0", []string{"/r/a:0:1", "/r/a:1:4", "/r/a:0:6"}},
		{"a key mid-commit", "/r/b", "/r/a:1:4", []string{"/r/b:1:4"}},
		{"root", "/", "2", []string{"/s/x:0:3", "/r/a:1:4", "/r/b:1:4", "/r/c:0:5", "/r/a:0:6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
				h := mk(hub.Config{})
				sinceFixture(t, h)
				p := must(hub.ParsePosition(tc.since))
				sub := must(h.Subscribe(tc.path, hub.SubscribeOptions{Since: &p}))
				if sub.Reset || sub.Start != 6 {
					t.Fatalf("Reset %v Start %d, want a replay up to 6", sub.Reset, sub.Start)
				}
				if got := ids(sub.TestInitial()); !slices.Equal(got, tc.want) {
					t.Fatalf("replay %v, want %v", got, tc.want)
				}
				// Live events follow the replay, without a duplicate.
				set(t, h, "/r/a", `"live"`)
				live := queued(sub)
				if hub.Covers(tc.path, "/r/a") != (len(live) == 1) || len(live) == 1 && live[0].ID() != "/r/a:1:7" {
					t.Fatalf("live events %v", ids(live))
				}
			})
		})
	}
}

func TestSubscribeReset(t *testing.T) {
	t.Parallel()
	// HistorySize 3: of the commits 1 (/q) and 2..10 (/r/k1../r/k9), seqs 8, 9 and 10 are retained.
	tests := []struct {
		name  string
		since string
		reset bool
		want  []string // the replay, when not a reset
	}{
		{"at the oldest retained boundary", "7", false, []string{"/r/k7:0:8", "/r/k8:0:9", "/r/k9:0:10"}},
		{"at the last evicted event", "/r/k6:0:7", false, []string{"/r/k7:0:8", "/r/k8:0:9", "/r/k9:0:10"}},
		{"up to date", "10", false, nil},
		{"one too old", "6", true, nil},
		{"from the start", "0", true, nil},
		{"a snapshot position", "/r/k9:0:10:s", true, nil},
		{"a position from the future", "11", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, hub.Config{HistorySize: 3})
			set(t, h, "/q", `0`) // seq 1, outside the path
			for i := 1; i <= 9; i++ {
				set(t, h, "/r/k"+strconv.Itoa(i), strconv.Itoa(i)) // seq i+1
			}
			p := must(hub.ParsePosition(tc.since))
			sub := must(h.Subscribe("/r/", hub.SubscribeOptions{Since: &p}))
			if sub.Reset != tc.reset || sub.Start != 10 {
				t.Fatalf("Reset %v Start %d, want %v and 10", sub.Reset, sub.Start, tc.reset)
			}
			if !tc.reset {
				if got := ids(sub.TestInitial()); !slices.Equal(got, tc.want) {
					t.Fatalf("replay %v, want %v", got, tc.want)
				}
				return
			}
			// A reset carries the current state of the path as snapshot entries, in key order.
			var want []string
			for i := 1; i <= 9; i++ {
				want = append(want, fmt.Sprintf("/r/k%d:0:%d:s", i, i+1))
			}
			if got := ids(sub.TestInitial()); !slices.Equal(got, want) {
				t.Fatalf("reset entries %v, want %v", got, want)
			}
			for _, e := range sub.TestInitial() {
				if !e.Snapshot || e.Deleted || string(e.Value) != e.Key[len("/r/k"):] {
					t.Fatalf("reset entry %+v", e)
				}
			}
		})
	}

	t.Run("the oldest retained event is mid-commit", func(t *testing.T) {
		t.Parallel()
		h := newHub(t, hub.Config{HistorySize: 2})
		for _, k := range []string{"/m/a", "/m/b", "/m/c"} {
			set(t, h, k, `1`)
		}
		must(h.DeletePrefix("/m/", hub.WriteOptions{})) // seq 4: /m/a, /m/b, /m/c; /m/a leaves the ring
		cases := []struct {
			since string
			reset bool
			want  []string
		}{
			{"/m/a:1:4", false, []string{"/m/b:1:4", "/m/c:1:4"}},
			{"/m/b:1:4", false, []string{"/m/c:1:4"}},
			{"4", false, nil},
			{"3", true, nil},
			{"/m/0:1:4", true, nil},
		}
		for _, c := range cases {
			p := must(hub.ParsePosition(c.since))
			sub := must(h.Subscribe("/m/", hub.SubscribeOptions{Since: &p}))
			if sub.Reset != c.reset || !c.reset && !slices.Equal(ids(sub.TestInitial()), c.want) {
				t.Errorf("since %s: reset %v replay %v; want reset %v replay %v", c.since, sub.Reset, ids(sub.TestInitial()), c.reset, c.want)
			}
			if c.reset && len(sub.TestInitial()) != 0 {
				t.Errorf("since %s: reset of an empty subtree has entries %v", c.since, ids(sub.TestInitial()))
			}
			sub.Close()
		}
	})
}

func TestSubscribeSnapshot(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	for _, k := range []string{"/p/b/c", "/pa", "/p", "/p/a"} {
		set(t, h, k, `"`+k+`"`)
	}
	set(t, h, "/p/a", `"new"`)
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"prefix", "/p/", []string{"/p/a:1:5:s", "/p/b/c:0:1:s"}},
		{"key", "/p", []string{"/p:0:3:s"}},
		{"absent key", "/p/zz", nil},
		{"empty subtree", "/none/", nil},
		{"root", "/", []string{"/p:0:3:s", "/p/a:1:5:s", "/p/b/c:0:1:s", "/pa:0:2:s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := must(h.Subscribe(tc.path, hub.SubscribeOptions{Snapshot: true}))
			defer sub.Close()
			if sub.Reset || sub.Start != 5 {
				t.Fatalf("Reset %v Start %d", sub.Reset, sub.Start)
			}
			if got := ids(sub.TestInitial()); !slices.Equal(got, tc.want) {
				t.Fatalf("snapshot %v, want %v", got, tc.want)
			}
			for _, e := range sub.TestInitial() {
				if g := must(h.Get(e.Key)); string(g.Value) != string(e.Value) {
					t.Fatalf("snapshot entry %+v, Get %+v", e, g)
				}
			}
		})
	}
}

// TestSubscribeWhileWriting subscribes while writers run, with and without a journal (a commit
// with no subscriber is then never queued for publish). A snapshot plus its live events must
// rebuild exactly the final state, each event continuing the key's revisions (no gap), after the
// snapshot's seq (no duplicate). A plain subscription must get exactly the changes of its path
// after its start, as the history has them.
func TestSubscribeWhileWriting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		journal bool
	}{{"group journal", true}, {"no journal", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := hub.Config{QueueSize: 1 << 13}
			if tc.journal {
				cfg.Journal = hubtest.NewGroupJournal(t)
			}
			subscribeWhileWriting(t, newHub(t, cfg))
		})
	}
}

func subscribeWhileWriting(t *testing.T, h *hub.Hub) {
	keys := []string{"/s/a", "/s/b", "/s/a/x", "/s/a/y", "/s/b/z", "/s/ab", "/t"}
	paths := []string{"/s/", "/s/a/", "/s/a", "/", "/s/b/z"}
	const writers, ops, subscribers = 4, 300, 24
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { randomWrites(t, h, rand.New(rand.NewPCG(uint64(w), 7)), keys, []string{"/s/", "/s/a/"}, ops) })
	}
	subs := make([]*hub.Subscription, subscribers)
	for i := range subs {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 8))
			for range rng.IntN(300) { // join at a different moment each
				h.Get(keys[rng.IntN(len(keys))])
			}
			sub, err := h.Subscribe(paths[i%len(paths)], hub.SubscribeOptions{Snapshot: i%2 == 0})
			if err != nil {
				t.Error(err)
			}
			subs[i] = sub
		})
	}
	wg.Wait()
	// The oracle: every change, replayed from the history. Subscribed while the writers ran, it
	// would itself be a subscriber, and every commit would be queued for publish.
	oracle, err := h.Subscribe("/", hub.SubscribeOptions{Since: &hub.Position{}})
	if err != nil || oracle.Reset {
		t.Fatalf("replay from the start: %v (reset %v)", err, oracle != nil && oracle.Reset)
	}
	all := oracle.TestInitial()
	type state struct {
		value string
		rev   int64
	}
	for i, sub := range subs {
		if sub == nil {
			continue
		}
		if i%2 == 1 { // plain
			var want []string
			for _, e := range all {
				if e.Seq > sub.Start && hub.Covers(sub.Path, e.Key) {
					want = append(want, e.ID())
				}
			}
			var got []string
			for _, e := range queued(sub) {
				got = append(got, e.ID())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("sub %d (%s) from seq %d got %v, want %v", i, sub.Path, sub.Start, got, want)
			}
			continue
		}
		have := map[string]state{}
		for _, e := range sub.TestInitial() {
			if !e.Snapshot || e.Seq > sub.Start {
				t.Fatalf("sub %d: snapshot entry %+v past Start %d", i, e, sub.Start)
			}
			have[e.Key] = state{string(e.Value), e.Revision}
		}
		last := hub.Position{Seq: sub.Start}
		for _, e := range queued(sub) {
			if last.Covers(e.Seq, e.Key) {
				t.Fatalf("sub %d (%s): event %s at or before %+v: a duplicate", i, sub.Path, e.ID(), last)
			}
			last = hub.Position{Seq: e.Seq, Key: e.Key}
			cur, ok := have[e.Key]
			switch {
			case e.Deleted && (!ok || e.Revision != cur.rev+1):
				t.Fatalf("sub %d (%s): delete %s but had %+v (present %v): a gap", i, sub.Path, e.ID(), cur, ok)
			case !e.Deleted && ok && e.Revision != cur.rev+1:
				t.Fatalf("sub %d (%s): %s after revision %d: a gap", i, sub.Path, e.ID(), cur.rev)
			case !e.Deleted && !ok && e.Revision != 0:
				t.Fatalf("sub %d (%s): %s for an absent key: a gap", i, sub.Path, e.ID())
			}
			if e.Deleted {
				delete(have, e.Key)
			} else {
				have[e.Key] = state{string(e.Value), e.Revision}
			}
		}
		want := map[string]state{}
		for _, k := range keys {
			if g, err := h.Get(k); err == nil && hub.Covers(sub.Path, k) {
				want[k] = state{string(g.Value), g.Revision}
			}
		}
		if fmt.Sprint(have) != fmt.Sprint(want) {
			t.Fatalf("sub %d (%s): rebuilt %v, want %v", i, sub.Path, have, want)
		}
	}
}

// randomWrites runs n random sets, incrs, CASes, deletes and prefix deletes. Only the errors those
// operations may legitimately meet are tolerated.
func randomWrites(t *testing.T, h *hub.Hub, rng *rand.Rand, keys, prefixes []string, n int) {
	for i := range n {
		key := keys[rng.IntN(len(keys))]
		var err error
		switch r := rng.IntN(100); {
		case r < 40:
			v := strconv.Itoa(rng.IntN(1000))
			if r < 5 {
				v = `{"i":` + v + `,"s":"x y"}`
			}
			_, err = h.Set(key, []byte(v), hub.Cond{}, hub.WriteOptions{})
		case r < 70:
			_, err = h.Incr(key, int64(rng.IntN(5)-2), hub.WriteOptions{})
		case r < 85:
			_, err = h.Delete(key, hub.Cond{}, hub.WriteOptions{})
		case r < 90:
			_, err = h.DeletePrefix(prefixes[rng.IntN(len(prefixes))], hub.WriteOptions{})
		default:
			next := int64(rng.IntN(3))
			_, err = h.Set(key, []byte(strconv.Itoa(i)), hub.Cond{NextRevision: &next}, hub.WriteOptions{})
		}
		if err != nil && !errors.Is(err, hub.ErrNotFound) && !errors.Is(err, hub.ErrNotInteger) && !errors.Is(err, hub.ErrRevisionConflict) {
			t.Errorf("write %d: %v", i, err)
			return
		}
	}
}

func TestConcurrentSnapshotSubscribers(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	for i := range 50 {
		set(t, h, fmt.Sprintf("/c/%02d", i), `1`)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				sub, err := h.Subscribe("/c/", hub.SubscribeOptions{Snapshot: true})
				if err != nil {
					t.Error(err)
					return
				}
				if len(sub.TestInitial()) != 50 {
					t.Errorf("snapshot of %d entries, want 50", len(sub.TestInitial()))
				}
				sub.Close()
			}
		})
	}
	wg.Wait()
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		const queue, writes = 4, 100
		h := mk(hub.Config{QueueSize: queue})
		slow := must(h.Subscribe("/", hub.SubscribeOptions{}))
		other := must(h.Subscribe("/other/", hub.SubscribeOptions{}))
		// Nobody reads slow: every write must still complete.
		for i := range writes {
			set(t, h, "/k", strconv.Itoa(i))
		}
		got := queued(slow)
		if len(got) != queue {
			t.Fatalf("%d events queued, want the %d that fit", len(got), queue)
		}
		if _, ok := slow.Next(); ok {
			t.Fatal("C still open")
		}
		if !errors.Is(slow.Err(), hub.ErrSlowConsumer) {
			t.Fatalf("Err() = %v, want ErrSlowConsumer", slow.Err())
		}
		if h.Subscribers() != 1 {
			t.Fatalf("%d subscribers, want the other one left", h.Subscribers())
		}
		// The subscriber resumes from its last event and misses nothing.
		p := must(hub.ParsePosition(got[len(got)-1].ID()))
		again := must(h.Subscribe("/", hub.SubscribeOptions{Since: &p}))
		all := append(got, again.TestInitial()...)
		if len(all) != writes || again.Reset {
			t.Fatalf("after resume %d events (reset %v), want %d", len(all), again.Reset, writes)
		}
		for i, e := range all {
			if string(e.Value) != strconv.Itoa(i) || e.Seq != uint64(i+1) {
				t.Fatalf("event %d = %+v", i, e)
			}
		}
		other.Close()
		again.Close()
	})
}

// TestSlowConsumerBytes: the queue is bounded in bytes of keys and values too. A subscriber that
// does not read is closed as slow once its queue would pass QueueBytes, well within QueueSize; one
// that reads stays open, and an event larger than the bound still reaches an empty queue.
func TestSlowConsumerBytes(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		const key, fit = "/b/k", 10
		value := `"` + strings.Repeat("x", 1024-len(key)-2) + `"` // an event of 1 KiB
		h := mk(hub.Config{QueueBytes: fit << 10})
		slow := must(h.Subscribe("/b/", hub.SubscribeOptions{}))
		reader := must(h.Subscribe("/b/", hub.SubscribeOptions{}))
		read := func() {
			t.Helper()
			if e, ok := reader.Next(); !ok || e.Key != key {
				t.Fatalf("reader: %+v %v (%v)", e, ok, reader.Err())
			}
		}
		for range fit { // exactly the bound: still open
			set(t, h, key, value)
			read()
		}
		if slow.Len() != fit || slow.Err() != nil || h.Subscribers() != 2 {
			t.Fatalf("at the bound: %d queued, Err %v, %d subscribers", slow.Len(), slow.Err(), h.Subscribers())
		}
		set(t, h, key, value) // one byte past it would do
		read()
		got := queued(slow)
		if len(got) != fit {
			t.Fatalf("%d events queued, want the %d that fit", len(got), fit)
		}
		if _, ok := slow.Next(); ok || !errors.Is(slow.Err(), hub.ErrSlowConsumer) {
			t.Fatalf("past the bound: open %v, Err %v, want ErrSlowConsumer", ok, slow.Err())
		}
		// A value larger than the whole bound reaches a subscriber that keeps up.
		huge := `"` + strings.Repeat("y", 3*fit<<10) + `"`
		set(t, h, key, huge)
		if e, ok := reader.Next(); !ok || string(e.Value) != huge {
			t.Fatalf("reader after a huge value: %d bytes, %v (%v)", len(e.Value), ok, reader.Err())
		}
		// Behind it, even a small event does not fit: the queue is over its bytes.
		set(t, h, key, huge)
		set(t, h, key, `1`)
		if _, ok := reader.Next(); !ok {
			t.Fatal("the queued huge value was lost")
		}
		if _, ok := reader.Next(); ok || !errors.Is(reader.Err(), hub.ErrSlowConsumer) {
			t.Fatalf("behind a huge value: open %v, Err %v, want ErrSlowConsumer", ok, reader.Err())
		}
		if st := h.Stats(); st.SlowConsumers != 2 || st.Subscribers != 0 {
			t.Fatalf("Stats %+v, want two slow consumers and no subscriber", st)
		}
	})
}

func TestSubscriptionClose(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	sub := must(h.Subscribe("/a/", hub.SubscribeOptions{}))
	keep := must(h.Subscribe("/a/", hub.SubscribeOptions{}))
	if h.Subscribers() != 2 {
		t.Fatalf("%d subscribers", h.Subscribers())
	}
	sub.Close()
	sub.Close() // idempotent
	if _, ok := sub.Next(); ok || sub.Err() != nil {
		t.Fatalf("after Close: C open %v, Err %v", ok, sub.Err())
	}
	set(t, h, "/a/x", `1`)
	if e, _ := keep.Next(); e.Key != "/a/x" {
		t.Fatalf("the other subscriber got %+v", e)
	}
	if h.Subscribers() != 1 {
		t.Fatalf("%d subscribers after Close", h.Subscribers())
	}
}

func TestDrain(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	a := must(h.Subscribe("/a/", hub.SubscribeOptions{}))
	b := must(h.Subscribe("/b", hub.SubscribeOptions{Snapshot: true}))
	set(t, h, "/a/x", `1`)
	h.Drain()
	if e, ok := a.Next(); !ok || e.Key != "/a/x" {
		t.Fatalf("queued event lost at drain: %+v %v", e, ok)
	}
	for _, s := range []*hub.Subscription{a, b} {
		if _, ok := s.Next(); ok {
			t.Fatal("C open after Drain")
		}
		if !errors.Is(s.Err(), hub.ErrShutdown) {
			t.Fatalf("Err() = %v, want ErrShutdown", s.Err())
		}
		s.Close() // harmless after Drain
	}
	if _, err := h.Subscribe("/a/", hub.SubscribeOptions{}); !errors.Is(err, hub.ErrShutdown) {
		t.Fatalf("Subscribe after Drain = %v, want ErrShutdown", err)
	}
	if h.Subscribers() != 0 {
		t.Fatalf("%d subscribers after Drain", h.Subscribers())
	}
	h.Drain() // twice is fine
}

// subscriber is one client of TestResumeConcurrent: it records what it sees and, when its
// subscription ends (by its own Close at a random moment, or as a slow consumer), resumes from the
// position of the last event it saw, as a browser does with Last-Event-ID.
type subscriber struct {
	path             string
	got              []hub.Event
	resumes, slow    int
	waitForLastWrite bool // reads nothing until the writers are done: it must overflow
}

func (s *subscriber) run(t *testing.T, h *hub.Hub, sub *hub.Subscription, rng *rand.Rand, done <-chan struct{}) {
	last := hub.Position{Seq: sub.Start}
	record := func(e hub.Event) {
		s.got = append(s.got, e)
		p, err := hub.ParsePosition(e.ID())
		if err != nil {
			t.Error(err)
		}
		last = p
	}
	resume := func() *hub.Subscription {
		since := last
		next, err := h.Subscribe(s.path, hub.SubscribeOptions{Since: &since})
		if err != nil {
			t.Errorf("%s: resume from %+v: %v", s.path, since, err)
			return nil
		}
		if next.Reset {
			t.Errorf("%s: resume from %+v was reset", s.path, since)
		}
		s.resumes++
		for _, e := range next.TestInitial() {
			record(e)
		}
		return next
	}
	slowClosed := func(sub *hub.Subscription) bool {
		if !errors.Is(sub.Err(), hub.ErrSlowConsumer) {
			t.Errorf("%s: C closed with %v", s.path, sub.Err())
			return false
		}
		s.slow++
		return true
	}
	if s.waitForLastWrite {
		<-done
	}
	for {
		select {
		case <-sub.Ready():
			events, closed := sub.Take(nil)
			resumed := false
			for _, e := range events {
				record(e)
				if !s.waitForLastWrite && rng.IntN(20) == 0 {
					sub.Close()
					if sub = resume(); sub == nil {
						return
					}
					resumed = true
					break
				}
			}
			if closed && !resumed {
				if !slowClosed(sub) {
					return
				}
				if sub = resume(); sub == nil {
					return
				}
			}
		case <-done:
			// Every write has returned, so every event is published: take what is queued, and
			// resume once more if the queue overflowed meanwhile.
			events, closed := sub.Take(nil)
			for _, e := range events {
				record(e)
			}
			if !closed {
				sub.Close()
				return
			}
			if slowClosed(sub) {
				if sub = resume(); sub != nil {
					if n := len(queued(sub)); n != 0 {
						t.Errorf("%s: %d events after the last write", s.path, n)
					}
					sub.Close()
				}
			}
			return
		}
	}
}

// TestResumeConcurrent is the stream guarantee under stress: 50 subscribers of overlapping
// subtrees are cut off at random moments (and, with a small queue, for being slow) and resume from
// their last position while writers set, delete, delete subtrees and increment. In the end every
// subscriber has seen every change of its path exactly once, in commit order.
func TestResumeConcurrent(t *testing.T) {
	t.Parallel()
	keys := []string{"/t/a", "/t/ab", "/t/a-b", "/t/a/x", "/t/a/y", "/t/a/x/1", "/t/a/x/2", "/t/b/x", "/t/b/y/z", "/t/bc", "/u"}
	prefixes := []string{"/t/a/", "/t/a/x/", "/t/b/", "/t/"}
	paths := []string{"/", "/t/", "/t/a/", "/t/a/x/", "/t/b/", "/t/a", "/t/a/x/1", "/t/ab", "/t/b/y/", "/u"}
	tests := []struct {
		name  string
		queue int
		group bool // durability waits through the group-commit journal
	}{
		{"large queue", 1 << 12, false},
		{"small queue", 4, false},
		{"small queue, group commit", 8, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var j interface {
				hub.Journal
				Events() []hub.Event
			} = &hubtest.RecJournal{}
			if tc.group {
				j = hubtest.NewGroupJournal(t)
			}
			h := newHub(t, hub.Config{Journal: j, QueueSize: tc.queue, HistorySize: 1 << 16})
			done := make(chan struct{})
			subs := make([]*subscriber, 50)
			var swg sync.WaitGroup
			for i := range subs {
				s := &subscriber{path: paths[i%len(paths)], waitForLastWrite: tc.queue < 16 && i < 2}
				subs[i] = s
				sub := must(h.Subscribe(s.path, hub.SubscribeOptions{}))
				swg.Go(func() { s.run(t, h, sub, rand.New(rand.NewPCG(uint64(i), 1)), done) })
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() { randomWrites(t, h, rand.New(rand.NewPCG(uint64(w), 2)), keys, prefixes, 400) })
			}
			wg.Wait()
			close(done)
			swg.Wait()

			all := j.Events()
			var resumes, slow int
			for i, s := range subs {
				resumes += s.resumes
				slow += s.slow
				want := filterEvents(all, s.path)
				if len(s.got) != len(want) {
					t.Errorf("subscriber %d (%s): %d events, want %d", i, s.path, len(s.got), len(want))
				}
				for k := range min(len(s.got), len(want)) {
					if g, w := evs(s.got[k]), evs(want[k]); g != w {
						t.Errorf("subscriber %d (%s): event %d is %s, want %s", i, s.path, k, g, w)
						break
					}
				}
				if s.waitForLastWrite && s.slow == 0 {
					t.Errorf("subscriber %d never read until the end but was not closed as slow", i)
				}
			}
			t.Logf("%d events, %d resumes, %d slow-consumer closes", len(all), resumes, slow)
		})
	}
}

func BenchmarkFanout(b *testing.B) {
	value := []byte(`{"x":1,"y":"some text"}`)
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			// A queue of 256 keeps 10,000 subscribers' buffers at about 200 MB: channels allocate
			// their whole buffer up front.
			h := newHub(b, hub.Config{QueueSize: 256})
			var wg sync.WaitGroup
			var slow atomic.Int64
			for range n {
				sub := must(h.Subscribe("/fan/", hub.SubscribeOptions{}))
				wg.Go(func() {
					// Drain; when closed as slow, resume from the last event, as a client does.
					last := hub.Position{Seq: sub.Start}
					for {
						for e, ok := sub.Next(); ok; e, ok = sub.Next() {
							last = hub.Position{Seq: e.Seq, Key: e.Key}
						}
						if !errors.Is(sub.Err(), hub.ErrSlowConsumer) {
							return
						}
						slow.Add(1)
						since := last
						next, err := h.Subscribe("/fan/", hub.SubscribeOptions{Since: &since})
						if err != nil {
							return
						}
						if len(next.TestInitial()) > 0 {
							e := next.TestInitial()[len(next.TestInitial())-1]
							last = hub.Position{Seq: e.Seq, Key: e.Key}
						}
						sub = next
					}
				})
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Set("/fan/k", value, hub.Cond{}, hub.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			h.Drain()
			wg.Wait()
			b.ReportMetric(float64(slow.Load()), "slow-closes")
		})
	}
}

// TestSubscribeNotify checks SubscribeOptions.Notify: it is called when the queue becomes
// non-empty (not for each event queued behind the first) and when the subscription is closed.
func TestSubscribeNotify(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{})
	defer h.Close()
	var calls atomic.Int32
	sub, err := h.Subscribe("/n/", hub.SubscribeOptions{Notify: func() { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := h.Set("/n/"+strconv.Itoa(i), []byte(`1`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("Notify called %d times for 3 events queued at once, want 1", got)
	}
	if events, done := sub.Take(nil); len(events) != 3 || done {
		t.Fatalf("Take = %d events, done %v; want 3, false", len(events), done)
	}
	if _, err := h.Set("/n/x", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("Notify called %d times, want 2 after the queue was emptied and refilled", got)
	}
	sub.Close()
	if got := calls.Load(); got != 3 {
		t.Fatalf("Notify called %d times, want 3 after Close", got)
	}
	if _, done := sub.Take(nil); !done {
		t.Fatal("Take after Close: not done")
	}
}
