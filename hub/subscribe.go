package hub

import (
	"sync"
)

// Event is one change of one key, one entry of a snapshot, or a broadcast message.
type Event struct {
	Key      string
	Value    []byte // compact JSON; nil for a delete
	Revision int64
	Seq      uint64
	Deleted  bool
	Snapshot bool   // an entry of a snapshot or reset (the key's state at Seq), not a change
	Type     string // a stored file's content type (Value is then its JSON description); empty for JSON
	// Broadcast marks a message sent with Hub.Broadcast, not a change: Key is the path it was
	// sent to (a key or a prefix), Value the message. It has no position: it is never in the
	// history, a replay or a snapshot, and Seq is only where the store ordered it among the
	// commits (Etcd: the revision that carried it; Local: 0), never shown to clients.
	Broadcast bool

	enc *encodings // a delivered change's or broadcast's shared encodings (AppendEncoded); nil for any other event
	// Presence is the owner of an ephemeral key: on its set events and snapshot entries, and on
	// the delete event of its departure (who left). Nil for plain keys.
	Presence *Presence
	// Reason says why an ephemeral key left (on its delete event) or changed hands (on a set
	// event: ReasonReplaced); "" otherwise. See the Reason constants.
	Reason string
	// Time is when the change was committed, Unix nanoseconds: the store's clock at the commit
	// (Local), the writing node's clock at the write (Etcd); 0 when unknown (a change replayed
	// from a log record before version 3, a delete in etcd, a snapshot entry).
	Time int64
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
	// Notify, when set, is called in place of signalling Ready: when the queue becomes non-empty
	// and when the subscription is closed; then call Take. It is called with the hub's locks held,
	// so it must not block nor call into the hub: it signals a channel of its own (one goroutine
	// waiting for several subscriptions) or starts a goroutine (a stream with none while idle).
	// Ready and Next are not for such a subscription.
	Notify func()
	// BroadcastsOnly makes a subscription of the path's broadcasts alone (Event.Broadcast): no
	// replay, snapshot or change ever reaches it, and a change costs it nothing, as it is not
	// among the subscriptions a change visits. Since and Snapshot are ignored; Start is the
	// position it was opened at.
	BroadcastsOnly bool
}

// Subscription delivers the changes of a path. Read Initial (a replay) or the entries of a snapshot
// or reset (NextEntries, page by page) first, then the live queue (Ready and Take); together they
// hold every change of the path after the starting position exactly once, in (seq, key) order.
// The queue also holds the broadcasts (Event.Broadcast) delivered while it is open, between the
// changes as they were delivered; they are no part of any replay. The queue is bounded in events
// (Config.QueueSize) and in bytes of keys and values (Config.QueueBytes; an event always fits an
// empty queue, however large): a subscriber that falls further behind is closed with
// ErrSlowConsumer, and resumes from its position. It is also closed at shutdown (ErrShutdown) and
// by Close (nil). Memory grows with the backlog, up to the bounds.
type Subscription struct {
	Path    string
	Initial []Event // a replay: the changes after SubscribeOptions.Since; nil for a snapshot or reset
	Reset   bool    // the entries (NextEntries) are the current state after a reset
	Start   uint64  // Initial or the entries bring the subscriber up to this seq; the queue holds only later events

	first   []Event // the first page of the entries, read by Subscribe
	entries Entries // the rest; nil once read

	h      *Hub
	ready  chan struct{} // capacity 1: signalled when the queue becomes non-empty or is closed; nil with notify
	notify func()        // SubscribeOptions.Notify
	limit  int
	// broadcastsOnly: of broadcasts alone (SubscribeOptions.BroadcastsOnly), in the hub's bsubs.
	broadcastsOnly bool

	mu     sync.Mutex // guards queue, bytes, closed and err
	queue  []Event
	bytes  int // eventBytes of the queued events
	closed bool
	err    error
	once   sync.Once
}

// NextEntries appends the next page of a snapshot's or reset's entries to buf (at most
// PageEntries), and returns buf unchanged once every entry has been read, or for a subscription
// without a snapshot. An error (ErrUnavailable: a cluster store lost the state it fixed) means the
// subscription cannot start: close it; its client resumes. Only the subscription's reader calls
// it, before reading the queue.
func (s *Subscription) NextEntries(buf []Event) ([]Event, error) {
	if s.first != nil {
		buf = append(buf, s.first...)
		clear(s.first)
		s.first = nil
		return buf, nil
	}
	if s.entries == nil {
		return buf, nil
	}
	n := len(buf)
	buf, err := s.entries.Next(buf)
	if err != nil || len(buf) == n {
		s.entries = nil
	}
	return buf, err
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
// drained. It is for consumers that handle one event at a time, on a subscription without
// SubscribeOptions.Notify; transports batch with Take.
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
		s.h.mu.Lock()
		s.h.closeSubLocked(s, nil)
		s.h.mu.Unlock()
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

// eventBytes is what a queued event counts against Config.QueueBytes: its key, value and presence.
func eventBytes(e Event) int { return len(e.Key) + len(e.Value) + e.Presence.size() }

func (s *Subscription) signal() {
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Snapshot fixes the state of path as of the last applied seq (see Store). The tree is copied in
// O(1) (copy-on-write), so its entries are read from the copy, page by page, without the lock.
func (h *Local) Snapshot(path string) (uint64, Entries) {
	h.mu.Lock() // not RLock: tree.Copy writes the tree's copy-on-write id
	tree, seq := h.tree.Copy(), h.seq
	h.mu.Unlock()
	return seq, &treeEntries{tree: tree, path: path, from: path}
}

// publish hands every pending event up to seq to the feed, in order.
func (h *Local) publish(seq uint64) {
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
	h.feed.Deliver(events)
	clear(events) // the values live on in the tree and the history, not in a spare array
}

// maxSpareEvents bounds the array publish keeps for reuse.
const maxSpareEvents = 1024
