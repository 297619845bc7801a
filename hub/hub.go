package hub

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/btree"
)

// Defaults for Config's zero fields.
const (
	DefaultHistorySize       = 100_000
	DefaultHistoryBytes      = 64 << 20
	DefaultQueueSize         = 4096
	DefaultQueueBytes        = 16 << 20
	DefaultIdempotencyWindow = 24 * time.Hour
	DefaultEphemeralGrace    = 10 * time.Second
)

// Config configures a Hub. Zero fields take the Default constants.
type Config struct {
	Limits            Limits
	HistorySize       int           // changes retained for resuming streams (default 100,000)
	HistoryBytes      int           // and the most bytes of keys and values they hold (default 64 MiB)
	QueueSize         int           // events buffered per subscriber before it is closed as slow (default 4096)
	QueueBytes        int           // and the most bytes of keys and values they hold (default 16 MiB; one event always fits)
	IdempotencyWindow time.Duration // how long an Idempotency-Key answer is remembered (default 24 h)
	MaxFileBytes      int64         // largest stored file (default DefaultMaxFileBytes, 100 MiB)
	EphemeralGrace    time.Duration // how long an ephemeral key outlives its session (default 10 s)
	Clock             Clock         // default SystemClock
	Journal           Journal       // persistence; nil keeps everything in memory only
	Logger            *slog.Logger  // default slog.Default()
}

// Journal is the persistence seam. The hub calls Append with every commit, in seq order, while it
// holds its state lock; Append must only buffer. The returned wait function blocks until the commit
// is durable (or returns the error that prevents it) and is called without the lock.
type Journal interface {
	Append(c *Commit) (wait func() error)
}

// Entry is a copy of one key's current state.
type Entry struct {
	Key      string
	Value    []byte    // compact JSON; nil for a subtree entry of a children listing
	Revision int64     // 0 when created, +1 on every change
	Seq      uint64    // seq of the key's last change; its ETag
	Expires  time.Time // zero when the key does not expire
	// Type is the content type of a stored file; empty for a JSON value. A file's Value is its
	// JSON description {"type","size","sha256"}; the bytes are in the blob store (OpenFile).
	Type string

	lock string // a held lock: the SHA-256 (hex) of its secret token; empty otherwise
	// Ephemeral keys are deleted once their session has been gone for longer than the grace
	// period (see Session).
	Ephemeral bool
	// Presence is an ephemeral key's owner (its token's subject and connection); nil for other
	// keys, and for an ephemeral key written before presences were recorded.
	Presence *Presence

	owner *Session // the session that owns an ephemeral key; nil after a restart
}

// Locked reports whether the entry is a held lock (its value is the lock's public state).
func (e Entry) Locked() bool { return e.lock != "" }

// Change is one key's new state inside a commit.
type Change struct {
	Key      string
	Value    []byte // nil when Deleted
	Revision int64  // the key's revision after the change (for a delete: the deleted revision + 1)
	Expires  time.Time
	Deleted  bool
	Type     string // content type of a stored file; empty for JSON (see Entry.Type)

	lock string // a lock's token hash (see Entry); persisted, never published
	// Ephemeral marks a key written through a Session (persisted; see Session).
	Ephemeral bool
	// Presence is the owner of an ephemeral key (persisted with it; see Presence).
	Presence *Presence
	// Reason says why an ephemeral key went (a delete: ReasonClosed, ReasonTimeout,
	// ReasonNodeLost) or was taken over (a set: ReasonReplaced); persisted, so a resume after a
	// restart shows it too.
	Reason string

	owner *Session // not persisted: after a restart no session owns anything
}

// IdemRecord remembers the answer to a write made with an idempotency key.
type IdemRecord struct {
	Key         string
	Fingerprint string // the operation and its target; a reuse for something else is refused
	Result      Result
	Expires     time.Time
}

// Commit is one atomic step of the state: every change in it takes effect at Seq. Changes are in
// key order and name each key at most once. It is the unit the Journal persists and replays.
type Commit struct {
	Seq     uint64
	Time    time.Time // the store's clock when it committed; zero in records of version 1
	Changes []Change
	Idem    *IdemRecord
}

// Local is the store of the single binary: it decides and orders every write, holds the tree of
// keys in memory, journals commits (the disk log when opened with Open) and hands each commit, once
// durable, to its Feed. See the package documentation for its invariants and locking.
type Local struct {
	// Set when the store is made (newLocal, and Open for blobs) and only read after.
	cfg    Config
	limits Limits
	clock  Clock
	log    *slog.Logger
	blobs  *blobStore // stored files' bytes: in memory, or on the store's FS (see blob.go)
	feed   Feed       // where durable commits go, in seq order

	// The state every write reads and changes, under mu.
	mu       sync.RWMutex
	closed   bool
	loading  bool                // replaying at start-up: no expiry timer yet
	failed   error               // set when the journal failed: writes are refused from then on
	tree     *btree.BTreeG[item] // every live key, in key order
	seq      uint64              // the last committed seq
	durable  atomic.Uint64       // the last seq known durable (== seq without a journal); set under mu
	advanced chan struct{}       // closed and replaced when durable advances or the journal fails
	expiry   expiryQueue         // TTL and idempotency deadlines
	expKept  int                 // len(expiry) after its last compaction (compactExpiryLocked)
	timerAt  time.Time           // when the expiry timer fires; zero when none is set
	stopTime func() bool
	idem     map[string]IdemRecord
	disc     map[string]discReg // pending on-disconnect writes by key (ondisconnect.go)
	store    *store             // the disk journal, when opened with Open
	// lastWait is the disk journal's wait for the commit h.seq (nil without a disk journal). Its
	// waits, unlike a Config.Journal's, may run any number of times, from any goroutine.
	lastWait func() error

	blobRefs     map[string]int // sha256 -> number of keys holding that file, under mu
	dropped      []string       // sha256s whose count fell to 0, swept after the commit, under mu
	blobsDropped atomic.Bool    // len(dropped) > 0, readable without mu

	pendMu  sync.Mutex   // guards pending; taken after mu, never before it
	pending []Event      // committed events not yet handed to the feed, in order
	spare   []Event      // an empty array for pending, reused by publish; under pendMu
	queued  atomic.Int64 // len(pending), readable without pendMu

	pubMu sync.Mutex // serializes publish, so the feed gets events in seq order
}

// New returns an empty hub over a memory-only store, or over cfg.Journal when it is set. Its stored
// files are kept in memory (MemoryBlobStore): it writes nothing to disk.
func New(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := newHub(cfg)
	h.Store = newLocal(cfg, h)
	return h
}

// withDefaults fills cfg's zero fields.
func (cfg Config) withDefaults() Config {
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = DefaultHistoryBytes
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.IdempotencyWindow <= 0 {
		cfg.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if cfg.EphemeralGrace <= 0 {
		cfg.EphemeralGrace = DefaultEphemeralGrace
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = DefaultMaxFileBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// newLocal returns an empty store (cfg has its defaults) that hands its commits to feed.
func newLocal(cfg Config, feed Feed) *Local {
	return &Local{
		cfg:      cfg,
		limits:   cfg.Limits.withDefaults(),
		clock:    cfg.Clock,
		log:      cfg.Logger,
		feed:     feed,
		tree:     newTree(),
		idem:     make(map[string]IdemRecord),
		disc:     make(map[string]discReg),
		blobs:    newBlobStore(NewMemoryBlobStore(), nil),
		blobRefs: make(map[string]int),
		advanced: make(chan struct{}),
	}
}

// Limits returns the key and value limits in force.
func (h *Local) Limits() Limits { return h.limits }

// Seq returns the last durable seq: every commit up to it survives a crash.
func (h *Local) Seq() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.durable.Load()
}

// Len returns the number of keys.
func (h *Local) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.tree.Len()
}

// Get returns a copy of key's entry, or ErrNotFound. It answers only once what it shows is
// durable: the entry's commit, or for an absent key every commit applied when it looked.
func (h *Local) Get(key string) (Entry, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Entry{}, err
	}
	h.mu.RLock()
	it, ok := h.tree.Get(item{key: key})
	shown := h.seq
	if ok {
		shown = it.seq
	}
	h.mu.RUnlock()
	if err := h.waitDurable(shown); err != nil {
		return Entry{}, err
	}
	if !ok {
		return Entry{}, ErrNotFound
	}
	return it.entry(), nil
}

// Replay applies a commit read back from the journal at start-up. Commits must come in seq order,
// before any write or subscription; Replay does not journal them again.
func (h *Local) Replay(c *Commit) {
	h.mu.Lock()
	h.applyLocked(c)
	h.durable.Store(h.seq) // it is in the log
	h.mu.Unlock()
	h.publish(c.Seq)
}

// commitLocked gives changes the next seq, applies them and hands the commit to the journal. The
// caller holds h.mu and must call wait, then publish(seq), after releasing it.
func (h *Local) commitLocked(changes []Change, idem *IdemRecord) (seq uint64, wait func() error) {
	c := Commit{Seq: h.seq + 1, Time: h.clock.Now(), Changes: changes, Idem: idem}
	if idem != nil {
		idem.Result.Seq = c.Seq
	}
	h.applyLocked(&c)
	if h.cfg.Journal == nil {
		h.durable.Store(c.Seq)
		return c.Seq, nil
	}
	// The journal gets a commit and changes of its own: the caller's changes need not outlive
	// this call.
	wait = h.cfg.Journal.Append(&Commit{Seq: c.Seq, Time: c.Time, Changes: slices.Clone(changes), Idem: idem})
	if h.store != nil {
		h.lastWait = wait
	}
	return c.Seq, wait
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// applyLocked makes a commit's changes visible: the tree, the seq, deadlines, idempotency records
// and the queue of events to hand to the feed.
func (h *Local) applyLocked(c *Commit) {
	// events is copied into the pending queue, so the usual commit of one change needs no
	// allocation for it (BenchmarkIncr's allocs/op).
	var one [1]Event
	events := one[:]
	if len(c.Changes) != 1 {
		events = make([]Event, len(c.Changes))
	}
	for i := range c.Changes {
		ch := &c.Changes[i]
		var old item
		var had bool
		if ch.Deleted {
			old, had = h.tree.Delete(item{key: ch.Key})
		} else {
			old, had = h.tree.Set(ch.item(c.Seq))
			if !ch.Expires.IsZero() {
				h.expiry.push(deadline{at: ch.Expires, key: ch.Key})
			}
			h.refBlobLocked(ch.Type, ch.Value)
		}
		if had {
			h.unrefBlobLocked(old.typ(), old.value())
		}
		h.ownLocked(&old, had, ch)
		pres := ch.Presence
		if had && old.ephemeral() {
			if ch.Deleted {
				pres = old.presence() // who left
			} else if ch.Reason == "" && old.presence().conn() != ch.Presence.conn() {
				ch.Reason = ReasonReplaced // journaled with the change (commitLocked clones after this)
			}
		}
		events[i] = Event{Key: ch.Key, Value: ch.Value, Revision: ch.Revision, Seq: c.Seq, Deleted: ch.Deleted, Type: ch.Type,
			Presence: pres, Reason: ch.Reason, Time: unixNano(c.Time)}
	}
	if c.Seq > h.seq {
		h.seq = c.Seq
	}
	if c.Idem != nil {
		h.idem[c.Idem.Key] = *c.Idem
		h.expiry.push(deadline{at: c.Idem.Expires, idem: c.Idem.Key})
	}
	h.pendMu.Lock()
	h.pending = append(h.pending, events...)
	h.queued.Store(int64(len(h.pending)))
	h.pendMu.Unlock()
	h.scheduleLocked()
}

// finish waits for a commit to become durable and then publishes it. A journal failure makes the
// hub refuse every later write: an acknowledged write is always a durable one.
//
// The first waiter of a group commit to get here advances durable to the end of the group (what
// the disk journal reports synced) and publishes the whole group: the others find their commit
// durable and published, and take no lock but pubMu.
func (h *Local) finish(seq uint64, wait func() error) error {
	if err := h.settle(seq, wait); err != nil {
		return err
	}
	h.sweepBlobs()
	return nil
}

// settle is finish without the sweep of stored files, for callers that may hold their lock
// (waitDurable, under OpenFile).
func (h *Local) settle(seq uint64, wait func() error) error {
	if wait != nil {
		if err := wait(); err != nil {
			h.mu.Lock()
			if h.failed == nil {
				h.failed = err
				h.log.Error("journal failed; refusing writes until restart", "err", err)
				close(h.advanced)
				h.advanced = make(chan struct{})
			}
			h.mu.Unlock()
			return &storageError{err}
		}
		if seq > h.durable.Load() {
			upTo := seq
			if h.store != nil {
				// Every commit up to the log's synced index is applied: it was appended after.
				upTo = max(upTo, h.store.log.Synced())
			}
			h.mu.Lock()
			if upTo > h.durable.Load() { // the journal makes commits durable in seq order
				h.durable.Store(upTo)
				close(h.advanced)
				h.advanced = make(chan struct{})
			}
			h.mu.Unlock()
			h.publish(upTo)
		}
	}
	h.publish(seq)
	return nil
}

// Since answers ErrCompacted: Local keeps no changes beyond the hub's history.
func (h *Local) Since(Position, string, uint64) ([]Event, error) { return nil, ErrCompacted }

// Check reports a failed journal (ErrUnavailable) or a closed store.
func (h *Local) Check() error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.writableLocked()
}

// Durable blocks until seq is durable, or the journal has failed (ErrUnavailable).
func (h *Local) Durable(seq uint64) error { return h.waitDurable(seq) }

// waitDurable blocks until seq is durable, or the journal has failed. Every answer that shows
// state (a read, a failed precondition, a snapshot) waits for the seq it shows before it leaves
// the hub, so no crash can take back what a client has seen.
//
// With the disk journal it does not wait for the commit's own writer, which may not come soon (a
// pipelined write's Pending.Wait runs when its answer's turn comes, or not at all): it waits for
// the newest commit itself and then advances durable and publishes, as that writer would (settle);
// the commit's stored files are swept by a writer's finish.
// Under SyncAlways it joins that commit's group commit, leading it if no one does.
func (h *Local) waitDurable(seq uint64) error {
	for {
		h.mu.RLock()
		durable, failed, advanced := h.durable.Load(), h.failed, h.advanced
		top, wait := h.seq, h.lastWait
		h.mu.RUnlock()
		switch {
		case durable >= seq:
			return nil
		case failed != nil:
			return &storageError{failed}
		case wait != nil && top >= seq:
			h.settle(top, wait) // a failure sets failed, reported above
			continue
		}
		<-advanced
	}
}

type storageError struct{ err error }

func (e *storageError) Error() string   { return ErrUnavailable.Error() + ": " + e.err.Error() }
func (e *storageError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// Close stops the expiry timer and, for a store from Open, flushes and closes the log. It returns
// the error of that final flush, or of an earlier failure of the journal: then not every commit
// applied is durable. Writes after Close fail with ErrClosed.
func (h *Local) Close() error {
	h.mu.Lock()
	h.closed = true
	if h.stopTime != nil {
		h.stopTime()
		h.stopTime = nil
	}
	s := h.store
	h.mu.Unlock()
	var err error
	if s != nil {
		err = s.close()
	}
	h.closeBlobs()
	return err
}
