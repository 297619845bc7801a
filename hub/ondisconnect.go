package hub

import (
	"fmt"
	"slices"
	"time"
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
// registration of its key meanwhile. Registrations live in the process: a restart of the single
// binary drops them (reconnecting clients register again).
func (h *Local) OnDisconnect(s *Session, w DisconnectWrite) error {
	if err := w.check(h.limits); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.writableLocked(); err != nil {
		return err
	}
	if s.ended {
		return fmt.Errorf("%w: the connection has ended", ErrClosed)
	}
	if _, ok := s.disc[w.Key]; !ok && len(s.disc) >= MaxDisconnectWrites {
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
	return nil
}

// CancelDisconnect drops s's on-disconnect write of key, when it has one; key "" drops them all.
func (h *Local) CancelDisconnect(s *Session, key string) error {
	if key != "" {
		if err := h.limits.CheckKey(key); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range s.disc {
		if key == "" || k == key {
			delete(s.disc, k)
			if r, ok := h.disc[k]; ok && r.owner == s {
				delete(h.disc, k)
			}
		}
	}
	return nil
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
	var out []Change
	for _, k := range keys {
		w := h.disc[k].w
		delete(h.disc, k)
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
