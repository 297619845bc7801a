package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestOnDisconnectAfterKill: the single binary killed with SIGKILL while a WebSocket holds an
// ephemeral key and an on-disconnect write. After the restart, one grace period later, the key is
// deleted and the write made, both with reason node_lost, as a subscriber of the restarted server
// sees; a write the connection cancelled before the kill is not made.
func TestOnDisconnectAfterKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base, cmd, p := startWith(t, "-data", dir, "-ephemeral-grace", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, err := dialWS(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for i, req := range []map[string]any{
		{"op": "set", "key": "/status/ann", "value": "online"},
		{"op": "set", "key": "/room/ann", "value": true, "ephemeral": true},
		{"op": "ondisconnect", "key": "/status/ann", "value": "offline"},
		{"op": "ondisconnect", "key": "/status/cancelled", "value": "offline"},
		{"op": "ondisconnect", "key": "/status/cancelled", "cancel": true},
	} {
		req["id"] = i + 1
		if err := wsSend(ctx, ws, req); err != nil {
			t.Fatal(err)
		}
		if msg, err := wsRead(ctx, ws); err != nil || !msg.OK {
			t.Fatalf("%v: %+v %v", req, msg, err)
		}
	}
	cmd.Process.Kill() // this test's own process, by its PID
	<-p.done

	base, _, _ = startWith(t, "-data", dir, "-ephemeral-grace", "3s")
	sub, err := dialWS(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.CloseNow()
	for i, path := range []string{"/status/", "/room/"} {
		if err := wsSend(ctx, sub, map[string]any{"op": "sub", "id": i + 1, "path": path}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]wsMessage{}
	for len(got) < 2 {
		msg, err := wsRead(ctx, sub)
		if err != nil {
			t.Fatalf("waiting for the writes of the killed connection: %v (got %v)", err, got)
		}
		if msg.Type == "set" || msg.Type == "delete" {
			got[msg.Key] = msg
		}
	}
	if m := got["/status/ann"]; m.Type != "set" || string(m.Value) != `"offline"` || m.Reason != "node_lost" {
		t.Fatalf("/status/ann: %+v, want the on-disconnect write with reason node_lost", m)
	}
	if m := got["/room/ann"]; m.Type != "delete" || m.Reason != "node_lost" {
		t.Fatalf("/room/ann: %+v, want its delete with reason node_lost", m)
	}
	res, err := http.Get(base + "/status/cancelled")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /status/cancelled: %d, want 404: the cancelled write was made", res.StatusCode)
	}
}
