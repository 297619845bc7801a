package web_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// TestSSEConcurrentResume is the stream guarantee over real HTTP: many subscribers on overlapping
// subtrees are cut off at random moments and reconnect with Last-Event-ID set to the last id they
// saw, while writers set, delete, delete subtrees and increment. In the end every subscriber has
// seen every change of its path exactly once, in order. Choices come from fixed seeds; the
// interleaving is whatever the scheduler makes of them.
func TestSSEConcurrentResume(t *testing.T) {
	t.Parallel()
	const (
		subscribers = 40
		writers     = 4
		opsPerWrite = 60
	)
	ts := newServer(t, hub.Config{QueueSize: 1 << 14}, web.Config{})

	// The oracle: every event, straight from the hub.
	oracle, err := ts.hub.Subscribe("/", hub.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer oracle.Close()

	paths := []string{"/c/", "/c/a/", "/c/b/", "/c/a/d/", "/c/a/x", "/c/b/n", "/c/a/d/y"}
	keys := []string{"/c/a/x", "/c/a/y", "/c/a/d/y", "/c/a/d/z", "/c/b/x", "/c/b/y"}
	counters := []string{"/c/a/n", "/c/b/n", "/c/a/d/n"}
	prefixes := []string{"/c/a/", "/c/b/", "/c/a/d/"}

	type sub struct {
		path   string
		start  uint64
		events []event
		conns  int
		begun  bool // the first ready has been seen (a connection may be cut before its ready)
	}
	subs := make([]*sub, subscribers)
	var finalSeq atomic.Uint64 // set when the writers are done
	var wg sync.WaitGroup
	started := make(chan struct{}, subscribers)
	ctx, cancelAll := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelAll()

	for i := range subs {
		s := &sub{path: paths[i%len(paths)]}
		subs[i] = s
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		wg.Go(func() {
			last := ""
			for {
				s.conns++
				cctx, cancel := context.WithCancel(ctx)
				hdr := []string{}
				if last != "" {
					hdr = append(hdr, "Last-Event-ID", last)
				}
				st, r, err := ts.openStream(cctx, s.path, hdr...)
				if err != nil {
					cancel()
					if ctx.Err() != nil {
						t.Errorf("subscriber %d: %v", i, err)
						return
					}
					continue
				}
				if r != nil {
					cancel()
					t.Errorf("subscriber %d: %d %s", i, r.status, r.body)
					return
				}
				// Cut the connection after a random number of events or a random time.
				budget := rng.IntN(40) + 1
				timer := time.AfterFunc(time.Duration(rng.IntN(50)+10)*time.Millisecond, cancel)
				done := false
				for budget > 0 {
					ev, err := st.read()
					if err != nil {
						break // cut off
					}
					if ev.comment != "" || ev.event == "" && ev.data == "" {
						continue
					}
					switch ev.event {
					case "ready":
						seq, _ := strconv.ParseUint(ev.id, 10, 64)
						if !s.begun {
							s.begun = true
							s.start = seq
							started <- struct{}{}
						}
						if f := finalSeq.Load(); f != 0 && seq >= f {
							done = true
						}
					case "", "delete":
						s.events = append(s.events, ev)
						budget--
					default:
						t.Errorf("subscriber %d: unexpected %+v", i, ev)
						done = true
					}
					last = ev.id
					if done {
						break
					}
				}
				timer.Stop()
				cancel()
				st.close()
				if done || ctx.Err() != nil {
					return
				}
			}
		})
	}
	for range subscribers {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("subscribers did not start")
		}
	}

	began := time.Now()
	var wwg sync.WaitGroup
	for w := range writers {
		rng := rand.New(rand.NewPCG(uint64(1000+w), 2))
		wwg.Go(func() {
			for n := range opsPerWrite {
				var r response
				switch op := rng.IntN(10); {
				case op < 5:
					k := keys[rng.IntN(len(keys))]
					r = ts.do(t, "POST", k, fmt.Sprintf(`{"w":%d,"n":%d}`, w, n))
				case op < 7:
					r = ts.do(t, "POST", counters[rng.IntN(len(counters))]+"?incr="+strconv.Itoa(rng.IntN(9)-4), "")
				case op < 9:
					r = ts.do(t, "DELETE", keys[rng.IntN(len(keys))], "")
				default:
					r = ts.do(t, "DELETE", prefixes[rng.IntN(len(prefixes))], "")
				}
				if r.status != http.StatusOK && r.status != http.StatusNotFound {
					t.Errorf("writer %d: %d %s", w, r.status, r.body)
				}
			}
		})
	}
	wwg.Wait()
	finalSeq.Store(ts.hub.Seq())
	wrote := time.Since(began)
	wg.Wait()
	t.Logf("writers took %v, subscribers %v more", wrote, time.Since(began)-wrote)
	if t.Failed() {
		return
	}

	var all []hub.Event
	for len(all) == 0 || all[len(all)-1].Seq < finalSeq.Load() {
		select {
		case <-oracle.Ready():
			events, _ := oracle.Take(nil)
			all = append(all, events...)
		case <-ctx.Done():
			t.Fatal("the oracle did not see every event")
		}
	}
	reconnects := 0
	for i, s := range subs {
		reconnects += s.conns - 1
		var want []hub.Event
		for _, e := range all {
			if e.Seq > s.start && hub.Covers(s.path, e.Key) {
				want = append(want, e)
			}
		}
		for j := 0; j < max(len(want), len(s.events)); j++ {
			var got, exp string
			if j < len(s.events) {
				ev := s.events[j]
				got = ev.event + " " + ev.id + " " + ev.data
			}
			if j < len(want) {
				e := want[j]
				kind, data := "", string(e.Value)
				if e.Deleted {
					kind, data = "delete", "null"
				}
				exp = kind + " " + e.ID() + " " + data
			}
			if got != exp {
				t.Fatalf("subscriber %d (%s): event %d is %q, want %q (%d events, want %d)",
					i, s.path, j, got, exp, len(s.events), len(want))
			}
		}
	}
	t.Logf("%d events, %d subscribers, %d reconnects", len(all), subscribers, reconnects)
}
