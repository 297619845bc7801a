package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestWSBroadcast: the broadcast op is answered ok and reaches the subs of its path and of the
// prefixes above it, on every connection, as {"sub","type":"broadcast","path","msg"} without a
// seq, between the changes; a sub resumed from before it replays the changes only.
func TestWSBroadcast(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	a, b := ts.dial(t), ts.dial(t)
	a.must(m{"op": "sub", "path": "/room/"})
	a.expectEvents(1, "ready")
	b.must(m{"op": "sub", "path": "/room/1/c"}) // id 1 on b too
	b.expectEvents(1, "ready")
	b.must(m{"op": "sub", "path": "/other"}) // id 2
	b.expectEvents(2, "ready")

	a.must(m{"op": "set", "key": "/room/1/c", "value": 1})
	ans := a.must(m{"op": "broadcast", "path": "/room/1/c", "msg": json.RawMessage(`{ "x": [1, "é"] }`)})
	if ans.raw != `{"id":3,"ok":true}` {
		t.Fatalf("answer %s", ans.raw)
	}
	a.must(m{"op": "set", "key": "/room/1/c", "value": 2})
	const want = `{"sub":1,"type":"broadcast","path":"/room/1/c","msg":{"x":[1,"é"]}}`
	for _, c := range []*wsClient{a, b} {
		got := c.expectEvents(1, "set /room/1/c 1@0", want, "set /room/1/c 2@1")
		if got[1].raw != want || got[1].Seq != nil {
			t.Fatalf("broadcast event %s, want %s", got[1].raw, want)
		}
	}
	a.must(m{"op": "set", "key": "/other", "value": 1})
	b.expectEvents(2, "set /other 1@0") // the broadcast to another path came before it, and not here

	// A resumed sub replays the changes only.
	a.must(m{"op": "sub", "path": "/room/", "since": "1"}) // id 6
	a.expectEvents(6, "set /room/1/c 2@1", "ready")

	// Bad broadcasts are answered with the HTTP API's codes and statuses.
	for _, tc := range []struct {
		req    m
		code   string
		status int
	}{
		{m{"op": "broadcast", "path": "/room/1/c"}, "invalid_json", 400},
		{m{"op": "broadcast", "path": "/room//c", "msg": 1}, "invalid_key", 400},
		{m{"op": "broadcast", "path": "/room/1/c", "msg": strings.Repeat("x", hub.DefaultMaxBroadcastBytes)}, "too_large", 413},
		{m{"op": "broadcast", "path": "/", "msg": 1}, "unauthorized", 401},
	} {
		if ans := a.call(tc.req); ans.OK || ans.Code != tc.code || ans.Status != tc.status {
			t.Fatalf("%v: %s, want %s %d", tc.req["path"], ans.raw, tc.code, tc.status)
		}
	}
}

// TestWSBroadcastsOnly: a sub with "broadcasts": true is answered with its seq, then gets ready
// and the broadcasts to its path and below it, never a change; since or snapshot with it is 400.
func TestWSBroadcastsOnly(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	a, b := ts.dial(t), ts.dial(t)
	b.must(m{"op": "set", "key": "/room/1/c", "value": 1})
	a.must(m{"op": "sub", "path": "/room/", "broadcasts": true}) // id 1
	a.expectEvents(1, "ready")
	b.must(m{"op": "sub", "path": "/room/"}) // id 2: every change and broadcast, for comparison
	b.expectEvents(2, "ready")
	b.must(m{"op": "set", "key": "/room/1/c", "value": 2})
	b.must(m{"op": "broadcast", "path": "/room/1/c", "msg": 1})
	b.must(m{"op": "set", "key": "/room/2/c", "value": 1})
	b.must(m{"op": "broadcast", "path": "/room/", "msg": "end"})
	b.expectEvents(2, "set /room/1/c 2@1", `{"sub":2,"type":"broadcast","path":"/room/1/c","msg":1}`,
		"set /room/2/c 1@0", `{"sub":2,"type":"broadcast","path":"/room/","msg":"end"}`)
	a.expectEvents(1, `{"sub":1,"type":"broadcast","path":"/room/1/c","msg":1}`, `{"sub":1,"type":"broadcast","path":"/room/","msg":"end"}`)
	for _, req := range []m{
		{"op": "sub", "path": "/room/", "broadcasts": true, "since": "1"},
		{"op": "sub", "path": "/room/", "broadcasts": true, "snapshot": true},
	} {
		if ans := a.call(req); ans.OK || ans.Code != "bad_request" || ans.Status != 400 {
			t.Fatalf("%v: %s, want 400 bad_request", req, ans.raw)
		}
	}
}

// TestWSBroadcastRate: each connection has its own broadcast bucket: one over its rate is
// refused with 429 rate_limited, while another connection from the same address still sends.
func TestWSBroadcastRate(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := newWSServer(t, hub.Config{Clock: clock}, Config{Clock: clock, Limits: Limits{BroadcastRate: 1, BroadcastBurst: 2}}, false)
	a, b := ts.dial(t), ts.dial(t)
	bcast := m{"op": "broadcast", "path": "/r", "msg": 1}
	a.must(bcast)
	a.must(bcast)
	if ans := a.call(bcast); ans.OK || ans.Code != "rate_limited" || ans.Status != 429 || !strings.Contains(ans.Error, "retry after 1 s") {
		t.Fatalf("over the rate: %s", ans.raw)
	}
	b.must(bcast)
	clock.Advance(time.Second)
	a.must(bcast)
}
