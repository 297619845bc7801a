package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// TestSessionEphemeralKeys: a session's keys are deleted once it has closed and the grace period
// has passed (here 1 ms); a plain write makes a key permanent.
func TestSessionEphemeralKeys(t *testing.T) {
	ts := newServer(t, hub.Config{EphemeralGrace: time.Millisecond}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	w := watch(t, c, ctx, "/room/1/", client.WatchOptions{})
	w.expect("ready")

	s, err := c.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Set(ctx, "/room/1/ann", map[string]bool{"online": true})
	if err != nil || r.Key != "/room/1/ann" || r.Revision != 0 || r.Seq == 0 {
		t.Fatalf("Set: %+v, %v", r, err)
	}
	s.Set(ctx, "/room/1/bob", 1)
	s.Set(ctx, "/room/1/cy", 1)
	w.expect(`set /room/1/ann={"online":true}`, "set /room/1/bob=1", "set /room/1/cy=1")
	if err := s.Delete(ctx, "/room/1/bob"); err != nil {
		t.Fatal(err)
	}
	w.expect("delete /room/1/bob")
	if err := s.Delete(ctx, "/room/1/bob"); err != nil {
		t.Fatalf("deleting a deleted key: %v", err)
	}
	c.Set(ctx, "/room/1/cy", 2) // a plain write: no longer the session's
	w.expect("set /room/1/cy=2")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.expect("delete /room/1/ann")
	if _, err := c.Get(ctx, "/room/1/cy"); err != nil {
		t.Fatalf("the permanent key: %v", err)
	}
	if _, err := s.Set(ctx, "/room/1/dan", 1); !errors.Is(err, client.ErrSessionClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
}

// TestSessionReconnects: when the connection drops, the session reconnects and writes its keys
// again, so they outlive the old connection; it goes on serving calls.
func TestSessionReconnects(t *testing.T) {
	ts := newServer(t, hub.Config{EphemeralGrace: time.Hour}, web.Config{})
	p := newProxy(t, ts.srv.Listener.Addr().String())
	direct := newClient(t, ts.URL)
	ctx := testContext(t)
	w := watch(t, direct, ctx, "/room/1/", client.WatchOptions{})
	w.expect("ready")
	s, err := newClient(t, p.URL()).OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Set(ctx, "/room/1/ann", "here")
	w.expect(`set /room/1/ann="here"`)

	p.Cut()
	ev := w.event() // written again over the new connection
	if ev.Type != client.EventSet || ev.Key != "/room/1/ann" || string(ev.Value) != `"here"` || ev.Revision != 1 {
		t.Fatalf("after the cut: %+v, want ann written again", ev)
	}
	if _, err := s.Set(ctx, "/room/1/bob", "here"); err != nil {
		t.Fatal(err)
	}
	w.expect(`set /room/1/bob="here"`)
}

func TestSessionErrors(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	ctx := testContext(t)
	reader := newClient(t, ts.URL, client.WithToken(client.StaticToken(jwtToken(t, "ann", map[string][]string{"read": {"/"}}))))
	s, err := reader.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var e *client.Error
	if _, err := s.Set(ctx, "/room/1/ann", 1); !errors.Is(err, client.ErrForbidden) || !errors.As(err, &e) || e.Status != 403 {
		t.Fatalf("a set without the grant: %#v", err)
	}
	bad := newClient(t, ts.URL, client.WithToken(client.StaticToken("not-a-token")))
	if _, err := bad.OpenSession(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a refused token: %v", err)
	}
}
