package hub

import "sync"

// Session is the owner of ephemeral keys: in practice one WebSocket connection. A key written by
// Set with WriteOptions.Session is ephemeral and belongs to that session; once the session has
// ended (End) for longer than Config.EphemeralGrace, the key is deleted with an ordinary delete
// event, so a presence entry disappears when its tab is gone but does not flicker on a reload.
//
// Ownership follows the last write: a later Set with another session transfers the key to that
// session, and any other write (a plain Set, Incr, a transaction, a delete) makes it an
// ordinary key again. The ephemeral flag is persisted with the key; the owner is not, so after a
// restart no session owns anything and every ephemeral key found at start-up is deleted one grace
// period later unless a client writes it again first (clients re-send their ephemeral keys when
// they reconnect).
//
// Grace periods use the hub's one expiry queue and its Clock: there is no timer or goroutine per
// key or per session.
type Session struct {
	conn   string              // the connection's id: random, in every Presence it writes
	h      *Local              // nil for a session of another store (NewStoreSession)
	keys   map[string]struct{} // ephemeral keys this session owns now, under h.mu
	ended  bool                // under h.mu
	reason string              // why it ended (ReasonClosed, ReasonTimeout), under h.mu
	disc   map[string]struct{} // keys of its pending on-disconnect writes (ondisconnect.go), under h.mu

	// For another store's session: what End does (once).
	onEnd func(reason string)
	once  sync.Once
}

// NewStoreSession returns a session of a store other than Local with a new random connection
// id; End calls onEnd once, with the reason.
func NewStoreSession(onEnd func(s *Session, reason string)) *Session {
	s := &Session{conn: newConnID()}
	s.onEnd = func(reason string) { onEnd(s, reason) }
	return s
}

// Conn is the session's connection id: random, 16 characters, the Conn of every Presence it
// writes. Transports tell it to their client.
func (s *Session) Conn() string { return s.conn }

// NewSession returns a live session. Call End when its connection is gone. A write with an ended
// session (a request that raced the connection's end) starts the key's grace period at once.
func (h *Local) NewSession() *Session {
	return &Session{conn: newConnID(), h: h, keys: make(map[string]struct{})}
}

// End marks the session's connection as gone with ReasonClosed (EndWith).
func (s *Session) End() { s.EndWith(ReasonClosed) }

// EndWith marks the session's connection as gone, for reason (ReasonClosed or ReasonTimeout):
// each key it still owns is deleted after the grace period unless it is written again
// meanwhile, and its delete event carries reason. Only the first call counts; it never blocks
// on I/O.
func (s *Session) EndWith(reason string) {
	h := s.h
	if h == nil {
		s.once.Do(func() { s.onEnd(reason) })
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.ended {
		return
	}
	s.ended, s.reason = true, reason
	at := h.clock.Now().Add(h.cfg.EphemeralGrace)
	for key := range s.keys {
		h.expiry.push(deadline{at: at, key: key, eph: true, owner: s})
	}
	if len(s.disc) > 0 {
		h.expiry.push(deadline{at: at, disc: true, owner: s})
	}
	s.keys = nil
	h.scheduleLocked()
}

// Owned returns how many keys s owns now (for tests and metrics).
func (s *Session) Owned() int {
	if s.h == nil {
		return 0
	}
	s.h.mu.RLock()
	defer s.h.mu.RUnlock()
	return len(s.keys)
}

// ownLocked keeps ephemeral ownership in step with a change being applied: prev is the key's
// entry before it (had false when absent).
func (h *Local) ownLocked(prev *item, had bool, ch *Change) {
	if o := prev.owner(); had && o != nil && o != ch.owner && o.keys != nil {
		delete(o.keys, ch.Key)
	}
	if ch.Deleted || !ch.Ephemeral {
		return
	}
	switch {
	case ch.owner == nil:
		// Replayed from the log at start-up. One deadline per key suffices: a later replayed
		// version of an ephemeral key is covered by the deadline of the first.
		if !had || !prev.ephemeral() || prev.owner() != nil {
			h.orphanLocked(ch.Key)
		}
	case ch.owner.ended:
		h.expiry.push(deadline{at: h.clock.Now().Add(h.cfg.EphemeralGrace), key: ch.Key, eph: true, owner: ch.owner})
	default:
		ch.owner.keys[ch.Key] = struct{}{}
	}
}

// orphanLocked starts the grace period of an ephemeral key that no session owns (after a restart).
func (h *Local) orphanLocked(key string) {
	h.expiry.push(deadline{at: h.clock.Now().Add(h.cfg.EphemeralGrace), key: key, eph: true})
}

// ephemeralGoneLocked returns the delete for an ephemeral deadline that is due, unless the key has
// been written since (its owner or its ephemeral flag changed).
func (h *Local) ephemeralGoneLocked(d deadline) (Change, bool) {
	e, ok := h.tree.Get(item{key: d.key})
	if !ok || !e.ephemeral() || e.owner() != d.owner || d.owner != nil && !d.owner.ended {
		return Change{}, false
	}
	reason := ReasonNodeLost // orphaned by a restart
	if d.owner != nil {
		reason = d.owner.reason
	}
	return Change{Key: d.key, Revision: e.revision + 1, Deleted: true, Reason: reason}, true
}
