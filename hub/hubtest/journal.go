// Package hubtest holds test doubles for package hub's Journal seam: journals that record what
// the hub appends, and decide when (and whether) each commit becomes durable, so tests can stop a
// commit between being applied and being durable. They keep everything in memory; none is safe
// for anything but tests.
package hubtest

import (
	"sync"
	"testing"

	"github.com/statehub/statehub/hub"
)

// RecJournal records every commit in the order Append sees it (seq order) and is durable at once.
type RecJournal struct {
	mu      sync.Mutex
	commits []hub.Commit
}

func (j *RecJournal) Append(c *hub.Commit) func() error {
	j.mu.Lock()
	j.commits = append(j.commits, *c)
	j.mu.Unlock()
	return func() error { return nil }
}

// Commits returns a copy of the recorded commits.
func (j *RecJournal) Commits() []hub.Commit {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]hub.Commit(nil), j.commits...)
}

// Events flattens the recorded commits into the events subscribers must see, in (seq, key) order.
func (j *RecJournal) Events() []hub.Event {
	var out []hub.Event
	for _, c := range j.Commits() {
		for _, ch := range c.Changes {
			out = append(out, hub.Event{Key: ch.Key, Value: ch.Value, Revision: ch.Revision, Seq: c.Seq, Deleted: ch.Deleted})
		}
	}
	return out
}

// GroupJournal records commits like RecJournal, but a commit becomes durable only when a flusher
// goroutine gets to it, batching whatever was appended meanwhile (a group commit). Waits therefore
// return out of order with respect to the writers, as with the real log.
type GroupJournal struct {
	RecJournal
	kick    chan struct{}
	mu      sync.Mutex
	cond    *sync.Cond
	durable uint64
	last    uint64
	stopped bool
}

func NewGroupJournal(tb testing.TB) *GroupJournal {
	j := &GroupJournal{kick: make(chan struct{}, 1)}
	j.cond = sync.NewCond(&j.mu)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range j.kick {
			j.mu.Lock()
			j.durable = j.last
			j.cond.Broadcast()
			stopped := j.stopped
			j.mu.Unlock()
			if stopped {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		j.mu.Lock()
		j.stopped = true
		j.mu.Unlock()
		select {
		case j.kick <- struct{}{}:
		default:
		}
		<-done
	})
	return j
}

func (j *GroupJournal) Append(c *hub.Commit) func() error {
	j.RecJournal.Append(c)
	seq := c.Seq
	j.mu.Lock()
	j.last = seq
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return func() error {
		j.mu.Lock()
		defer j.mu.Unlock()
		for j.durable < seq {
			j.cond.Wait()
		}
		return nil
	}
}

// GateJournal holds every commit until the test releases it with the wait's result.
type GateJournal struct {
	Appended chan *hub.Commit // one per Append
	Release  chan error       // the result of the next wait
	mu       sync.Mutex
	n        int
}

func NewGateJournal() *GateJournal {
	return &GateJournal{Appended: make(chan *hub.Commit, 100), Release: make(chan error, 100)}
}

func (j *GateJournal) Append(c *hub.Commit) func() error {
	j.mu.Lock()
	j.n++
	j.mu.Unlock()
	j.Appended <- c
	return func() error { return <-j.Release }
}

func (j *GateJournal) Appends() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.n
}
