package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net"
	"strings"
	"testing"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// watching pulls a watch's events one at a time.
type watching struct {
	t    *testing.T
	next func() (client.Event, error, bool)
	stop func()
}

func watch(t *testing.T, c *client.Client, ctx context.Context, path string, opts client.WatchOptions) *watching {
	t.Helper()
	next, stop := iter.Pull2(c.Watch(ctx, path, opts))
	t.Cleanup(stop)
	return &watching{t: t, next: next, stop: stop}
}

// event returns the next event; an error fails the test.
func (w *watching) event() client.Event {
	w.t.Helper()
	ev, err, ok := w.next()
	if !ok || err != nil {
		w.t.Fatalf("the watch ended: %v", err)
	}
	return ev
}

// expect reads events and compares them, written as "set /k=v", "snap /k=v", "delete /k",
// "reset", "ready", with "..." skipping ready events.
func (w *watching) expect(want ...string) {
	w.t.Helper()
	for _, s := range want {
		ev := w.event()
		if got := describe(ev); got != s {
			w.t.Fatalf("got event %q (%+v), want %q", got, ev, s)
		}
	}
}

func describe(ev client.Event) string {
	switch {
	case ev.Type == client.EventSet && ev.Snapshot:
		return fmt.Sprintf("snap %s=%s", ev.Key, ev.Value)
	case ev.Type == client.EventSet:
		return fmt.Sprintf("set %s=%s", ev.Key, ev.Value)
	case ev.Type == client.EventDelete:
		return "delete " + ev.Key
	}
	return string(ev.Type)
}

func TestWatch(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	c.Set(ctx, "/room/1/ann", map[string]int{"x": 1})
	c.Set(ctx, "/room/1/bob", map[string]int{"x": 2})
	c.Set(ctx, "/room/2/cy", 0)

	w := watch(t, c, ctx, "/room/1/", client.WatchOptions{Snapshot: true})
	w.expect(`snap /room/1/ann={"x":1}`, `snap /room/1/bob={"x":2}`, "ready")
	r, _ := c.Set(ctx, "/room/1/ann", map[string]int{"x": 3})
	c.Set(ctx, "/room/2/cy", 1) // outside the path
	c.Delete(ctx, "/room/1/bob")
	ev := w.event()
	if ev.Type != client.EventSet || ev.Key != "/room/1/ann" || string(ev.Value) != `{"x":3}` || ev.Revision != 1 || ev.Seq != r.Seq ||
		ev.Snapshot || ev.Position != fmt.Sprintf("/room/1/ann:1:%d", r.Seq) {
		t.Fatalf("the set event: %+v", ev)
	}
	ev = w.event()
	if ev.Type != client.EventDelete || ev.Key != "/room/1/bob" || ev.Revision != 1 || ev.Value != nil {
		t.Fatalf("the delete event: %+v", ev)
	}

	// A watch of one key, without a snapshot: ready first, then its changes.
	k := watch(t, c, ctx, "/room/1/ann", client.WatchOptions{})
	if ev := k.event(); ev.Type != client.EventReady || ev.Seq == 0 {
		t.Fatalf("the first event: %+v, want ready", ev)
	}
	c.Set(ctx, "/room/1/ann", 4)
	k.expect("set /room/1/ann=4")
}

// TestWatchResumesAfterDisconnect: changes made while the connection is down are delivered once
// it is back, each exactly once, in order.
func TestWatchResumesAfterDisconnect(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	p := newProxy(t, ts.srv.Listener.Addr().String())
	direct := newClient(t, ts.URL)
	c := newClient(t, p.URL())
	ctx := testContext(t)

	w := watch(t, c, ctx, "/room/", client.WatchOptions{})
	w.expect("ready")
	direct.Set(ctx, "/room/a", 1)
	w.expect("set /room/a=1")
	for round := 2; round <= 4; round++ {
		p.SetDown(true)
		direct.Set(ctx, "/room/a", round)
		direct.Set(ctx, "/room/b", round)
		p.SetDown(false)
		w.expect(fmt.Sprintf("set /room/a=%d", round), fmt.Sprintf("set /room/b=%d", round), "ready")
	}
	// A cut without anything missed: only ready again, then live changes.
	p.Cut()
	w.expect("ready")
	direct.Delete(ctx, "/room/a")
	w.expect("delete /room/a")
}

// TestWatchResumesAcrossRestart: a server restarted on its data directory; changes made before
// and after the restart while the watch was away are delivered exactly once.
func TestWatchResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *testServer {
		h, err := hub.Open(hub.Config{Logger: quiet}, hub.StoreConfig{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, h, web.Config{}, nil)
	}
	first := open()
	p := newProxy(t, first.srv.Listener.Addr().String())
	c := newClient(t, p.URL())
	ctx := testContext(t)

	w := watch(t, c, ctx, "/room/", client.WatchOptions{Snapshot: true})
	w.expect("ready")
	newClient(t, first.URL).Set(ctx, "/room/a", 1)
	w.expect("set /room/a=1")

	p.SetDown(true)
	newClient(t, first.URL).Set(ctx, "/room/b", 1) // before the restart, after the watch lost it
	first.Close()
	second := open()
	newClient(t, second.URL).Set(ctx, "/room/c", 1) // after the restart
	p.SetBackend(second.srv.Listener.Addr().String())
	p.SetDown(false)

	// The restarted server rebuilt its history from its log: the watch resumes exactly.
	w.expect("set /room/b=1", "set /room/c=1", "ready")
	newClient(t, second.URL).Set(ctx, "/room/d", 1)
	w.expect("set /room/d=1")
}

// TestWatchReset: a position older than the server's history gives a reset, the current state
// and ready, then live changes.
func TestWatchReset(t *testing.T) {
	ts := newServer(t, hub.Config{HistorySize: 2}, web.Config{})
	p := newProxy(t, ts.srv.Listener.Addr().String())
	direct := newClient(t, ts.URL)
	c := newClient(t, p.URL())
	ctx := testContext(t)
	w := watch(t, c, ctx, "/r/", client.WatchOptions{})
	w.expect("ready")
	direct.Set(ctx, "/r/a", 0)
	w.expect("set /r/a=0")
	p.SetDown(true)
	for i := 1; i <= 5; i++ {
		direct.Set(ctx, "/r/a", i)
	}
	direct.Set(ctx, "/r/b", 0)
	p.SetDown(false)
	w.expect("reset", "snap /r/a=5", "snap /r/b=0", "ready")
	direct.Set(ctx, "/r/b", 1)
	w.expect("set /r/b=1")
}

// TestWatchSince: a position kept from one watch resumes in another.
func TestWatchSince(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	first := watch(t, c, ctx, "/s/", client.WatchOptions{})
	first.expect("ready")
	c.Set(ctx, "/s/a", 1)
	pos := first.event().Position
	first.stop()
	c.Set(ctx, "/s/a", 2)
	c.Set(ctx, "/s/b", 1)
	second := watch(t, c, ctx, "/s/", client.WatchOptions{Since: pos})
	second.expect("set /s/a=2", "set /s/b=1", "ready")

	bad := watch(t, c, ctx, "/s/", client.WatchOptions{Since: "nonsense"})
	if _, err, _ := bad.next(); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a malformed Since: %v, want a 400", err)
	}
}

// TestWatchEnds: a refused token ends the watch with its error; so does the context.
func TestWatchEnds(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	anon, _ := client.New(ts.URL)
	ctx := testContext(t)
	w := watch(t, anon, ctx, "/x/", client.WatchOptions{})
	if _, err, ok := w.next(); !ok || !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("without a token: %v, want ErrUnauthorized", err)
	}
	if _, _, ok := w.next(); ok {
		t.Fatal("the watch went on after its error")
	}

	cctx, cancel := context.WithCancel(ctx)
	w = watch(t, newClient(t, ts.URL), cctx, "/x/", client.WatchOptions{})
	w.expect("ready")
	cancel()
	if _, err, ok := w.next(); !ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v, want context.Canceled", err)
	}
}

// TestWatchServerGone: a server that is away is retried until it answers.
func TestWatchServerGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	c := newClient(t, "http://"+addr)
	ctx := testContext(t)
	w := watch(t, c, ctx, "/x/", client.WatchOptions{})
	got := make(chan client.Event, 1)
	go func() {
		ev, _, _ := w.next()
		got <- ev
	}()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	serve(t, hub.New(hub.Config{Logger: quiet}), web.Config{}, ln)
	if ev := <-got; ev.Type != client.EventReady {
		t.Fatalf("got %+v, want ready once the server is up", ev)
	}
}

func TestEventJSON(t *testing.T) {
	for _, tc := range []struct {
		ev   client.Event
		want string
	}{
		{client.Event{Type: client.EventSet, Key: "/a", Value: json.RawMessage(`{"x":1}`), Revision: 0, Seq: 4, Position: "/a:0:4"},
			`{"type":"set","key":"/a","value":{"x":1},"revision":0,"seq":4,"id":"/a:0:4"}`},
		{client.Event{Type: client.EventSet, Key: "/a", Value: json.RawMessage(`1`), Revision: 2, Seq: 4, Snapshot: true, Position: "/a:2:4:s"},
			`{"type":"set","key":"/a","value":1,"revision":2,"seq":4,"snapshot":true,"id":"/a:2:4:s"}`},
		{client.Event{Type: client.EventDelete, Key: "/a", Revision: 3, Seq: 5, Position: "/a:3:5"},
			`{"type":"delete","key":"/a","revision":3,"seq":5,"id":"/a:3:5"}`},
		{client.Event{Type: client.EventReset, Seq: 9}, `{"type":"reset","seq":9}`},
		{client.Event{Type: client.EventReady, Seq: 9, Position: "9"}, `{"type":"ready","seq":9,"id":"9"}`},
	} {
		b, err := json.Marshal(tc.ev)
		if err != nil || string(b) != tc.want {
			t.Errorf("%+v:\n got %s, %v\nwant %s", tc.ev, b, err, tc.want)
		}
		if !json.Valid(b) || strings.Contains(string(b), "\n") {
			t.Errorf("%s is not one line of JSON", b)
		}
	}
}
