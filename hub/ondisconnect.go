package hub

import (
	"fmt"
	"slices"
	"time"

	"github.com/statehub/statehub/hub/wal"
)

// On-disconnect writes, as Firebase's onDisconnect: a connection registers a write (a set of a
// JSON value, or a delete) that the store performs once the connection has been gone for longer
// than the grace period, or, in a cluster, when the node that held it is lost. The write is an
// ordinary durable commit (a plain key, never ephemeral); its events carry the reason the
// connection left (ReasonClosed, ReasonTimeout, ReasonNodeLost).
//
// One write is pending per key: a registration replaces any earlier one of that key, by this
// connection or another. A client that reconnects therefore registers again, and its new
// connection's registration supersedes the one of the connection it replaces, which then does
// nothing: a reload within the grace period does not run it.
//
// A disk store journals the registrations (discjournal.go): a registration is answered once its
// record is durable, and those found at start-up are made one grace period later with
// ReasonNodeLost, their connections having ended with the process before.

// MaxDisconnectWrites is how many keys one session may have on-disconnect writes registered for.
const MaxDisconnectWrites = 64

// ErrTooManyDisconnectWrites refuses a registration past MaxDisconnectWrites.
var ErrTooManyDisconnectWrites = fmt.Errorf("hub: at most %d on-disconnect writes per connection", MaxDisconnectWrites)

// DisconnectWrite is a write registered with OnDisconnect.
type DisconnectWrite struct {
	Key    string
	Value  []byte // compact JSON (Limits.CompactJSON); nil when Delete
	Delete bool
}

// check validates w against the limits.
func (w DisconnectWrite) check(l Limits) error {
	if err := l.CheckKey(w.Key); err != nil {
		return err
	}
	if w.Delete {
		if w.Value != nil {
			return fmt.Errorf("%w: an on-disconnect delete takes no value", ErrInvalidValue)
		}
		return nil
	}
	if len(w.Value) == 0 {
		return fmt.Errorf("%w: an on-disconnect set needs a value", ErrInvalidValue)
	}
	return nil
}

// discReg is a pending on-disconnect write and the session it belongs to.
type discReg struct {
	owner *Session
	w     DisconnectWrite
}

// OnDisconnect registers w for s: once s has ended (End) for longer than the grace period, w is
// committed with the reason s ended for, unless it was cancelled or replaced by another
// registration of its key meanwhile. A disk store journals the registration (discjournal.go) and
// returns once it is durable: after a restart, the writes of the connections of the process
// before are made one grace period later, with ReasonNodeLost.
func (h *Local) OnDisconnect(s *Session, w DisconnectWrite) error {
	if err := w.check(h.limits); err != nil {
		return err
	}
	h.mu.Lock()
	if err := h.writableLocked(); err != nil {
		h.mu.Unlock()
		return err
	}
	if s.ended {
		h.mu.Unlock()
		return fmt.Errorf("%w: the connection has ended", ErrClosed)
	}
	if _, ok := s.disc[w.Key]; !ok && len(s.disc) >= MaxDisconnectWrites {
		h.mu.Unlock()
		return ErrTooManyDisconnectWrites
	}
	if old, ok := h.disc[w.Key]; ok && old.owner != s {
		delete(old.owner.disc, w.Key)
	}
	if s.disc == nil {
		s.disc = make(map[string]struct{})
	}
	s.disc[w.Key] = struct{}{}
	h.disc[w.Key] = discReg{owner: s, w: w}
	var t *wal.Ticket
	if j := h.discJournalLocked(); j != nil {
		t = j.set(w)
	}
	h.mu.Unlock()
	return waitDisc(t)
}

// discJournalLocked returns the disk store's journal of registrations, or nil.
func (h *Local) discJournalLocked() *discJournal {
	if h.store == nil {
		return nil
	}
	return h.store.disc
}

// waitDisc waits until a registration's record (or a cancellation's) is durable.
func waitDisc(t *wal.Ticket) error {
	if t == nil {
		return nil
	}
	if err := t.Wait(); err != nil {
		return &storageError{err}
	}
	return nil
}

// recoverDisconnectWritesLocked takes the registrations a disk store found at start-up: their
// connections were the process's before, so they belong to one ended session, as if it had ended
// now with ReasonNodeLost, and are made one grace period later unless registered again first.
func (h *Local) recoverDisconnectWritesLocked(pending map[string]DisconnectWrite) {
	if len(pending) == 0 {
		return
	}
	orphan := &Session{h: h, ended: true, reason: ReasonNodeLost, disc: make(map[string]struct{}, len(pending))}
	for k, w := range pending {
		orphan.disc[k] = struct{}{}
		h.disc[k] = discReg{owner: orphan, w: w}
	}
	h.expiry.push(deadline{at: h.clock.Now().Add(h.cfg.EphemeralGrace), disc: true, owner: orphan})
	h.log.Info("on-disconnect writes found at start-up: made one grace period from now unless registered again", "writes", len(pending))
}

// CancelDisconnect drops s's on-disconnect write of key, when it has one; key "" drops them all.
func (h *Local) CancelDisconnect(s *Session, key string) error {
	if key != "" {
		if err := h.limits.CheckKey(key); err != nil {
			return err
		}
	}
	h.mu.Lock()
	j := h.discJournalLocked()
	var t *wal.Ticket
	for k := range s.disc {
		if key == "" || k == key {
			delete(s.disc, k)
			if r, ok := h.disc[k]; ok && r.owner == s {
				delete(h.disc, k)
				if j != nil {
					if dt := j.drop(k); dt != nil {
						t = dt
					}
				}
			}
		}
	}
	h.mu.Unlock()
	return waitDisc(t) // the last record's ticket covers the ones before it
}

// discChangesLocked returns the changes of s's on-disconnect writes, in key order, and forgets
// them. A set of a held lock, or a delete of an absent key, changes nothing.
func (h *Local) discChangesLocked(s *Session, now time.Time) []Change {
	keys := make([]string, 0, len(s.disc))
	for k := range s.disc {
		if r, ok := h.disc[k]; ok && r.owner == s {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	s.disc = nil
	j := h.discJournalLocked()
	var out []Change
	for _, k := range keys {
		w := h.disc[k].w
		delete(h.disc, k)
		if j != nil {
			j.drop(k) // not waited for: a crash before it is durable makes the write again at start-up
		}
		st, err := discStep(w)(now, localView{h.tree, h.seq + 1})
		if err != nil {
			h.log.Info("on-disconnect write not made", "key", k, "err", err)
			continue
		}
		if st.one.Key != "" {
			ch := st.one
			ch.Reason = s.reason
			out = append(out, ch)
		}
	}
	return out
}

// discStep is the read-check-change step of an on-disconnect write: a plain set or delete.
func discStep(w DisconnectWrite) buildFunc {
	if w.Delete {
		return deleteStep(w.Key, Cond{})
	}
	return putStep(w.Key, w.Value, "", Cond{}, WriteOptions{})
}
