package client_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestSessionPresence: a session's ephemeral keys show its presence (the token's subject and the
// connection id Conn tells) in Get and List; its on-disconnect writes are made once it has
// closed and the grace period has passed, and the watch sees who left and why.
func TestSessionPresence(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	const grace = 10 * time.Second
	ts := newServer(t, hub.Config{Clock: clock, EphemeralGrace: grace}, web.Config{})
	admin := newClient(t, ts.URL, client.WithToken(client.StaticToken(adminToken)))
	ann := newClient(t, ts.URL, client.WithToken(client.StaticToken(jwtToken(t, "ann", map[string][]string{"write": {"/room/"}}))))
	ctx := testContext(t)
	w := watch(t, admin, ctx, "/room/1/", client.WatchOptions{})
	w.expect("ready")

	s, err := ann.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := s.Conn()
	if len(conn) != 16 {
		t.Fatalf("Conn %q: want the connection's id", conn)
	}
	if _, err := s.Set(ctx, "/room/1/ann", "here"); err != nil {
		t.Fatal(err)
	}
	w.expect(`set /room/1/ann="here"`)
	want := fmt.Sprint(&client.Presence{Sub: "ann", Conn: conn})
	if e, err := admin.Get(ctx, "/room/1/ann"); err != nil || fmt.Sprint(e.Presence) != want {
		t.Fatalf("Get: %+v %v, want presence %s", e, err, want)
	}
	for e, err := range admin.List(ctx, "/room/1/", client.ListOptions{}) {
		if err != nil || fmt.Sprint(e.Presence) != want {
			t.Fatalf("List: %+v %v, want presence %s", e, err, want)
		}
	}
	if err := s.OnDisconnect(ctx, "/room/1/status", map[string]string{"ann": "offline"}); err != nil {
		t.Fatal(err)
	}
	if err := s.OnDisconnectDelete(ctx, "/room/1/typing"); err != nil {
		t.Fatal(err)
	}
	if err := s.OnDisconnect(ctx, "/room/1/zzz", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelOnDisconnect(ctx, "/room/1/zzz"); err != nil {
		t.Fatal(err)
	}
	if err := s.OnDisconnect(ctx, "/elsewhere", 1); err == nil {
		t.Fatal("an on-disconnect write without the grant was registered")
	}
	admin.Set(ctx, "/room/1/typing", true)
	w.expect("set /room/1/typing=true")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitSockets(t, ts, 0)
	clock.Advance(grace)
	for _, key := range []string{"/room/1/ann", "/room/1/status", "/room/1/typing"} {
		ev := w.event()
		if ev.Key != key {
			t.Fatalf("event %+v, want one of %s", ev, key)
		}
		switch key {
		case "/room/1/ann":
			if ev.Type != client.EventDelete || fmt.Sprint(ev.Presence) != want || ev.Reason != "closed" {
				t.Fatalf("ann's delete %+v: want presence %s, reason closed", ev, want)
			}
		case "/room/1/status":
			if ev.Type != client.EventSet || string(ev.Value) != `{"ann":"offline"}` {
				t.Fatalf("the on-disconnect set %+v", ev)
			}
		case "/room/1/typing":
			if ev.Type != client.EventDelete || ev.Reason != "closed" || ev.Presence != nil {
				t.Fatalf("the on-disconnect delete %+v: want reason closed", ev)
			}
		}
	}
	admin.Set(ctx, "/room/1/marker", 1)
	w.expect("set /room/1/marker=1") // nothing of the cancelled write
}

// TestSessionRegistersAgain: after its connection drops, a session registers its on-disconnect
// writes again over the new connection, which replaces the old connection's registration: the
// drop does not make the write. Closing the session then does.
func TestSessionRegistersAgain(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	const grace = 10 * time.Second
	ts := newServer(t, hub.Config{Clock: clock, EphemeralGrace: grace}, web.Config{})
	p := newProxy(t, ts.srv.Listener.Addr().String())
	admin := newClient(t, ts.URL, client.WithToken(client.StaticToken(adminToken)))
	ctx := testContext(t)
	w := watch(t, admin, ctx, "/room/1/", client.WatchOptions{})
	w.expect("ready")
	s, err := newClient(t, p.URL(), client.WithToken(client.StaticToken(adminToken))).OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Conn()
	s.OnDisconnect(ctx, "/room/1/status", "offline")
	s.Set(ctx, "/room/1/ann", "here")
	w.expect(`set /room/1/ann="here"`)

	p.Cut()
	w.expect(`set /room/1/ann="here"`) // written again, after the registration, over the new connection
	waitSockets(t, ts, 1)              // the old connection has ended: its grace period runs
	if s.Conn() == first || s.Conn() == "" {
		t.Fatalf("Conn %q after reconnecting, was %q", s.Conn(), first)
	}
	clock.Advance(grace) // the old connection's grace period ends: its registration was replaced
	admin.Set(ctx, "/room/1/marker", 1)
	w.expect("set /room/1/marker=1")

	s.Close()
	waitSockets(t, ts, 0)
	clock.Advance(grace)
	got := map[string]client.Event{}
	for range 2 {
		ev := w.event()
		got[ev.Key] = ev
	}
	if ev := got["/room/1/status"]; ev.Type != client.EventSet || string(ev.Value) != `"offline"` {
		t.Fatalf("the on-disconnect write: %+v", ev)
	}
}

// waitSockets waits until the server has n WebSockets open (statehub_open_streams{transport="ws"}
// in /.metrics): every other connection has ended and its session's grace period runs. Its
// deadline only guards against a hang.
func waitSockets(t *testing.T, ts *testServer, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		req, _ := http.NewRequest("GET", ts.URL+"/.metrics", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), fmt.Sprintf("statehub_open_streams{transport=\"ws\"} %d\n", n)) {
			return
		}
	}
	t.Fatalf("not %d WebSockets open", n)
}
