package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// collect reads a stream's events in the background; the channel closes when the stream ends.
func (s *sseStream) collect() <-chan event {
	ch := make(chan event, 4096)
	go func() {
		defer close(ch)
		for {
			ev, err := s.read()
			if err != nil {
				return
			}
			if ev.comment != "" || ev.retry != "" && ev.event == "" && ev.data == "" {
				continue
			}
			ch <- ev
		}
	}()
	return ch
}

// seqOf is the seq of an event id "key:revision:seq".
func seqOf(t *testing.T, id string) uint64 {
	t.Helper()
	f := strings.Split(id, ":")
	n, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return n
}

// drainThrottled advances the clock a step at a time, reading what arrives, until done says the
// events read so far are complete; it returns them.
func drainThrottled(t *testing.T, clock *fakeclock.Clock, ch <-chan event, got []event, done func([]event) bool) []event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done(got) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; got %d events, last %+v", len(got), got[len(got)-1:])
		}
		clock.Advance(250 * time.Millisecond)
		wait := time.After(20 * time.Millisecond)
	read:
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					t.Fatal("the stream ended")
				}
				got = append(got, ev)
			case <-wait:
				break read
			}
		}
	}
	return got
}

// checkOrdered: positions never go backwards.
func checkOrdered(t *testing.T, got []event) {
	t.Helper()
	var last uint64
	for _, ev := range got {
		if s := seqOf(t, ev.id); s < last {
			t.Fatalf("event %s after seq %d", ev.id, last)
		} else {
			last = s
		}
	}
}

// TestSSEThrottle: 1,000 writes to one key, while the fake clock advances 1 s, reach a 250 ms
// subscriber as a handful of events ending with the last value, and an unthrottled one as all
// 1,000; resuming from the throttled stream's last id replays nothing.
func TestSSEThrottle(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Now())
	ts := newServer(t, hub.Config{}, web.Config{Clock: clock})
	slow := ts.subscribe(t, "/t/k?throttle=250ms", "")
	all := ts.subscribe(t, "/t/k", "")
	slow.expect(t, `ready 0 {"seq":0}`)
	all.expect(t, `ready 0 {"seq":0}`)
	slowCh, allCh := slow.collect(), all.collect()

	for i := 1; i <= 1000; i++ {
		if _, err := ts.hub.Set("/t/k", []byte(strconv.Itoa(i)), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if i%25 == 0 {
			clock.Advance(25 * time.Millisecond) // 1 s in 40 steps
		}
	}
	for i := 1; i <= 1000; i++ {
		ev := <-allCh
		if ev.data != strconv.Itoa(i) {
			t.Fatalf("unthrottled event %d: %+v", i, ev)
		}
	}
	got := drainThrottled(t, clock, slowCh, nil, func(got []event) bool {
		return len(got) > 0 && got[len(got)-1].data == "1000"
	})
	t.Logf("throttled: %d events", len(got))
	if len(got) > 7 {
		t.Fatalf("throttled subscriber got %d events, want about 5", len(got))
	}
	checkOrdered(t, got)
	last := got[len(got)-1]
	if last.id != "/t/k:999:1000" {
		t.Fatalf("last throttled event %+v, want the id of the last change", last)
	}
	clock.Advance(time.Second)
	select {
	case ev := <-slowCh:
		t.Fatalf("after the last value: %+v", ev)
	case <-time.After(20 * time.Millisecond):
	}

	// Resuming from the last id replays nothing: the stream had every change up to it.
	re := ts.subscribe(t, "/t/k?throttle=250ms", last.id)
	re.expect(t, `ready 1000 {"seq":1000}`)
	ts.must(t, "PUT", "/t/k", `"after"`)
	re.expect(t, `- /t/k:1000:1001 "after"`) // idle: the first change goes out at once
}

// TestSSEThrottleSubtree: a throttled subscriber of a subtree gets every key's final value,
// with positions in order, and resuming part-way converges to the same state.
func TestSSEThrottleSubtree(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Now())
	ts := newServer(t, hub.Config{}, web.Config{Clock: clock})
	s := ts.subscribe(t, "/s/?throttle=100ms", "")
	s.expect(t, `ready 0 {"seq":0}`)
	ch := s.collect()
	keys := []string{"/s/a", "/s/b", "/s/c/d", "/s/e"}
	want := map[string]string{}
	for i := 1; i <= 200; i++ {
		k := keys[i%len(keys)]
		if i%7 == 0 {
			k = keys[0] // a's last write comes late
		}
		v := strconv.Itoa(i)
		if _, err := ts.hub.Set(k, []byte(v), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		want[k] = v
		if i%20 == 0 {
			clock.Advance(10 * time.Millisecond)
		}
	}
	if _, err := ts.hub.Delete("/s/e", hub.Cond{}, hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want["/s/e"] = "null"
	state := func(got []event) map[string]string {
		m := map[string]string{}
		for _, ev := range got {
			m[ev.id[:strings.Index(ev.id, ":")]] = ev.data
		}
		return m
	}
	equal := func(a, b map[string]string) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	got := drainThrottled(t, clock, ch, nil, func(got []event) bool { return equal(state(got), want) })
	checkOrdered(t, got)
	if len(got) > 40 {
		t.Fatalf("%d events for 201 changes", len(got))
	}
	if ev := got[len(got)-1]; !strings.HasPrefix(ev.id, "/s/e:") || ev.event != "delete" {
		t.Fatalf("last event %+v, want the delete", ev)
	}

	// A resume from any id seen converges: its replay (coalesced) plus what was seen up to the id
	// is the final state.
	for _, cut := range []int{0, len(got) / 2} {
		r := ts.subscribe(t, "/s/?throttle=100ms", got[cut].id)
		seen := state(got[:cut+1])
		for {
			ev := r.next(t)
			if ev.event == "ready" {
				break
			}
			if seqOf(t, ev.id) <= seqOf(t, got[cut].id) {
				t.Fatalf("resume from %s replays %s", got[cut].id, ev.id)
			}
			seen[ev.id[:strings.Index(ev.id, ":")]] = ev.data
		}
		if !equal(seen, want) {
			t.Fatalf("resume from %s: %v, want %v", got[cut].id, seen, want)
		}
	}
}

func TestSSEThrottleInvalid(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	for _, q := range []string{"abc", "5ms", "2m", "-1s", "0"} {
		s, r, err := ts.openStream(context.Background(), "/t/?throttle="+q)
		if err != nil {
			t.Fatal(err)
		}
		if s != nil {
			s.close()
			t.Fatalf("throttle=%s: a stream", q)
		}
		if r.status != 400 || errorBody(t, *r).Code != "invalid_throttle" {
			t.Fatalf("throttle=%s: %d %s", q, r.status, r.body)
		}
	}
}
