package hub

import (
	"sort"
	"sync"
	"time"
)

// Clock is the hub's only source of time, so TTL, lock and idempotency tests run on a fake clock
// and never sleep.
type Clock interface {
	// Now returns the current time. The real clock's readings carry Go's monotonic reading, so
	// durations between them are immune to wall-clock steps.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless the returned stop function is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// FakeClock is a manual clock for tests. Timers fire synchronously inside Advance, in deadline order,
// so a test that advances the clock sees every effect as soon as Advance returns.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

// NewFakeClock returns a fake clock set to start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc registers f to run when the clock is advanced past now+d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock forward by d and runs every timer that falls due, in deadline order.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var due *fakeTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(end) {
				due = t
				t.stopped = true
				c.timers = append(c.timers[:i:i], c.timers[i+1:]...)
				if c.now.Before(t.at) {
					c.now = t.at
				}
			}
			break
		}
		if due == nil {
			c.now = end
			c.timers = compactTimers(c.timers)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		due.f()
	}
}

func compactTimers(ts []*fakeTimer) []*fakeTimer {
	out := ts[:0]
	for _, t := range ts {
		if !t.stopped {
			out = append(out, t)
		}
	}
	return out
}
