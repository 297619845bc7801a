package cli_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestWatchThrottle: watch -throttle prints a burst of writes to one key as a few lines, at most
// one per interval of the server's (fake) clock, ending with the last value.
func TestWatchThrottle(t *testing.T) {
	clock := fakeclock.New(time.Now())
	h := hub.New(hub.Config{Logger: quiet})
	ts := serveHubWith(t, h, web.Config{Clock: clock})

	w := start(t, env(ts.URL), "watch", "-throttle", "250ms", "/t/k")
	if ev := event(t, w.line()); ev["type"] != "ready" {
		t.Fatalf("first line: %v", ev)
	}
	const n = 100
	for i := 1; i <= n; i++ {
		if _, err := h.Set("/t/k", []byte(strconv.Itoa(i)), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lines, advances := 0, 0
	deadline := time.Now().Add(10 * time.Second)
	var last float64
	for last != n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %d lines", lines)
		}
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("watch ended: %+v", w.wait())
			}
			ev := event(t, l)
			if ev["type"] != "set" || ev["value"].(float64) <= last {
				t.Fatalf("line %q after value %v", l, last)
			}
			last = ev["value"].(float64)
			lines++
			continue
		case <-time.After(20 * time.Millisecond):
		}
		clock.Advance(250 * time.Millisecond)
		advances++
	}
	if lines > advances+1 || lines >= n {
		t.Fatalf("%d lines over %d intervals", lines, advances)
	}
	w.stop()
	if r := w.wait(); r.code != 0 {
		t.Fatalf("watch after interruption: %+v", r)
	}
	if r := run(t, env(ts.URL), "", "watch", "-throttle", "1ms", "/t/k"); r.code != 1 || r.stderr == "" {
		t.Fatalf("watch -throttle 1ms: %+v", r)
	}
}
