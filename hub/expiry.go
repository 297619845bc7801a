package hub

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
	"time"
)

// deadline is one entry of the hub's single expiry queue: a key's TTL, the end of an ephemeral
// key's grace period or an idempotency record's end. An entry may be stale (the key was
// rewritten); expireDue checks before acting, and compactExpiryLocked drops stale entries once
// they pile up.
type deadline struct {
	at    time.Time
	key   string   // a key whose TTL ends at at
	idem  string   // or an idempotency key whose record ends at at
	eph   bool     // key is ephemeral and its grace period ends at at
	disc  bool     // or owner's on-disconnect writes are due at at
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

// minExpiryCompact is the queue length up to which stale deadlines are left to fall due.
const minExpiryCompact = 64

// compactExpiryLocked drops the stale deadlines, and the copies of a current one, once the queue
// has grown to twice its length after the last compaction. So a key rewritten with a TTL over
// and over does not grow the queue: it holds at most max(2 × the deadlines current at the last
// compaction, minExpiryCompact). Each compaction costs O(n log n) for the n pushes since the
// last: amortized O(log n) a push, as the push itself.
//
// A stale deadline never becomes current again: every change that gives a key a TTL, an
// idempotency record an end or an ephemeral key a grace period pushes a deadline of its own.
func (h *Local) compactExpiryLocked() {
	if len(h.expiry) <= max(2*h.expKept, minExpiryCompact) {
		return
	}
	// In order of at, then of what the deadline is for: the copies of one deadline are adjacent.
	slices.SortFunc(h.expiry, func(a, b deadline) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := strings.Compare(a.idem, b.idem); c != 0 {
			return c
		}
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		if c := cmp.Compare(b2i(a.eph), b2i(b.eph)); c != 0 {
			return c
		}
		return cmp.Compare(b2i(a.disc), b2i(b.disc))
	})
	var kept expiryQueue
	for _, d := range h.expiry {
		if n := len(kept); n > 0 && sameDeadline(kept[n-1], d) || !h.currentLocked(d) {
			continue
		}
		kept = append(kept, d)
	}
	h.expiry = kept // in order of at: a heap as it is
	h.expKept = len(kept)
}

// sameDeadline reports whether a and b end the same thing at the same time: one of them is enough.
func sameDeadline(a, b deadline) bool {
	return a.at.Equal(b.at) && a.idem == b.idem && a.key == b.key && a.eph == b.eph && a.disc == b.disc && a.owner == b.owner
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// currentLocked reports whether expireDue would act on d were it due now (the checks it makes).
func (h *Local) currentLocked(d deadline) bool {
	switch {
	case d.idem != "":
		rec, ok := h.idem[d.idem]
		return ok && rec.Expires.Equal(d.at)
	case d.eph:
		_, ok := h.ephemeralGoneLocked(d)
		return ok
	case d.disc:
		return len(d.owner.disc) > 0
	}
	e, ok := h.tree.Get(item{key: d.key})
	return ok && e.expires().Equal(d.at)
}

// scheduleLocked drops stale deadlines when they have piled up (compactExpiryLocked), then arms
// the one expiry timer for the earliest deadline, if it is earlier than the armed one. There is
// no goroutine per key.
func (h *Local) scheduleLocked() {
	h.compactExpiryLocked()
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
func (h *Local) expireDue() {
	h.mu.Lock()
	h.timerAt, h.stopTime = time.Time{}, nil
	if h.closed {
		h.mu.Unlock()
		return
	}
	now := h.clock.Now()
	byKey := map[string]Change{}
	var discs []*Session // sessions whose on-disconnect writes are due
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
		if d.disc {
			discs = append(discs, d.owner)
			continue
		}
		if e, ok := h.tree.Get(item{key: d.key}); ok && e.expires().Equal(d.at) {
			byKey[d.key] = Change{Key: d.key, Revision: e.revision + 1, Deleted: true}
		}
	}
	var seq uint64
	var wait func() error
	// On-disconnect writes decide against the state before this commit. One of a key that a
	// delete above removes takes the delete's place in the commit: a set overwrites the entry
	// (revision + 1), a delete deletes it, with the reason of the write's own session.
	for _, sess := range discs {
		for _, ch := range h.discChangesLocked(sess, now) {
			byKey[ch.Key] = ch
		}
	}
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
