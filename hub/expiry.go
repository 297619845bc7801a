package hub

import (
	"container/heap"
	"time"
)

// deadline is one entry of the hub's single expiry queue: a key's TTL, the end of an ephemeral
// key's grace period or an idempotency record's end. An entry may be stale (the key was
// rewritten); expireDue checks before acting.
type deadline struct {
	at    time.Time
	key   string   // a key whose TTL ends at at
	idem  string   // or an idempotency key whose record ends at at
	eph   bool     // key is ephemeral and its grace period ends at at
	owner *Session // the ended session that owned it (nil: left over from before a restart)
}

type expiryQueue []deadline

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(deadline)) }
func (q *expiryQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}

func (q *expiryQueue) push(d deadline) { heap.Push(q, d) }

// scheduleLocked arms the one expiry timer for the earliest deadline, if it is earlier than the
// armed one. There is no goroutine per key.
func (h *Hub) scheduleLocked() {
	if len(h.expiry) == 0 || h.closed || h.loading {
		return
	}
	next := h.expiry[0].at
	if !h.timerAt.IsZero() && !next.Before(h.timerAt) {
		return
	}
	if h.stopTime != nil {
		h.stopTime()
	}
	h.timerAt = next
	h.stopTime = h.clock.AfterFunc(next.Sub(h.clock.Now()), h.expireDue)
}

// expireDue deletes every key whose TTL has passed, in one commit with a delete event each, and
// forgets idempotency records past their window.
func (h *Hub) expireDue() {
	h.mu.Lock()
	h.timerAt, h.stopTime = time.Time{}, nil
	if h.closed {
		h.mu.Unlock()
		return
	}
	now := h.clock.Now()
	byKey := map[string]Change{}
	for len(h.expiry) > 0 && !h.expiry[0].at.After(now) {
		d := heap.Pop(&h.expiry).(deadline)
		if d.idem != "" {
			if rec, ok := h.idem[d.idem]; ok && rec.Expires.Equal(d.at) {
				delete(h.idem, d.idem)
			}
			continue
		}
		if d.eph {
			if ch, ok := h.ephemeralGoneLocked(d); ok {
				byKey[d.key] = ch
			}
			continue
		}
		if e, ok := h.tree.Get(item{key: d.key}); ok && e.expires().Equal(d.at) {
			byKey[d.key] = Change{Key: d.key, Revision: e.revision + 1, Deleted: true}
		}
	}
	var seq uint64
	var wait func() error
	if len(byKey) > 0 && h.failed == nil {
		seq, wait = h.commitLocked(sortedChanges(byKey), nil)
	} else {
		h.scheduleLocked()
	}
	h.mu.Unlock()
	if seq != 0 {
		if err := h.finish(seq, wait); err != nil {
			h.log.Error("expiring keys", "err", err)
		}
	}
}
