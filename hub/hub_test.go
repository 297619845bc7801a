package hub_test

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/hubtest"
	"github.com/statehub/statehub/internal/fakeclock"
)

// t0 is the start of every fake clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newHub returns a hub that is closed when the test ends.
func newHub(tb testing.TB, cfg hub.Config) *hub.Hub {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := hub.New(cfg)
	tb.Cleanup(func() { h.Close() })
	return h
}

// forEachStore runs body against the memory-only hub and against a hub with a journal (whose
// durability waits run on a group-commit goroutine). These bodies assert Local's exact seqs; the
// conformance suite (conformance_test.go) runs store-neutral bodies on every store, etcd included. mk builds a hub from a config whose Journal is left nil.
func forEachStore(t *testing.T, body func(t *testing.T, mk func(hub.Config) *hub.Hub)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		body(t, func(cfg hub.Config) *hub.Hub { return newHub(t, cfg) })
	})
	t.Run("journal", func(t *testing.T) {
		t.Parallel()
		body(t, func(cfg hub.Config) *hub.Hub {
			cfg.Journal = hubtest.NewGroupJournal(t)
			return newHub(t, cfg)
		})
	})
}

// must returns v and panics on an error: for set-up steps that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func set(tb testing.TB, h *hub.Hub, key, value string) hub.Result {
	tb.Helper()
	return must(h.Set(key, []byte(value), hub.Cond{}, hub.WriteOptions{}))
}

func ptr[T any](v T) *T { return &v }

type setReply struct {
	res hub.Result
	err error
}

func TestJournalAnswersAfterWait(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	h := newHub(t, hub.Config{Journal: j})
	sub := must(h.Subscribe("/", hub.SubscribeOptions{}))

	reply := make(chan setReply, 1)
	go func() {
		res, err := h.Set("/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{Idempotency: "k"})
		reply <- setReply{res, err}
	}()
	c := <-j.Appended
	if c.Seq != 1 || len(c.Changes) != 1 || c.Changes[0].Key != "/a" || string(c.Changes[0].Value) != "1" {
		t.Fatalf("journal got %+v", c)
	}
	if c.Idem == nil || c.Idem.Key != "k" || c.Idem.Result.Seq != 1 {
		t.Fatalf("journal got idempotency record %+v, want key k at seq 1", c.Idem)
	}
	// The wait has not returned: neither the writer nor any subscriber has heard of the commit.
	select {
	case r := <-reply:
		t.Fatalf("write answered before the journal's wait returned: %+v", r)
	default:
	}
	if n := sub.Len(); n != 0 {
		t.Fatalf("%d events published before the commit was durable", n)
	}
	j.Release <- nil
	r := <-reply
	if r.err != nil || r.res.Seq != 1 || r.res.Revision != 0 {
		t.Fatalf("Set = %+v, %v; want seq 1 revision 0", r.res, r.err)
	}
	if e, _ := sub.Next(); e.Key != "/a" || e.Seq != 1 {
		t.Fatalf("event %+v, want /a at seq 1", e)
	}
}

func TestJournalFailureRefusesWrites(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	j := hubtest.NewGateJournal()
	clock := fakeclock.New(t0)
	h := newHub(t, hub.Config{Journal: j, Clock: clock})
	sub := must(h.Subscribe("/", hub.SubscribeOptions{}))

	// A key with a TTL, to show that expiry does not commit after the failure either.
	j.Release <- nil
	must(h.Set("/ttl", []byte(`0`), hub.Cond{}, hub.WriteOptions{TTL: time.Second}))
	<-j.Appended
	sub.Next()

	j.Release <- boom
	_, err := h.Set("/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{})
	<-j.Appended
	if !errors.Is(err, hub.ErrUnavailable) || !errors.Is(err, boom) {
		t.Fatalf("Set with a failing journal = %v, want ErrUnavailable wrapping the cause", err)
	}
	if n := sub.Len(); n != 0 {
		t.Fatalf("%d events published for a failed commit", n)
	}

	writes := []struct {
		name string
		do   func() error
	}{
		{"set", func() error { _, err := h.Set("/b", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); return err }},
		{"cas", func() error {
			_, err := h.Set("/b", []byte(`1`), hub.Cond{NextRevision: ptr[int64](0)}, hub.WriteOptions{})
			return err
		}},
		{"incr", func() error { _, err := h.Incr("/n", 1, hub.WriteOptions{}); return err }},
		{"delete", func() error { _, err := h.Delete("/ttl", hub.Cond{}, hub.WriteOptions{}); return err }},
		{"delete prefix", func() error { _, err := h.DeletePrefix("/", hub.WriteOptions{}); return err }},
		{"idempotent repeat", func() error {
			_, err := h.Set("/ttl", []byte(`0`), hub.Cond{}, hub.WriteOptions{Idempotency: "x"})
			return err
		}},
	}
	for _, w := range writes {
		if err := w.do(); !errors.Is(err, hub.ErrUnavailable) {
			t.Errorf("%s after a journal failure = %v, want ErrUnavailable", w.name, err)
		}
	}
	clock.Advance(time.Hour)
	if n := j.Appends(); n != 2 {
		t.Errorf("journal saw %d appends, want 2: nothing may be appended after a failure", n)
	}
	if n := sub.Len(); n != 0 {
		t.Errorf("%d events published after the failure", n)
	}
}

func TestReplayRestoresState(t *testing.T) {
	t.Parallel()
	j := &hubtest.RecJournal{}
	h1 := newHub(t, hub.Config{Journal: j})
	set(t, h1, "/a", `1`)
	set(t, h1, "/b/c", `"x"`)
	set(t, h1, "/a", `2`)
	must(h1.Delete("/b/c", hub.Cond{}, hub.WriteOptions{}))
	must(h1.Incr("/n", 5, hub.WriteOptions{Idempotency: "once"}))

	h2 := newHub(t, hub.Config{})
	for _, c := range j.Commits() {
		h2.Store.(*hub.Local).Replay(&c)
	}
	if got, want := h2.Seq(), h1.Seq(); got != want {
		t.Fatalf("replayed seq %d, want %d", got, want)
	}
	e := must(h2.Get("/a"))
	if string(e.Value) != "2" || e.Revision != 1 || e.Seq != 3 {
		t.Errorf("replayed /a = %+v", e)
	}
	if _, err := h2.Get("/b/c"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("replayed deleted key: %v", err)
	}
	// The idempotency record survives the restart, and the seq goes on from where it was.
	r := must(h2.Incr("/n", 5, hub.WriteOptions{Idempotency: "once"}))
	if !r.Replayed || string(r.Value) != "5" {
		t.Errorf("replayed idempotent incr = %+v", r)
	}
	if r := set(t, h2, "/z", `0`); r.Seq != h1.Seq()+1 {
		t.Errorf("first write after replay at seq %d, want %d", r.Seq, h1.Seq()+1)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{})
		set(t, h, "/a/b", `{"x": 1}`)
		set(t, h, "/a/b", `[1,2]`)
		tests := []struct {
			name    string
			key     string
			want    hub.Entry
			wantErr error
		}{
			{"present", "/a/b", hub.Entry{Key: "/a/b", Value: []byte(`[1,2]`), Revision: 1, Seq: 2}, nil},
			{"absent", "/a/c", hub.Entry{}, hub.ErrNotFound},
			{"prefix of a key", "/a", hub.Entry{}, hub.ErrNotFound},
			{"invalid", "/a.b", hub.Entry{}, hub.ErrInvalidKey},
			{"subtree", "/a/", hub.Entry{}, hub.ErrInvalidKey},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				e, err := h.Get(tc.key)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get(%q) error %v, want %v", tc.key, err, tc.wantErr)
				}
				if e.Key != tc.want.Key || string(e.Value) != string(tc.want.Value) || e.Revision != tc.want.Revision || e.Seq != tc.want.Seq {
					t.Errorf("Get(%q) = %+v, want %+v", tc.key, e, tc.want)
				}
			})
		}
	})
}

func BenchmarkGet(b *testing.B) {
	h := newHub(b, hub.Config{})
	set(b, h, "/bench/key", `{"a":1}`)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Get("/bench/key"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Get("/bench/key"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkMemoryPerKey loads 1,000,000 small keys into a memory-only hub, the keys and values of
// bench/keys, and reports the heap they hold per key (bytes/key): the tree and each key's item, key
// and value. Each key is a substring of a longer string, as net/http's URL.Path is of its request
// line, and each value comes from CompactJSON, as a PUT's does: what the hub keeps of them counts.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		h := hub.New(hub.Config{HistorySize: 1, Logger: slog.New(slog.DiscardHandler)})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			line := fmt.Sprintf("PUT /k/%012d HTTP/1.1", i)
			value, err := h.Limits().CompactJSON(fmt.Appendf(nil, `{"n":%d}`, i%1000))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.Set(line[len("PUT "):len(line)-len(" HTTP/1.1")], value, hub.Cond{}, hub.WriteOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
		runtime.KeepAlive(h)
		h.Close()
	}
}
