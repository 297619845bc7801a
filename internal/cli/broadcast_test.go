package cli_test

import (
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
)

// TestBroadcast: broadcast sends a JSON message (an argument, stdin, or text with -string) that
// "watch -broadcasts" prints and a plain watch does not; nothing is stored; a message that is not
// JSON is refused before it is sent.
func TestBroadcast(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	with := start(t, e, "watch", "-broadcasts", "-count", "1", "/room/")
	without := start(t, e, "watch", "-count", "1", "/room/")
	for _, w := range []*started{with, without} {
		if ev := event(t, w.line()); ev["type"] != "ready" {
			t.Fatalf("first: %v", ev)
		}
	}
	must(t, e, "broadcast", "/room/1/cursor", `{"x": 10}`)
	if r := run(t, e, "typing\n", "broadcast", "-string", "/room/"); r.code != 0 {
		t.Fatalf("broadcast -string from stdin: %+v", r)
	}
	for _, want := range []string{`{"type":"broadcast","path":"/room/1/cursor","msg":{"x":10}}`, `{"type":"broadcast","path":"/room/","msg":"typing"}`} {
		if line := with.line(); line != want {
			t.Fatalf("watch -broadcasts printed %s, want %s", line, want)
		}
	}
	if r := run(t, e, "", "broadcast", "/room/1", "oops"); r.code != 1 || !strings.Contains(r.stderr, "-string") {
		t.Fatalf("a message that is not JSON: %+v", r)
	}
	if r := run(t, e, "", "get", "/room/1/cursor"); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("the broadcast's path was stored: %+v", r)
	}
	must(t, e, "set", "/room/1/ann", "1") // the one change each watch counts
	if ev := event(t, with.line()); ev["type"] != "set" {
		t.Fatalf("after the broadcasts: %v", ev)
	}
	if ev := event(t, without.line()); ev["type"] != "set" || ev["key"] != "/room/1/ann" {
		t.Fatalf("a watch without -broadcasts printed %v first", ev)
	}
	for _, w := range []*started{with, without} {
		if r := w.wait(); r.code != 0 {
			t.Fatalf("after -count 1: %+v", r)
		}
	}
}

// TestWatchBroadcastsOnly: "watch -broadcasts-only" prints ready, then the broadcasts alone, no
// change; with -since, -snapshot or -throttle it is a usage error.
func TestWatchBroadcastsOnly(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	only := start(t, e, "watch", "-broadcasts-only", "/room/")
	if ev := event(t, only.line()); ev["type"] != "ready" {
		t.Fatalf("first: %v", ev)
	}
	must(t, e, "set", "/room/1/ann", "1")
	must(t, e, "broadcast", "/room/1/cursor", `{"x": 10}`)
	must(t, e, "set", "/room/1/ann", "2")
	must(t, e, "broadcast", "/room/", `"end"`)
	for _, want := range []string{`{"type":"broadcast","path":"/room/1/cursor","msg":{"x":10}}`, `{"type":"broadcast","path":"/room/","msg":"end"}`} {
		if line := only.line(); line != want {
			t.Fatalf("watch -broadcasts-only printed %s, want %s", line, want)
		}
	}
	for _, flag := range []string{"-since=1", "-snapshot", "-throttle=1s"} {
		if r := run(t, e, "", "watch", "-broadcasts-only", flag, "/room/"); r.code != 2 || !strings.Contains(r.stderr, "never replayed") {
			t.Fatalf("watch -broadcasts-only %s: %+v, want a usage error", flag, r)
		}
	}
}
