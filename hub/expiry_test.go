package hub_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

func TestTTL(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second
	type step struct {
		advance time.Duration          // first move the clock (and check the expiry events)
		write   func(h *hub.Hub) error // then write, if set
		present map[string]bool        // then check these keys
		deletes []string               // the expiry events Advance must cause, in order, in one commit
		apart   bool                   // unless the deadlines are apart: then one commit per deadline
	}
	setTTL := func(key string, d time.Duration) func(h *hub.Hub) error {
		return func(h *hub.Hub) error {
			_, err := h.Set(key, []byte(`"v"`), hub.Cond{}, hub.WriteOptions{TTL: d})
			return err
		}
	}
	incrTTL := func(key string, d time.Duration) func(h *hub.Hub) error {
		return func(h *hub.Hub) error { _, err := h.Incr(key, 1, hub.WriteOptions{TTL: d}); return err }
	}
	del := func(key string) func(h *hub.Hub) error {
		return func(h *hub.Hub) error { _, err := h.Delete(key, hub.Cond{}, hub.WriteOptions{}); return err }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"expires exactly at the deadline", []step{
			{write: setTTL("/a", ttl), present: map[string]bool{"/a": true}},
			{advance: ttl - time.Nanosecond, present: map[string]bool{"/a": true}},
			{advance: time.Nanosecond, present: map[string]bool{"/a": false}, deletes: []string{"/a"}},
			{advance: time.Hour},
		}},
		{"rewrite without ttl cancels the expiry", []step{
			{write: setTTL("/a", ttl)},
			{advance: ttl / 2, write: setTTL("/a", 0)},
			{advance: time.Hour, present: map[string]bool{"/a": true}},
		}},
		{"rewrite with a longer ttl extends it", []step{
			{write: setTTL("/a", ttl)},
			{write: setTTL("/a", 3*ttl)},
			{advance: 2 * ttl, present: map[string]bool{"/a": true}},
			{advance: ttl, present: map[string]bool{"/a": false}, deletes: []string{"/a"}},
		}},
		{"rewrite with a shorter ttl shortens it", []step{
			{write: setTTL("/a", 3*ttl)},
			{write: setTTL("/a", ttl)},
			{advance: ttl, present: map[string]bool{"/a": false}, deletes: []string{"/a"}},
			{advance: 3 * ttl},
		}},
		{"incr keeps the counter's ttl", []step{
			{write: incrTTL("/n", ttl)},
			{advance: ttl / 2, write: incrTTL("/n", 0)},
			{advance: ttl / 2, present: map[string]bool{"/n": false}, deletes: []string{"/n"}},
		}},
		{"incr with a ttl replaces it", []step{
			{write: incrTTL("/n", ttl)},
			{advance: ttl / 2, write: incrTTL("/n", 3*ttl)},
			{advance: ttl, present: map[string]bool{"/n": true}},
			{advance: 3 * ttl, present: map[string]bool{"/n": false}, deletes: []string{"/n"}},
		}},
		{"keys due together expire in one commit in key order", []step{
			{write: setTTL("/c", ttl)},
			{write: setTTL("/a", ttl)},
			{write: setTTL("/b/x", ttl)},
			{write: setTTL("/d", 2*ttl)},
			{advance: ttl, present: map[string]bool{"/a": false, "/b/x": false, "/c": false, "/d": true}, deletes: []string{"/a", "/b/x", "/c"}},
			{advance: ttl, present: map[string]bool{"/d": false}, deletes: []string{"/d"}},
		}},
		{"a deleted key does not expire again", []step{
			{write: setTTL("/a", ttl)},
			{write: del("/a")},
			{advance: time.Hour, present: map[string]bool{"/a": false}},
		}},
		{"a re-created key without ttl survives the old deadline", []step{
			{write: setTTL("/a", ttl)},
			{write: del("/a")},
			{write: setTTL("/a", 0)},
			{advance: time.Hour, present: map[string]bool{"/a": true}},
		}},
		{"a big jump expires everything due", []step{
			{write: setTTL("/a", ttl)},
			{write: setTTL("/b", 2*ttl)},
			{advance: time.Hour, deletes: []string{"/a", "/b"}, apart: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
				clock := fakeclock.New(t0)
				h := mk(hub.Config{Clock: clock})
				sub := must(h.Subscribe("/", hub.SubscribeOptions{}))
				revs := map[string]int64{}
				for i, s := range tc.steps {
					clock.Advance(s.advance)
					// Only expiry can have committed during Advance.
					var expired []hub.Event
					for sub.Len() > 0 {
						e, _ := sub.Next()
						expired = append(expired, e)
					}
					if len(expired) != len(s.deletes) {
						t.Fatalf("step %d: events %+v, want expiry of %v", i, expired, s.deletes)
					}
					for k, e := range expired {
						oneSeq := e.Seq == expired[0].Seq || s.apart && e.Seq > expired[k-1].Seq
						if !e.Deleted || e.Key != s.deletes[k] || !oneSeq || e.Revision != revs[e.Key]+1 || e.Value != nil {
							t.Fatalf("step %d: event %+v, want delete of %s at one seq with revision %d", i, e, s.deletes[k], revs[e.Key]+1)
						}
					}
					if s.write != nil {
						if err := s.write(h); err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
						for sub.Len() > 0 {
							e, _ := sub.Next()
							revs[e.Key] = e.Revision
						}
					}
					for key, want := range s.present {
						_, err := h.Get(key)
						if got := err == nil; got != want {
							t.Fatalf("step %d: %s present = %v (%v), want %v", i, key, got, err, want)
						}
					}
				}
			})
		})
	}
}

func TestTTLEntryExpires(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(t0)
	h := newHub(t, hub.Config{Clock: clock})
	must(h.Set("/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{TTL: time.Minute}))
	if e := must(h.Get("/a")); !e.Expires.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Expires = %v, want %v", e.Expires, t0.Add(time.Minute))
	}
	if _, err := h.Set("/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{TTL: -1}); !errors.Is(err, hub.ErrInvalidTTL) {
		t.Fatalf("negative TTL: %v", err)
	}
}

func TestTTLManyKeysOneTimer(t *testing.T) {
	t.Parallel()
	// Thousands of keys with distinct deadlines expire in deadline order through the one timer.
	clock := fakeclock.New(t0)
	h := newHub(t, hub.Config{Clock: clock, QueueSize: 1 << 14})
	sub := must(h.Subscribe("/", hub.SubscribeOptions{}))
	const n = 2000
	for i := range n {
		// Deadlines in a scrambled order: 7919 is prime, so i*7919 % n visits every slot once.
		d := time.Duration(1+(i*7919)%n) * time.Millisecond
		must(h.Set(keyN(i), []byte(`1`), hub.Cond{}, hub.WriteOptions{TTL: d}))
	}
	for range n {
		sub.Next()
	}
	clock.Advance(time.Duration(n) * time.Millisecond)
	if h.Len() != 0 {
		t.Fatalf("%d keys left after every deadline passed", h.Len())
	}
	var last time.Duration
	for range n {
		e, _ := sub.Next()
		if !e.Deleted {
			t.Fatalf("unexpected %+v", e)
		}
		i := must(strconv.Atoi(strings.TrimPrefix(e.Key, "/k/")))
		d := time.Duration(1+(i*7919)%n) * time.Millisecond
		if d < last {
			t.Fatalf("%s (deadline %v) expired after a key with deadline %v", e.Key, d, last)
		}
		last = d
	}
}

func TestCloseStopsExpiry(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(t0)
	h := hub.New(hub.Config{Clock: clock})
	must(h.Set("/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{TTL: time.Second}))
	seq := h.Seq()
	h.Close()
	clock.Advance(time.Hour)
	if h.Seq() != seq {
		t.Fatalf("expiry committed after Close")
	}
	if _, err := h.Set("/b", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Set after Close = %v, want ErrClosed", err)
	}
}

// TestTTLRewritesCompact: rewriting a key with a TTL leaves each old deadline stale in the queue;
// once they pile up they are dropped, so 10,000 rewrites leave it small, and only the final
// deadline expires the key. Keys whose deadlines are all current keep them.
func TestTTLRewritesCompact(t *testing.T) {
	t.Parallel()
	const rewrites, others, ttl = 10_000, 100, time.Minute
	tests := []struct {
		name string
		step time.Duration // the clock moves this much between rewrites
	}{
		{"moving clock: every deadline differs", time.Millisecond},
		{"still clock: every deadline the same", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
				clock := fakeclock.New(t0)
				h := mk(hub.Config{Clock: clock})
				for i := range others { // current deadlines, after the rewrites' last one
					must(h.Set(keyN(i), []byte(`1`), hub.Cond{}, hub.WriteOptions{TTL: 2 * ttl}))
				}
				peak := 0
				for i := range rewrites {
					must(h.Set("/r", []byte(strconv.Itoa(i)), hub.Cond{}, hub.WriteOptions{TTL: ttl}))
					peak = max(peak, h.ExpiryLen())
					clock.Advance(tc.step)
				}
				if bound := 2 * (others + 1); peak > bound {
					t.Fatalf("the expiry queue reached %d deadlines for %d live ones, want at most %d", peak, others+1, bound)
				}
				final := must(h.Get("/r")).Expires
				sub := must(h.Subscribe("/", hub.SubscribeOptions{}))
				// Every stale deadline has passed, the final one not yet: nothing expires.
				clock.Advance(final.Sub(clock.Now()) - time.Nanosecond)
				if sub.Len() != 0 {
					t.Fatalf("%d events before the final deadline", sub.Len())
				}
				clock.Advance(time.Nanosecond)
				if e, _ := sub.Next(); e.Key != "/r" || !e.Deleted || e.Revision != rewrites {
					t.Fatalf("at the final deadline: %+v, want the delete of /r", e)
				}
				if sub.Len() != 0 || h.Len() != others {
					t.Fatalf("%d more events, %d keys left; want none and %d", sub.Len(), h.Len(), others)
				}
				clock.Advance(2 * ttl)
				for range others {
					if e, _ := sub.Next(); !e.Deleted {
						t.Fatalf("unexpected %+v", e)
					}
				}
				if h.Len() != 0 || h.ExpiryLen() != 0 {
					t.Fatalf("%d keys and %d deadlines left after every TTL", h.Len(), h.ExpiryLen())
				}
			})
		})
	}
}

func keyN(i int) string { return fmt.Sprintf("/k/%05d", i) }
