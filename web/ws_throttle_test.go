package web

import (
	"strconv"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// wsCollect reads the connection's messages in the background (after setup, nothing else may
// read it); the channel closes when the connection ends.
func (c *wsClient) collect() <-chan wsMsg {
	ch := make(chan wsMsg, 4096)
	pending := c.events
	c.events = nil
	go func() {
		defer close(ch)
		for _, m := range pending {
			ch <- m
		}
		for {
			m, err := c.readMsg()
			if err != nil {
				return
			}
			ch <- m
		}
	}()
	return ch
}

func wsCheckOrdered(t *testing.T, got []wsMsg) {
	t.Helper()
	var last uint64
	for _, m := range got {
		if *m.Seq < last {
			t.Fatalf("event %s after seq %d", m.raw, last)
		}
		last = *m.Seq
	}
}

// TestWSThrottle: the WebSocket twin of TestSSEThrottle and TestSSEThrottleSubtree, two subs of
// one connection, throttled and not, and a subtree sub.
func TestWSThrottle(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Now())
	ts := newWSServer(t, hub.Config{}, Config{Clock: clock}, false)
	w := ts.dial(t)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/t/k", "throttle": "250ms"})
	slow := c.id
	c.must(m{"op": "sub", "path": "/t/k"})
	all := c.id
	c.must(m{"op": "sub", "path": "/s/", "throttle": "100ms"})
	tree := c.id
	c.expectEvents(slow, "ready")
	c.expectEvents(all, "ready")
	c.expectEvents(tree, "ready")
	for _, bad := range []string{"1ms", "x", "61s"} {
		if a := c.call(m{"op": "sub", "path": "/t/", "throttle": bad}); a.OK || a.Code != "invalid_throttle" {
			t.Fatalf("throttle %s: %s", bad, a.raw)
		}
	}
	ch := c.collect()

	keys := []string{"/s/a", "/s/b", "/s/c"}
	want := map[string]string{}
	for i := 1; i <= 1000; i++ {
		w.must(m{"op": "set", "key": "/t/k", "value": i})
		if i%10 == 0 {
			k := keys[i/10%len(keys)]
			w.must(m{"op": "set", "key": k, "value": i})
			want[k] = strconv.Itoa(i)
		}
		if i%25 == 0 {
			clock.Advance(25 * time.Millisecond)
		}
	}
	// Read everything, advancing the clock whenever nothing arrives, until each sub has its
	// final state.
	bySub := map[string][]wsMsg{}
	slowDone := func() bool {
		g := bySub[strconv.Itoa(slow)]
		return len(g) > 0 && string(g[len(g)-1].Value) == "1000"
	}
	state := map[string]string{}
	treeDone := func() bool {
		for k, v := range want {
			if state[k] != v {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(bySub[strconv.Itoa(all)]) < 1000 || !slowDone() || !treeDone() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d unthrottled events, %d throttled, subtree state %v, want %v",
				len(bySub[strconv.Itoa(all)]), len(bySub[strconv.Itoa(slow)]), state, want)
		}
		select {
		case msg, ok := <-ch:
			if !ok {
				t.Fatal("the connection ended")
			}
			bySub[string(msg.Sub)] = append(bySub[string(msg.Sub)], msg)
			if string(msg.Sub) == strconv.Itoa(tree) {
				state[msg.Key] = string(msg.Value)
			}
		case <-time.After(20 * time.Millisecond):
			clock.Advance(50 * time.Millisecond)
		}
	}
	for i, msg := range bySub[strconv.Itoa(all)] {
		if string(msg.Value) != strconv.Itoa(i+1) {
			t.Fatalf("unthrottled event %d: %s", i, msg.raw)
		}
	}
	got := bySub[strconv.Itoa(slow)]
	t.Logf("throttled: %d events", len(got))
	if len(got) > 7 {
		t.Fatalf("throttled sub got %d events, want about 5", len(got))
	}
	wsCheckOrdered(t, got)
	if last := got[len(got)-1]; *last.Revision != 999 {
		t.Fatalf("last event %s, want revision 999", last.raw)
	}
	treeGot := bySub[strconv.Itoa(tree)]
	wsCheckOrdered(t, treeGot)
	if len(treeGot) > 60 {
		t.Fatalf("subtree sub got %d events for 100 changes", len(treeGot))
	}

	// Resuming from the throttled sub's last position replays nothing.
	r := ts.dial(t)
	r.must(m{"op": "sub", "path": "/t/k", "throttle": "250ms", "since": got[len(got)-1].pos()})
	r.expectEvents(r.id, "ready")
	w.must(m{"op": "set", "key": "/t/k", "value": "after"})
	r.expectEvents(r.id, `set /t/k "after"@1000`)
}
