// Package fakeclock is a manual clock for tests of code that takes an injected clock (hub.Clock,
// auth.Config.Clock, web.Config.Clock). Time moves only when the test calls Advance; timers due by
// then run synchronously inside Advance, in deadline order, so a test sees every effect as soon as
// Advance returns, and never sleeps. It is safe for concurrent use.
package fakeclock

import (
	"sort"
	"sync"
	"time"
)

// Clock is a manual clock: it implements hub.Clock (and any interface of Now and AfterFunc). Timers fire synchronously inside Advance, in deadline order,
// so a test that advances the clock sees every effect as soon as Advance returns.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

// New returns a clock set to start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc registers f to run when the clock is advanced past now+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
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
func (c *Clock) Advance(d time.Duration) {
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
