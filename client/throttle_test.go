package client_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestWatchThrottle: a watch with Throttle asks for ?throttle= on every connection, and 200
// writes to one key reach it as a handful of events ending with the last value, each at least
// one interval of the server's (fake) clock after the one before; an unthrottled watch of the
// same key gets all 200.
func TestWatchThrottle(t *testing.T) {
	clock := fakeclock.New(time.Now())
	var mu sync.Mutex
	var streams []string
	h := hub.New(hub.Config{Logger: quiet})
	url := serveWrapped(t, h, web.Config{Clock: clock}, func(r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			mu.Lock()
			streams = append(streams, r.URL.RawQuery)
			mu.Unlock()
		}
	})
	c := newClient(t, url)
	ctx := testContext(t)

	slow := make(chan client.Event, 1024)
	go func() {
		for ev, err := range c.Watch(ctx, "/t/k", client.WatchOptions{Throttle: 250 * time.Millisecond}) {
			if err != nil {
				close(slow)
				return
			}
			slow <- ev
		}
	}()
	all := watch(t, c, ctx, "/t/k", client.WatchOptions{})
	all.expect("ready")
	if ev := <-slow; ev.Type != client.EventReady {
		t.Fatalf("throttled watch began with %+v", ev)
	}
	const n = 200
	for i := 1; i <= n; i++ {
		if _, err := h.Set("/t/k", []byte(strconv.Itoa(i)), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		all.expect("set /t/k=" + strconv.Itoa(i))
	}
	var got []client.Event
	advances := 0
	deadline := time.Now().Add(10 * time.Second)
	for len(got) == 0 || string(got[len(got)-1].Value) != strconv.Itoa(n) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; got %d events", len(got))
		}
		select {
		case ev, ok := <-slow:
			if !ok {
				t.Fatal("the throttled watch ended")
			}
			got = append(got, ev)
			continue
		case <-time.After(20 * time.Millisecond):
		}
		clock.Advance(250 * time.Millisecond)
		advances++
	}
	// One event at once, then at most one per interval.
	if len(got) > advances+1 || len(got) >= n {
		t.Fatalf("throttled watch got %d events over %d intervals", len(got), advances)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("positions go back: %+v after %+v", got[i], got[i-1])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(streams) != 2 || !strings.Contains(streams[0]+streams[1], "throttle=250ms") {
		t.Fatalf("stream queries %q, want one with throttle=250ms", streams)
	}
	t.Logf("throttled: %d events over %d intervals", len(got), advances)
}

// TestWatchThrottleInvalid: a Throttle out of the server's range fails at once.
func TestWatchThrottleInvalid(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1")
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Minute, -time.Second} {
		for _, err := range c.Watch(testContext(t), "/t/k", client.WatchOptions{Throttle: d}) {
			if err == nil || !strings.Contains(err.Error(), "Throttle") {
				t.Fatalf("Throttle %v: %v", d, err)
			}
		}
	}
}
