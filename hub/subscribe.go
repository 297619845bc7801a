package hub

import (
	"sync"

	"github.com/tidwall/btree"
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

// Subscription delivers the changes of a path. Read Initial first, then the live queue (Ready and
// Take); together they hold every change of the path after the starting position exactly once, in
// (seq, key) order. The queue is bounded in events (Config.QueueSize) and in bytes of keys and
// values (Config.QueueBytes; an event always fits an empty queue, however large): a subscriber that
// falls further behind is closed with ErrSlowConsumer, and resumes from its position. It is also
// closed at shutdown (ErrShutdown) and by Close (nil). Memory grows with the backlog, up to the
// bounds.
type Subscription struct {
	Path    string
	Initial []Event
	Reset   bool   // Initial is the current state after a reset, not a replay
	Start   uint64 // Initial brings the subscriber up to this seq; the queue holds only later events

	h     *Hub
	ready chan struct{} // capacity 1: signalled when the queue becomes non-empty or is closed
	limit int

	mu     sync.Mutex // guards queue, bytes, closed and err
	queue  []Event
	bytes  int // eventBytes of the queued events
	closed bool
	err    error
	once   sync.Once
}

// Ready is signalled when events are queued or the subscription is closed; then call Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take appends every queued event to buf and returns it. done is true once the subscription is
// closed and those were its last events; Err then says why.
func (s *Subscription) Take(buf []Event) (events []Event, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events = append(buf, s.queue...)
	s.bytes = 0
	if cap(s.queue) > 256 {
		s.queue = nil // give a burst's memory back
	} else {
		clear(s.queue)
		s.queue = s.queue[:0]
	}
	return events, s.closed
}

// Next blocks until the next event and returns it; ok is false once the subscription is closed and
// drained. It is for consumers that handle one event at a time; transports batch with Take.
func (s *Subscription) Next() (e Event, ok bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			e = s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			s.bytes -= eventBytes(e)
			s.mu.Unlock()
			return e, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return Event{}, false
		}
		<-s.ready
	}
}

// Len returns the number of queued events.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Err reports why the subscription was closed: ErrSlowConsumer, ErrShutdown, or nil after Close.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription. It is safe to call more than once and from any goroutine.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.h.subsMu.Lock()
		s.h.closeSubLocked(s, nil)
		s.h.subsMu.Unlock()
	})
}

// offer queues e without blocking; it reports false when the queue is full: it holds QueueSize
// events, or e would take it past QueueBytes. An empty queue takes any event, so a value larger than
// QueueBytes still reaches a subscriber that keeps up.
func (s *Subscription) offer(e Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	n := eventBytes(e)
	if len(s.queue) >= s.limit || len(s.queue) > 0 && s.bytes+n > s.h.cfg.QueueBytes {
		return false
	}
	s.queue = append(s.queue, e)
	s.bytes += n
	if len(s.queue) == 1 {
		s.signal()
	}
	return true
}

// eventBytes is what a queued event counts against Config.QueueBytes: its key and value.
func eventBytes(e Event) int { return len(e.Key) + len(e.Value) }

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Subscribe starts a subscription of path: a key, or a prefix ending in "/" ("/" for everything).
// The starting point and the first live event join without a gap or a duplicate: both are fixed
// under the state lock.
func (h *Hub) Subscribe(path string, opt SubscribeOptions) (*Subscription, error) {
	if err := h.limits.CheckPath(path); err != nil {
		return nil, err
	}
	s := &Subscription{Path: path, h: h, ready: make(chan struct{}, 1), limit: h.cfg.QueueSize}
	// The write lock, not the read lock: tree.Copy writes the tree (its copy-on-write id), so two
	// snapshot subscriptions under RLock would race.
	h.mu.Lock()
	// A replay or a plain subscription starts at the durable seq: it never shows a change whose
	// commit could still fail. Later commits reach it through the queue once they are durable.
	s.Start = h.durable
	snapshot := opt.Snapshot && opt.Since == nil
	if p := opt.Since; p != nil {
		if !p.Snapshot && p.Seq <= h.durable && h.history.canResume(*p) {
			s.Initial = h.history.since(*p, path, h.durable)
		} else {
			s.Reset, snapshot = true, true
		}
	}
	if snapshot {
		// A snapshot is the applied state, which may hold a commit whose fsync is in flight: the
		// subscription is handed out only once that commit is durable (below).
		s.Start = h.seq
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
		if err := h.waitDurable(s.Start); err != nil {
			s.Close()
			return nil, err
		}
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
	h.nsubs.Add(1)
	return nil
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	return int(h.nsubs.Load())
}

func (h *Hub) closeSubLocked(s *Subscription, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	h.nsubs.Add(-1)
	s.signal()
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
	// Every event with a seq up to this one was queued before this commit, under mu, so the
	// count sees it; at 0 there is nothing to hand out.
	if h.queued.Load() == 0 {
		return
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	h.pendMu.Lock()
	n := 0
	for n < len(h.pending) && h.pending[n].Seq <= seq {
		n++
	}
	events := h.pending[:n:n]
	switch {
	case n == 0:
	case n < len(h.pending):
		h.pending = h.pending[n:]
	default:
		// All taken: new events go into the array taken by the last publish, whose fan-out is
		// over (pubMu), and this one's array is kept for the next, so a steady stream of writes
		// allocates none. An array that grew large in a burst is let go.
		full := h.pending
		h.pending, h.spare = h.spare, nil
		if cap(full) <= maxSpareEvents {
			h.spare = full[:0]
		}
	}
	h.queued.Store(int64(len(h.pending)))
	h.pendMu.Unlock()
	if n == 0 {
		return
	}
	h.subsMu.Lock()
	if h.nsubs.Load() > 0 {
		for _, e := range events {
			h.fanoutLocked(e)
		}
	}
	h.subsMu.Unlock()
	clear(events) // the values live on in the tree and the history, not in a spare array
}

// maxSpareEvents bounds the array publish keeps for reuse.
const maxSpareEvents = 1024

// fanoutLocked offers e to the subscribers of its key and of every prefix above it.
func (h *Hub) fanoutLocked(e Event) {
	deliver := func(path string) {
		for s := range h.subs[path] {
			if e.Seq <= s.Start {
				continue
			}
			if !s.offer(e) {
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
func snapshotEvents(tree *btree.BTreeG[item], path string) []Event {
	var out []Event
	tree.Ascend(item{key: path}, func(it item) bool {
		if !Covers(path, it.key) {
			return !IsPrefix(path) && it.key == path // a key: stop after it
		}
		out = append(out, Event{Key: it.key, Value: it.value, Revision: it.revision, Seq: it.seq, Snapshot: true, Type: it.typ()})
		return IsPrefix(path)
	})
	return out
}
