package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Store is the seam between deciding and fanning out. A store decides and orders: it checks
// and applies every write, gives each commit its seq, reads keys and subtrees, and owns TTL
// expiry, sessions (the lifetime of ephemeral keys) and stored files. It hands every commit, once
// durable, to its Feed, in seq order. The Hub above it fans out and never learns which store it
// has. Local is the store of the single binary.
type Store interface {
	Limits() Limits
	MaxFileBytes() int64
	Seq() uint64 // the last durable seq
	Len() int

	// Reads answer only once what they show is durable.
	Get(key string) (Entry, error)
	OpenFile(key string) (Entry, io.ReadSeekCloser, error)
	List(prefix string, opt ListOptions) (Page, error)
	// Snapshot fixes the state of path as of the returned seq (at least every seq already
	// delivered to the feed). entries reads it later, page by page, without any lock held; the
	// seq may not be durable yet: call Durable before showing it.
	Snapshot(path string) (seq uint64, entries Entries)
	// Durable blocks until seq is durable; ErrUnavailable when it never will be.
	Durable(seq uint64) error
	// Since returns the changes of path after position p up to seq upTo, in order, for a resume
	// older than the hub's history; ErrCompacted when the store no longer holds them.
	Since(p Position, path string, upTo uint64) ([]Event, error)

	// Writes answer once their commit is durable; with WriteOptions.Pending a store may answer
	// once the write is applied and leave the wait to Pending.Wait (Local does; Etcd answers
	// durable writes only).
	Set(key string, value []byte, cond Cond, opt WriteOptions) (Result, error)
	SetFile(key, contentType string, body io.Reader, cond Cond, opt WriteOptions) (Result, error)
	Incr(key string, by int64, opt WriteOptions) (Result, error)
	Delete(key string, cond Cond, opt WriteOptions) (Result, error)
	DeletePrefix(prefix string, opt WriteOptions) (Result, error)
	Tx(checks []TxCheck, ops []TxOp, opt WriteOptions) (TxResult, error)
	TryLock(key string, opt LockOptions) (Lock, error)
	RenewLock(key, token string, ttl time.Duration) (Lock, error)
	Unlock(key, token string) (Result, error)
	NewSession() *Session
	// OnDisconnect registers a write the store makes once s has ended for longer than the grace
	// period, or when the node holding s is lost (ondisconnect.go): one pending write per key,
	// the latest registration's. ErrTooManyDisconnectWrites past MaxDisconnectWrites per session.
	OnDisconnect(s *Session, w DisconnectWrite) error
	// CancelDisconnect drops s's pending write of key ("" for all of them).
	CancelDisconnect(s *Session, key string) error
	// Broadcast hands msg (compact JSON) for the subscribers of path to the feed of every node
	// that shares the store, as an Event with Broadcast set, ordered among the commits as the
	// store saw them: after every commit this node has answered. It is never journaled, fsynced,
	// kept in the history or read back. It returns once this node's feed has it; in a cluster,
	// other nodes' feeds get it through their own watch of the store, a moment later. Callers
	// check path and msg (Hub.Broadcast).
	Broadcast(path string, msg []byte) error

	Stats() Stats
	// Check reports whether the store can take writes now: nil, or an error wrapping
	// ErrUnavailable (a failed journal, an unreachable etcd) or ErrClosed.
	Check() error
	WriteBackup(w io.Writer) (uint64, error)
	Checkpoint() error
	Close() error
}

// Feed receives a store's commits. Start comes first: the store begins at seq, and nothing at or
// before it will be delivered; a later Start means the store lost its place (a cluster store
// whose watch fell behind retention) and begins again at seq. Deliver gets the events of one or
// more commits, in (seq, key) order, each commit whole and durable, and broadcasts (Event.Broadcast)
// among them in the order the store saw them; a broadcast's Seq, when not 0, is a position the
// store has passed. Advance says the store has passed seq, a commit with no event of the feed's
// (a cluster store's bookkeeping: a reason marker, an on-disconnect registration), after
// delivering every event before it. Interrupt says deliveries stopped for a while (err wraps
// ErrUnavailable) and will go on where they were. Calls never overlap.
type Feed interface {
	Start(seq uint64)
	Deliver(events []Event)
	Advance(seq uint64)
	Interrupt(err error)
}

// Hub fans a store's commits out to subscriptions and serves the store's key API (embedded)
// alongside. It keeps the history that resumes streams, starts subscriptions (snapshot then live,
// or a replay), and wakes lock waiters. See the package documentation for its invariants.
type Hub struct {
	Store

	cfg Config

	mu            sync.Mutex                            // guards everything below
	history       history                               // recent delivered events, for resuming streams
	delivered     uint64                                // the seq of the last event delivered by the store
	subs          map[string]map[*Subscription]struct{} // by path: the subscriptions of changes and broadcasts
	bsubs         map[string]map[*Subscription]struct{} // by path: those of broadcasts alone (SubscribeOptions.BroadcastsOnly)
	nsubs         int
	slowConsumers uint64                   // subscriptions closed as slow consumers, for Stats
	lockWait      map[string][]*lockWaiter // per key, the waiters of Lock in arrival order: the head attempts
	deliveredCh   chan struct{}            // closed at the next delivery, when a resume waits for one (nil: none waits)
	draining      bool
	closed        bool
	drained       chan struct{} // closed by Drain
}

// newHub returns a hub without its store (cfg has its defaults); the caller sets Store.
func newHub(cfg Config) *Hub {
	return &Hub{
		cfg:      cfg,
		history:  newHistory(cfg.HistorySize, cfg.HistoryBytes),
		subs:     make(map[string]map[*Subscription]struct{}),
		bsubs:    make(map[string]map[*Subscription]struct{}),
		lockWait: make(map[string][]*lockWaiter),
		drained:  make(chan struct{}),
	}
}

// Start implements Feed: the history starts empty at seq. Subscriptions open then (a store that
// lost its place) end with ErrUnavailable and resume: a resume the history no longer covers
// resets.
func (h *Hub) Start(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history.reset(seq)
	h.delivered = seq
	h.wakeResumesLocked()
	h.closeAllLocked(fmt.Errorf("%w: the store's feed starts again", ErrUnavailable))
}

// Interrupt implements Feed: every subscription ends with err, and its client resumes from its
// position once the store is back.
func (h *Hub) Interrupt(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeAllLocked(err)
}

func (h *Hub) closeAllLocked(err error) {
	for _, index := range []map[string]map[*Subscription]struct{}{h.subs, h.bsubs} {
		for _, set := range index {
			for s := range set {
				h.closeSubLocked(s, err)
			}
		}
	}
}

// indexOf returns the index s is in: h.bsubs for a subscription of broadcasts alone, else h.subs.
func (h *Hub) indexOf(s *Subscription) map[string]map[*Subscription]struct{} {
	if s.broadcastsOnly {
		return h.bsubs
	}
	return h.subs
}

// Deliver implements Feed: the events go into the history, to every subscription of their keys
// and of the prefixes above them, and wake whoever waits for a lock on their keys. A broadcast
// only goes to the subscriptions. Sends never block: a subscriber whose queue is full is closed
// with ErrSlowConsumer and resumes from its position.
func (h *Hub) Deliver(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range events {
		e := &events[i]
		if !e.Broadcast {
			h.history.add(e)
			if len(h.lockWait) > 0 {
				h.wakeLockWaitersLocked(e.Key)
			}
		}
		if h.nsubs > 0 {
			h.fanoutLocked(*e)
		}
	}
	h.delivered = max(h.delivered, events[len(events)-1].Seq)
	h.wakeResumesLocked()
}

// Advance implements Feed: the delivered position moves to seq, so a read or resume that waits
// for the store's seq (awaitDelivered) does not wait for an event that never comes.
func (h *Hub) Advance(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq > h.delivered {
		h.delivered = seq
		h.wakeResumesLocked()
	}
}

func (h *Hub) wakeResumesLocked() {
	if h.deliveredCh != nil {
		close(h.deliveredCh)
		h.deliveredCh = nil
	}
}

// resumeWait bounds how long a resume waits for the feed to reach its position.
const resumeWait = 5 * time.Second

// awaitDelivered waits until the feed has delivered seq, when the store has committed it: in a
// cluster, a position another node showed may be ahead of this node's feed by a moment, and a
// resume from it must not reset. A position past the store's seq, or a wait past resumeWait on
// the hub's clock, returns at once (the resume then resets).
func (h *Hub) awaitDelivered(seq uint64) {
	h.mu.Lock()
	behind := seq > h.delivered
	h.mu.Unlock()
	if !behind || seq > h.Store.Seq() {
		return
	}
	timeout := make(chan struct{})
	stop := h.cfg.Clock.AfterFunc(resumeWait, func() { close(timeout) })
	defer stop()
	for {
		h.mu.Lock()
		if seq <= h.delivered || h.closed {
			h.mu.Unlock()
			return
		}
		if h.deliveredCh == nil {
			h.deliveredCh = make(chan struct{})
		}
		ch := h.deliveredCh
		h.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			return
		}
	}
}

// Subscribe starts a subscription of path: a key, or a prefix ending in "/" ("/" for everything).
// The starting point and the first live event join without a gap or a duplicate: both are fixed
// under the hub's lock, which every delivery takes.
func (h *Hub) Subscribe(path string, opt SubscribeOptions) (*Subscription, error) {
	if err := h.Limits().CheckPath(path); err != nil {
		return nil, err
	}
	if p := opt.Since; p != nil && !p.Snapshot {
		h.awaitDelivered(p.Seq)
	}
	s := &Subscription{Path: path, h: h, notify: opt.Notify, limit: h.cfg.QueueSize, broadcastsOnly: opt.BroadcastsOnly}
	if s.notify == nil {
		s.ready = make(chan struct{}, 1)
	}
	if s.broadcastsOnly {
		opt.Since, opt.Snapshot = nil, false
	}
	h.mu.Lock()
	if h.draining {
		h.mu.Unlock()
		return nil, ErrShutdown
	}
	// A replay or a plain subscription starts at the last delivered seq, which is durable. Later
	// commits reach it through the queue.
	s.Start = h.delivered
	snapshot := opt.Snapshot && opt.Since == nil
	catchUp := false // the changes after Since come from the store, not the history
	if p := opt.Since; p != nil {
		switch {
		case !p.Snapshot && p.Seq <= h.delivered && h.history.canResume(*p):
			s.Initial = h.history.since(*p, path, h.delivered)
		case !p.Snapshot && p.Seq <= h.delivered && p.Seq > 0:
			catchUp = true
		default:
			s.Reset, snapshot = true, true
		}
	}
	var entries Entries
	if snapshot {
		// The store's state may hold commits not yet delivered: the subscription skips those
		// (they are in the snapshot) and is handed out once they are durable (below).
		s.Start, entries = h.Store.Snapshot(path)
	}
	index := h.indexOf(s)
	set := index[s.Path]
	if set == nil {
		set = make(map[*Subscription]struct{})
		index[s.Path] = set
	}
	set[s] = struct{}{}
	h.nsubs++
	h.mu.Unlock()
	if catchUp {
		events, err := h.Store.Since(*opt.Since, path, s.Start)
		if err == nil {
			s.Initial = events
			return s, nil
		}
		s.Close()
		if !errors.Is(err, ErrCompacted) {
			return nil, err
		}
		// Gone from the store too: start again with a reset.
		return h.Subscribe(path, SubscribeOptions{Since: &Position{Seq: opt.Since.Seq, Snapshot: true}, Notify: opt.Notify})
	}
	if snapshot {
		// Nothing is shown before it is durable. The first page is read here, so a store that
		// cannot read the state fails the subscription at once; the rest is read as it is sent.
		err := h.Store.Durable(s.Start)
		if err == nil {
			s.first, err = entries.Next(nil)
			s.entries = entries
		}
		if err != nil {
			s.Close()
			return nil, err
		}
		if s.first == nil {
			s.entries = nil // an empty subtree
		}
	}
	return s, nil
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nsubs
}

func (h *Hub) closeSubLocked(s *Subscription, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.err = err
	index := h.indexOf(s)
	set := index[s.Path]
	delete(set, s)
	if len(set) == 0 {
		delete(index, s.Path)
	}
	h.nsubs--
	s.signal()
}

// fanoutLocked offers e to the subscribers of its key and of every prefix above it (a broadcast
// to a prefix: of that prefix and every prefix above it). A subscription skips the changes its
// start covers; a broadcast has no position and reaches every subscription open when it comes,
// those of broadcasts alone too, which a change never visits. Their copies share one set of
// encodings (AppendEncoded), made for the first.
func (h *Hub) fanoutLocked(e Event) {
	deliver := func(path string) {
		h.offerLocked(h.subs[path], &e)
		if e.Broadcast {
			h.offerLocked(h.bsubs[path], &e)
		}
	}
	deliver(e.Key)
	for i := len(e.Key) - 2; i >= 0; i-- { // a key never ends in "/"; a prefix is delivered above
		if e.Key[i] == '/' {
			deliver(e.Key[:i+1])
		}
	}
}

// offerLocked offers e to the subscriptions of set (fanoutLocked), giving e its encodings for the
// first.
func (h *Hub) offerLocked(set map[*Subscription]struct{}, e *Event) {
	for s := range set {
		if e.Seq <= s.Start && !e.Broadcast {
			continue
		}
		if e.enc == nil {
			e.enc = new(encodings)
		}
		if !s.offer(*e) {
			h.slowConsumers++
			h.closeSubLocked(s, ErrSlowConsumer)
		}
	}
}

// Drain closes every subscription with ErrShutdown, refuses new ones and ends every lock wait.
func (h *Hub) Drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := !h.draining
	h.draining = true
	h.closeAllLocked(ErrShutdown)
	if first {
		close(h.drained) // after the subscriptions: whoever sees it closed finds them closed
	}
}

// Draining returns a channel that is closed when the hub starts shutting down (Drain), once every
// subscription is closed: transports end their connections then, with a reconnect hint.
func (h *Hub) Draining() <-chan struct{} { return h.drained }

// Lock acquires the lock on key. When it is held, Lock fails with a *LockedError (ErrLocked) at
// once or, with opt.Wait, after waiting that long on the hub's Clock for it to be released or to
// expire; ctx ends the wait early. A wait ends with ErrShutdown as soon as the hub drains (Drain),
// or at once when it has drained already, so a waiter never holds up a shutdown. A key that holds
// a plain value fails with ErrNotLock.
//
// Waiters of a key are served in arrival order: they queue in the hub, and only the head of the
// queue attempts the lock, at once when it arrives at the head and again at each delivered change
// of the key. It leaves the queue when it gets the lock, gives up or fails, and the next waiter
// becomes the head. The queue is this hub's: an attempt without a wait, or through another node
// of a cluster, is not queued and may take a free lock first.
func (h *Hub) Lock(ctx context.Context, key string, opt LockOptions) (Lock, error) {
	if opt.Wait < 0 {
		return Lock{}, fmt.Errorf("%w: negative", ErrInvalidTTL)
	}
	if opt.Wait == 0 {
		return h.Store.TryLock(key, opt)
	}
	done := make(chan struct{})
	stop := h.cfg.Clock.AfterFunc(opt.Wait, func() { close(done) })
	defer stop()
	w := h.enqueueLockWaiter(key)
	defer h.leaveLockQueue(key, w)
	var err error
	for {
		select {
		case <-w.wake: // the turn comes first: a head attempts even when ctx has ended
		default:
			select {
			case <-w.wake:
			case <-done:
				return Lock{}, h.lockedErr(key, err)
			case <-ctx.Done():
				return Lock{}, h.lockedErr(key, err)
			case <-h.drained:
				return Lock{}, fmt.Errorf("%w: no longer waiting for the lock on %s", ErrShutdown, key)
			}
		}
		// The head attempts. A change delivered during the attempt leaves a wake-up in w.wake (it
		// holds one), so a release is never missed.
		var lk Lock
		lk, err = h.Store.TryLock(key, opt)
		if !errors.Is(err, ErrLocked) {
			return lk, err
		}
	}
}

// lockedErr is the answer of a wait that ends without the lock: the last attempt's error, or,
// for a waiter that never reached the head of the queue, the lock as it is now.
func (h *Hub) lockedErr(key string, err error) error {
	if err != nil {
		return err
	}
	e := &LockedError{Key: key}
	if cur, gerr := h.Store.Get(key); gerr == nil {
		var st LockState
		json.Unmarshal(cur.Value, &st)
		e.Owner, e.Fence, e.Expires = st.Owner, st.Fence, st.Expires
	}
	return e
}

// A lockWaiter is one Lock call in a key's queue. wake holds one wake-up: the head's turn to
// attempt.
type lockWaiter struct {
	wake chan struct{}
}

// enqueueLockWaiter queues a waiter for key; the head of an empty queue is woken at once.
func (h *Hub) enqueueLockWaiter(key string) *lockWaiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &lockWaiter{wake: make(chan struct{}, 1)}
	q := h.lockWait[key]
	h.lockWait[key] = append(q, w)
	if len(q) == 0 || h.closed {
		w.wake <- struct{}{} // after Close, the attempt gets ErrClosed
	}
	return w
}

// leaveLockQueue removes w from key's queue and, when it was the head, wakes the next waiter.
func (h *Hub) leaveLockQueue(key string, w *lockWaiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.lockWait[key]
	for i, x := range q {
		if x != w {
			continue
		}
		q = append(q[:i:i], q[i+1:]...)
		if len(q) == 0 {
			delete(h.lockWait, key)
		} else {
			h.lockWait[key] = q
			if i == 0 {
				wakeLockWaiter(q[0])
			}
		}
		return
	}
}

// lockWaiters returns how many Lock calls wait for key (tests).
func (h *Hub) lockWaiters(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lockWait[key])
}

func wakeLockWaiter(w *lockWaiter) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// wakeLockWaitersLocked gives the head of key's queue its turn: key changed.
func (h *Hub) wakeLockWaitersLocked(key string) {
	if q := h.lockWait[key]; len(q) > 0 {
		wakeLockWaiter(q[0])
	}
}

// Stats returns the store's statistics with the hub's subscriptions and history.
func (h *Hub) Stats() Stats {
	st := h.Store.Stats()
	h.mu.Lock()
	defer h.mu.Unlock()
	st.Subscribers, st.SlowConsumers = h.nsubs, h.slowConsumers
	st.HistoryEvents = h.history.n
	st.HistoryCapacity = len(h.history.meta)
	st.HistoryFloor = h.history.floorSeq
	st.HistoryBytes = h.history.used
	return st
}

// Close ends every subscription with ErrShutdown, wakes lock waiters (they end with ErrShutdown or
// ErrClosed), then closes the store and returns its error: for a hub from Open, that of the final
// flush of the log.
func (h *Hub) Close() error {
	h.Drain()
	h.mu.Lock()
	h.closed = true
	h.wakeResumesLocked()
	for _, q := range h.lockWait {
		for _, w := range q {
			wakeLockWaiter(w)
		}
	}
	h.mu.Unlock()
	return h.Store.Close()
}
