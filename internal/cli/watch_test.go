package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/cutproxy"
)

// event decodes one line of watch.
func event(t *testing.T, line string) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("watch printed %q, not JSON: %v", line, err)
	}
	return ev
}

// TestWatch: one JSON line per event; across a disconnection (the proxy in front of the server
// cuts it and refuses connections while changes are made) every change is printed once; -count
// ends the command.
func TestWatch(t *testing.T) {
	ts := newServer(t, hub.Config{})
	p, err := cutproxy.New(strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := ts.client(t)
	ctx := t.Context()
	c.Set(ctx, "/room/1/ann", map[string]int{"x": 1})

	w := start(t, env(p.URL()), "watch", "/room/", "-snapshot", "-count", "4")
	if ev := event(t, w.line()); ev["type"] != "set" || ev["key"] != "/room/1/ann" || ev["snapshot"] != true {
		t.Fatalf("the snapshot entry: %v", ev)
	}
	if ev := event(t, w.line()); ev["type"] != "ready" {
		t.Fatalf("after the snapshot: %v", ev)
	}
	c.Set(ctx, "/room/1/bob", "here")
	if line := w.line(); !strings.HasPrefix(line, `{"type":"set","key":"/room/1/bob","value":"here","revision":0,"seq":2,"id":"/room/1/bob:0:2"}`) {
		t.Fatalf("a change: %s", line)
	}

	p.SetDown(true)
	c.Set(ctx, "/room/1/ann", 2)
	c.Delete(ctx, "/room/1/bob")
	p.SetDown(false)
	if ev := event(t, w.line()); ev["type"] != "set" || ev["key"] != "/room/1/ann" || ev["value"] != 2.0 || ev["revision"] != 1.0 {
		t.Fatalf("the first change made while away: %v", ev)
	}
	if ev := event(t, w.line()); ev["type"] != "delete" || ev["key"] != "/room/1/bob" {
		t.Fatalf("the second change made while away: %v", ev)
	}
	if ev := event(t, w.line()); ev["type"] != "ready" {
		t.Fatalf("after the replay: %v", ev)
	}
	c.Set(ctx, "/room/2/cy", 1)
	if ev := event(t, w.line()); ev["key"] != "/room/2/cy" {
		t.Fatalf("the live change after the reconnection: %v", ev)
	}
	r := w.wait()
	if r.code != 0 || !strings.Contains(r.stderr, "reconnecting") {
		t.Fatalf("after -count 4: exit %d, stderr %q; want 0 and the reconnection noted", r.code, r.stderr)
	}
}

// TestWatchStops: an interrupt ends watch with status 0; a refused token with 1.
func TestWatchStops(t *testing.T) {
	ts := newServer(t, hub.Config{})
	w := start(t, env(ts.URL), "watch", "/room/")
	if ev := event(t, w.line()); ev["type"] != "ready" {
		t.Fatalf("first: %v", ev)
	}
	w.stop()
	if r := w.wait(); r.code != 0 {
		t.Fatalf("interrupted: exit %d, %s", r.code, r.stderr)
	}
	if r := run(t, []string{"STATEHUB_URL=" + ts.URL, "STATEHUB_TOKEN=wrong-token"}, "", "watch", "/room/"); r.code != 1 || !strings.Contains(r.stderr, "unauthorized") {
		t.Fatalf("a refused token: %+v", r)
	}
}
