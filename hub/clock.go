package hub

import (
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
