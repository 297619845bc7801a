package web

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/statehub/statehub/hub"
)

// Throttled subscriptions (PROTOCOL.md): ?throttle=250ms on an SSE stream, "throttle" on a
// WebSocket sub. Per key at most one event per interval, always the key's latest change, and the
// latest change of every key always arrives. Positions stay exact: the event sent for a key is its
// latest change itself (its id or position), and positions never go backwards, so a client that
// resumes from the last one it saw converges to the same state.
//
// The transports' delivery loops hand their live events to a throttle, one per subscription (nil,
// and free, for an unthrottled one). When it is idle an event goes out at once and one timer of the
// server's Clock is armed for the interval; until it fires, events wait in a map keyed by key that
// keeps each key's latest. When it fires, the waiting events go out in hub order (seq, key) and the
// timer is armed again; when nothing waits it goes idle. Every event sent after a flush was taken
// after it, so positions only grow, and each key gets at most one event per interval.

const (
	minThrottle = 10 * time.Millisecond
	maxThrottle = time.Minute
)

// parseThrottle reads a throttle interval, a Go duration ("250ms", "1s"); "" is none.
func parseThrottle(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < minThrottle || d > maxThrottle {
		return 0, badRequest("invalid_throttle", "throttle must be a duration from 10ms to 1m, like 250ms")
	}
	return d, nil
}

// throttle coalesces one subscription's live events. Only its delivery loop uses it, except the
// timer, which only signals tick.
type throttle struct {
	every   time.Duration
	clock   hub.Clock
	tick    chan struct{} // capacity 1: the timer has fired; call flush
	wake    func()        // called too when the timer fires, if set (the stream's or socket's writer)
	armed   bool
	stop    func() bool
	pending map[string]int // key → index in waiting
	waiting []hub.Event
}

// newThrottle returns nil for an interval of 0: an unthrottled subscription.
func newThrottle(clock hub.Clock, every time.Duration) *throttle {
	if every <= 0 {
		return nil
	}
	return &throttle{every: every, clock: clock, tick: make(chan struct{}, 1), pending: map[string]int{}}
}

// C is signalled when waiting events are due; nil (never ready) for no throttle.
func (t *throttle) C() <-chan struct{} {
	if t == nil {
		return nil
	}
	return t.tick
}

func (t *throttle) arm() {
	t.armed = true
	t.stop = t.clock.AfterFunc(t.every, func() {
		select {
		case t.tick <- struct{}{}:
		default:
		}
		if t.wake != nil {
			t.wake()
		}
	})
}

// Stop disarms the timer; the waiting events are dropped.
func (t *throttle) Stop() {
	if t != nil && t.stop != nil {
		t.stop()
	}
}

// started is called after the replay or snapshot went out: their keys have just had an event.
func (t *throttle) started(n int) {
	if t != nil && n > 0 && !t.armed {
		t.arm()
	}
}

// add takes live events in hub order and appends to out those to send now. A broadcast is never
// throttled: it goes out at once, ahead of the changes the throttle holds.
func (t *throttle) add(out, events []hub.Event) []hub.Event {
	for _, e := range events {
		if e.Broadcast {
			out = append(out, e)
			continue
		}
		if !t.armed { // idle: nothing waits, so sending now keeps the order
			out = append(out, e)
			t.arm()
			continue
		}
		if i, ok := t.pending[e.Key]; ok {
			t.waiting[i] = e
			continue
		}
		t.pending[e.Key] = len(t.waiting)
		t.waiting = append(t.waiting, e)
	}
	return out
}

// flush appends the waiting events to out, in hub order, when the timer has fired (or, with
// final, when the subscription ends), and arms the timer again if there were any.
func (t *throttle) flush(out []hub.Event, final bool) []hub.Event {
	if t == nil {
		return out
	}
	if !final {
		t.armed = false
	}
	if len(t.waiting) == 0 {
		return out
	}
	slices.SortFunc(t.waiting, func(a, b hub.Event) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), strings.Compare(a.Key, b.Key))
	})
	out = append(out, t.waiting...)
	clear(t.waiting)
	t.waiting = t.waiting[:0]
	clear(t.pending)
	if !final {
		t.arm()
	}
	return out
}

// coalesce keeps each key's latest event of a replay, in hub order: a throttled subscription's
// replay is one event per key.
func coalesce(events []hub.Event) []hub.Event {
	last := make(map[string]int, len(events))
	for i, e := range events {
		last[e.Key] = i
	}
	if len(last) == len(events) {
		return events
	}
	out := make([]hub.Event, 0, len(last))
	for i, e := range events {
		if last[e.Key] == i {
			out = append(out, e)
		}
	}
	return out
}
