package hub

import (
	"sync"
)

// Event is one change of one key, or one entry of a snapshot.
type Event struct {
	Key      string
	Value    []byte // compact JSON; nil for a delete
	Revision int64
	Seq      uint64
	Deleted  bool
	Snapshot bool   // an entry of a snapshot or reset (the key's state at Seq), not a change
	Type     string // a stored file's content type (Value is then its JSON description); empty for JSON
}

// ID is the event's position string, the SSE event id (see PROTOCOL.md).
func (e Event) ID() string { return EventID(e.Key, e.Revision, e.Seq, e.Snapshot) }

// SubscribeOptions choose where a subscription starts.
type SubscribeOptions struct {
	// Since resumes after this position: Initial replays every change after it. When the position
	// is older than the retained history (or is a snapshot position), the subscription starts with a
	// reset instead: Reset is true and Initial holds the current entries.
	Since *Position
	// Snapshot makes Initial the current entries of the path (when Since is nil).
	Snapshot bool
}

// Subscription delivers the changes of a path. Read Initial first, then C; together they hold
// every change of the path after the starting position exactly once, in (seq, key) order. C is
// closed when the subscriber falls behind by more than the queue size (Err is ErrSlowConsumer), at
// shutdown (ErrShutdown) or after Close (nil).
type Subscription struct {
	Path    string
	Initial []Event
	Reset   bool   // Initial is the current state after a reset, not a replay
	Start   uint64 // Initial brings the subscriber up to this seq; C carries only later events
	C       <-chan Event

	h      *Hub
	ch     chan Event
	err    error
	closed bool
	once   sync.Once
}

// Err reports why C was closed. Call it only after C is closed.
func (s *Subscription) Err() error { return s.err }

// Close ends the subscription and closes C. It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.h.subsMu.Lock()
		s.h.closeSubLocked(s, nil)
		s.h.subsMu.Unlock()
	})
}

// Subscribe starts a subscription of path: a key, or a prefix ending in "/" ("/" for everything).
// The starting point and the first live event join without a gap or a duplicate: both are fixed
// under the state lock.
func (h *Hub) Subscribe(path string, opt SubscribeOptions) (*Subscription, error) {
	if err := h.limits.CheckPath(path); err != nil {
		return nil, err
	}
	s := &Subscription{Path: path, h: h, ch: make(chan Event, h.cfg.QueueSize)}
	s.C = s.ch
	// The write lock, not the read lock: tree.Copy writes the tree (its copy-on-write id), so two
	// snapshot subscriptions under RLock would race.
	h.mu.Lock()
	s.Start = h.seq
	snapshot := opt.Snapshot && opt.Since == nil
	if p := opt.Since; p != nil {
		if !p.Snapshot && p.Seq <= h.seq && h.history.canResume(*p) {
			s.Initial = h.history.since(*p, path)
		} else {
			s.Reset, snapshot = true, true
		}
	}
	var tree = h.tree
	if snapshot {
		tree = h.tree.Copy() // copy-on-write: read outside the lock
	}
	err := h.addSub(s)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if snapshot {
		s.Initial = snapshotEvents(tree, path)
	}
	return s, nil
}

func (h *Hub) addSub(s *Subscription) error {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	if h.draining {
		return ErrShutdown
	}
	set := h.subs[s.Path]
	if set == nil {
		set = make(map[*Subscription]struct{})
		h.subs[s.Path] = set
	}
	set[s] = struct{}{}
	h.nsubs++
	return nil
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	return h.nsubs
}

func (h *Hub) closeSubLocked(s *Subscription, err error) {
	if s.closed {
		return
	}
	s.closed = true
	s.err = err
	set := h.subs[s.Path]
	delete(set, s)
	if len(set) == 0 {
		delete(h.subs, s.Path)
	}
	h.nsubs--
	close(s.ch)
}

// Drain closes every subscription with ErrShutdown and refuses new ones.
func (h *Hub) Drain() {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	if !h.draining {
		close(h.drained)
	}
	h.draining = true
	for _, set := range h.subs {
		for s := range set {
			h.closeSubLocked(s, ErrShutdown)
		}
	}
}

// publish hands every pending event up to seq to the subscribers, in order. Sends never block: a
// subscriber whose queue is full is closed with ErrSlowConsumer and resumes from its position.
func (h *Hub) publish(seq uint64) {
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	h.mu.Lock()
	n := 0
	for n < len(h.pending) && h.pending[n].Seq <= seq {
		n++
	}
	events := h.pending[:n:n]
	h.pending = h.pending[n:]
	if len(h.pending) == 0 {
		h.pending = nil
	}
	h.mu.Unlock()
	if len(events) == 0 {
		return
	}
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	if h.nsubs == 0 {
		return
	}
	for _, e := range events {
		h.fanoutLocked(e)
	}
}

// fanoutLocked offers e to the subscribers of its key and of every prefix above it.
func (h *Hub) fanoutLocked(e Event) {
	deliver := func(path string) {
		for s := range h.subs[path] {
			if e.Seq <= s.Start {
				continue
			}
			select {
			case s.ch <- e:
			default:
				h.slowConsumers++
				h.closeSubLocked(s, ErrSlowConsumer)
			}
		}
	}
	deliver(e.Key)
	for i := len(e.Key) - 1; i >= 0; i-- {
		if e.Key[i] == '/' {
			deliver(e.Key[:i+1])
		}
	}
}

// snapshotEvents lists the entries under path as snapshot events, in key order.
func snapshotEvents(tree interface {
	Ascend(Entry, func(Entry) bool)
}, path string) []Event {
	var out []Event
	tree.Ascend(Entry{Key: path}, func(e Entry) bool {
		if !Covers(path, e.Key) {
			return !IsPrefix(path) && e.Key == path // a key: stop after it
		}
		out = append(out, Event{Key: e.Key, Value: e.Value, Revision: e.Revision, Seq: e.Seq, Snapshot: true, Type: e.Type})
		return IsPrefix(path)
	})
	return out
}
