package web

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
)

// closeRecorder notes when (on the fake clock) the sweep closed a connection.
type closeRecorder struct {
	net.Conn
	clock    *hub.FakeClock
	closedAt atomic.Int64 // Unix nanoseconds; 0 while open
}

func (c *closeRecorder) Close() error {
	c.closedAt.CompareAndSwap(0, c.clock.Now().UnixNano())
	return c.Conn.Close()
}

// TestConnTimeouts follows one connection through its states on a fake clock and checks when the
// sweep closes it: never before its timeout, at most two ticks after, and never while a handler
// runs or once hijacked. Events fall between ticks on purpose.
func TestConnTimeouts(t *testing.T) {
	t.Parallel()
	const header, idle = 10 * time.Second, 60 * time.Second
	type event struct {
		at time.Duration // after the connection is accepted
		do string        // "active", "idle", "byte" (a read of the next request's first bytes), "hijack"
	}
	for _, tc := range []struct {
		name    string
		events  []event
		from    time.Duration // when the timeout that closes the connection started
		timeout time.Duration // 0: never closed
	}{
		{name: "silent after accept", from: 0, timeout: header},
		{name: "unfinished headers", events: []event{{1300 * time.Millisecond, "byte"}}, from: 0, timeout: header},
		{name: "in a handler", events: []event{{2 * time.Second, "active"}}},
		{name: "idle after an answer", events: []event{{time.Second, "active"}, {4500 * time.Millisecond, "idle"}},
			from: 4500 * time.Millisecond, timeout: idle},
		{name: "next request's headers stall", events: []event{{time.Second, "active"}, {4500 * time.Millisecond, "idle"},
			{30700 * time.Millisecond, "byte"}}, from: 30700 * time.Millisecond, timeout: header},
		{name: "next request arrives", events: []event{{time.Second, "active"}, {4500 * time.Millisecond, "idle"},
			{50 * time.Second, "byte"}, {50 * time.Second, "active"}}},
		{name: "hijacked", events: []event{{time.Second, "active"}, {1500 * time.Millisecond, "hijack"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := hub.NewFakeClock(time.Unix(1_700_000_000, 0))
			ct := newConnTimeouts(header, idle, clock)
			defer ct.close()
			clock.Advance(2300 * time.Millisecond) // accepted between two sweeps
			client, server := net.Pipe()
			defer client.Close()
			rec := &closeRecorder{Conn: server, clock: clock}
			start := clock.Now()
			c := ct.track(rec)
			const step = 100 * time.Millisecond
			events := tc.events
			for elapsed := time.Duration(0); elapsed < 5*idle; elapsed += step {
				for len(events) > 0 && events[0].at <= elapsed {
					switch events[0].do {
					case "active":
						ct.state(c, http.StateActive)
					case "idle":
						ct.state(c, http.StateIdle)
					case "hijack":
						ct.state(c, http.StateHijacked)
					case "byte":
						go client.Write([]byte("G"))
						if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
							t.Fatalf("read %d, %v", n, err)
						}
					}
					events = events[1:]
				}
				clock.Advance(step)
			}
			closed := rec.closedAt.Load()
			if tc.timeout == 0 {
				if closed != 0 {
					t.Fatalf("closed after %v, want never", time.Unix(0, closed).Sub(start))
				}
				return
			}
			if closed == 0 {
				t.Fatal("never closed")
			}
			late := time.Unix(0, closed).Sub(start) - tc.from - tc.timeout
			if late < 0 || late > 2*ct.tick {
				t.Fatalf("closed %v after its timeout, want 0 to %v", late, 2*ct.tick)
			}
		})
	}
}

// TestConnTimeoutsTick: a sweep a tenth of the shorter timeout, between a millisecond and a second.
func TestConnTimeoutsTick(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ header, idle, want time.Duration }{
		{10 * time.Second, 120 * time.Second, time.Second},
		{2 * time.Second, 120 * time.Second, 200 * time.Millisecond},
		{10 * time.Second, 500 * time.Millisecond, 50 * time.Millisecond},
		{time.Millisecond, time.Second, time.Millisecond},
	} {
		ct := newConnTimeouts(tc.header, tc.idle, hub.NewFakeClock(time.Unix(0, 0)))
		ct.close()
		if ct.tick != tc.want {
			t.Errorf("header %v, idle %v: tick %v, want %v", tc.header, tc.idle, ct.tick, tc.want)
		}
	}
}
