package client_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestBroadcast: a broadcast reaches a watch that asked for broadcasts, between the changes and
// without moving its position, and a watch that did not ask never sees it; nothing is stored.
func TestBroadcast(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	with := watch(t, c, ctx, "/room/", client.WatchOptions{Broadcasts: true})
	without := watch(t, c, ctx, "/room/", client.WatchOptions{})
	with.expect("ready")
	without.expect("ready")

	c.Set(ctx, "/room/1/ann", 1)
	if err := c.Broadcast(ctx, "/room/1/cursor", map[string]int{"x": 10}); err != nil {
		t.Fatal(err)
	}
	if err := c.Broadcast(ctx, "/room/", json.RawMessage(`"hello"`)); err != nil {
		t.Fatal(err)
	}
	r, _ := c.Set(ctx, "/room/1/ann", 2)

	with.expect("set /room/1/ann=1")
	for _, want := range []struct{ path, msg string }{{"/room/1/cursor", `{"x":10}`}, {"/room/", `"hello"`}} {
		ev := with.event()
		if ev.Type != client.EventBroadcast || ev.Path != want.path || string(ev.Value) != want.msg || ev.Seq != 0 || ev.Position != "" {
			t.Fatalf("event %+v, want the broadcast %s to %s", ev, want.msg, want.path)
		}
		b, _ := json.Marshal(ev)
		if string(b) != `{"type":"broadcast","path":"`+want.path+`","msg":`+want.msg+`}` {
			t.Fatalf("the broadcast as JSON: %s", b)
		}
	}
	ev := with.event()
	if ev.Type != client.EventSet || ev.Seq != r.Seq || ev.Position != "/room/1/ann:1:"+strconv.FormatUint(r.Seq, 10) {
		t.Fatalf("after the broadcasts: %+v", ev)
	}
	without.expect("set /room/1/ann=1", "set /room/1/ann=2")
	if _, err := c.Get(ctx, "/room/1/cursor"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of the broadcast's path: %v, want ErrNotFound", err)
	}
}

// TestBroadcastsOnly: a watch with BroadcastsOnly gets ready, then the broadcasts to its path and
// below it, never a change; Since, Snapshot and Throttle are ignored.
func TestBroadcastsOnly(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	r, _ := c.Set(ctx, "/room/1/ann", 1)
	only := watch(t, c, ctx, "/room/", client.WatchOptions{BroadcastsOnly: true, Since: "/room/1/ann:0:" + strconv.FormatUint(r.Seq-1, 10), Snapshot: true, Throttle: time.Second})
	only.expect("ready")
	c.Set(ctx, "/room/1/ann", 2)
	if err := c.Broadcast(ctx, "/room/1/cursor", map[string]int{"x": 10}); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "/room/2/bob", 1)
	if err := c.Broadcast(ctx, "/room/", json.RawMessage(`"end"`)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ path, msg string }{{"/room/1/cursor", `{"x":10}`}, {"/room/", `"end"`}} {
		if ev := only.event(); ev.Type != client.EventBroadcast || ev.Path != want.path || string(ev.Value) != want.msg {
			t.Fatalf("event %+v, want the broadcast %s to %s and no change", ev, want.msg, want.path)
		}
	}
}

// TestBroadcastErrors: the server's refusals arrive as the sentinels: a path the token may not
// broadcast to, a message over the size limit, a client over the rate.
func TestBroadcastErrors(t *testing.T) {
	clock := fakeclock.New(time.Now())
	ts := newServer(t, hub.Config{Clock: clock, Limits: hub.Limits{MaxBroadcastBytes: 100}},
		web.Config{Clock: clock, Limits: web.Limits{BroadcastRate: 1, BroadcastBurst: 2}})
	ctx := testContext(t)
	reader := newClient(t, ts.URL, client.WithToken(client.StaticToken(jwtToken(t, "rob", map[string][]string{"read": {"/"}}))))
	if err := reader.Broadcast(ctx, "/room/1", 1); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a reader broadcasts: %v, want ErrForbidden", err)
	}
	sender := newClient(t, ts.URL, client.WithToken(client.StaticToken(jwtToken(t, "sam", map[string][]string{"broadcast": {"/room/"}}))))
	if err := sender.Broadcast(ctx, "/room/1", strings.Repeat("x", 100)); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("a message over the limit: %v, want ErrTooLarge", err)
	}
	// The refused message took one of the burst's two (the rate is counted before the body is
	// read); this one takes the other.
	if err := sender.Broadcast(ctx, "/room/1", 1); err != nil {
		t.Fatal(err)
	}
	if err := sender.Broadcast(ctx, "/room/1", 2); !errors.Is(err, client.ErrTooManyRequests) {
		t.Fatalf("over the rate: %v, want ErrTooManyRequests", err)
	}
	if err := sender.Broadcast(ctx, "room", 1); err == nil {
		t.Fatal("a path without / was sent")
	}
}
