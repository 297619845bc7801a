package hub

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/tidwall/btree"
)

// WriteOptions are the options every write accepts.
type WriteOptions struct {
	TTL         time.Duration // > 0: the key is deleted this long after the write
	Idempotency string        // non-empty: a repeat within the window answers the first result and changes nothing
	// Session, for Set only: non-nil makes the key ephemeral, owned by this session (see Session).
	Session *Session
	// Pending, when set, pipelines the write: it returns once its commit is applied and
	// journaled, before it is durable, and leaves its wait for durability in *Pending (see
	// Pending). Nil: the write waits itself and answers only once durable.
	Pending *Pending
	// Subject, with Session, is the writer's token subject, recorded in the key's Presence.
	Subject string
}

// A Pending holds the durability wait of a write made with WriteOptions.Pending. The write's
// answer, a result or an error (whose current revision shows the state), may be shown to anyone
// only after Wait has returned nil: then what it shows is durable and its commit has reached the
// subscribers. Writes made one after another this way apply in that order while earlier ones
// wait, and their commits share fsyncs (group commit). Wait must be called once for every such
// write that returns, even when its answer is no longer wanted: until then its commit may not be
// published. A store that answers only once a write is durable (Etcd, and Local without a
// journal) leaves nothing to wait for.
type Pending struct{ wait func() error }

// Wait blocks until the write's commit, or the state its error shows, is durable, and publishes
// it. It returns an error wrapping ErrUnavailable when the journal failed before that: the answer
// must not be shown. Later calls return nil at once.
func (p *Pending) Wait() error {
	w := p.wait
	p.wait = nil
	if w == nil {
		return nil
	}
	return w()
}

// Ready reports whether the write left nothing to wait for: Wait returns nil at once.
func (p *Pending) Ready() bool { return p.wait == nil }

// wait runs w now, or, for a pipelined write (opt.Pending), leaves it to the caller.
func (opt WriteOptions) wait(w func() error) error {
	if opt.Pending == nil {
		return w()
	}
	opt.Pending.wait = w
	return nil
}

// Cond is a write's precondition. The zero Cond always holds.
type Cond struct {
	// NextRevision, when set, is the revision the write must produce: the current revision + 1, or 0
	// to create an absent key (AtomKV's X-Revision). Failure: ErrRevisionConflict.
	NextRevision *int64
	// Revision, when set, is the revision the key must be at now (a conditional delete).
	// Failure: ErrRevisionConflict.
	Revision *int64
	// MatchSeqs, when non-empty, lists ETags (seqs of the last change) one of which the key must
	// have; MatchAny requires only that it exists (If-Match). Seq 0 is no key's ETag: it stands
	// for an entity tag the server never issued, which matches nothing. Failure:
	// ErrPreconditionFailed.
	MatchSeqs []uint64
	MatchAny  bool
	// Absent requires that the key does not exist (If-None-Match: *). Failure: ErrPreconditionFailed.
	Absent bool
	// Fence, when non-zero, is the fence of a lock the writer holds (If-Fence): the lock at
	// FenceLock must be held with this fence, atomically with the write. Failure (the lock was
	// released, expired or taken again since): a *FenceError, which matches ErrFenceStale.
	// FenceLock empty names the written key itself.
	Fence     uint64
	FenceLock string
}

// FenceError reports a fenced write refused because its lock has moved past the writer's fence.
// It matches ErrFenceStale. Current is the lock's fence now, 0 when no lock is held there.
type FenceError struct {
	Lock           string
	Fence, Current uint64
}

func (e *FenceError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("%v: fence %d: %s holds no lock (released or expired)", ErrFenceStale, e.Fence, e.Lock)
	}
	return fmt.Sprintf("%v: fence %d: %s is held with fence %d", ErrFenceStale, e.Fence, e.Lock, e.Current)
}

func (e *FenceError) Unwrap() error { return ErrFenceStale }

// keys returns the keys a write of key under c reads: key, and c's fence lock when it has one.
func (c Cond) keys(key string) []string {
	if c.Fence != 0 && c.FenceLock != "" && c.FenceLock != key {
		return []string{key, c.FenceLock}
	}
	return []string{key}
}

// checkFence tests c's fence against the lock in v.
func (c Cond) checkFence(key string, v view) error {
	if c.Fence == 0 {
		return nil
	}
	if c.FenceLock != "" {
		key = c.FenceLock
	}
	cur, ok := v.get(key)
	var st LockState
	if ok && cur.lock() != "" {
		json.Unmarshal(cur.value(), &st) // our own JSON
	}
	if st.Fence != c.Fence {
		return &FenceError{Lock: key, Fence: c.Fence, Current: st.Fence}
	}
	return nil
}

// check tests c against the key's current entry (ok false when absent).
func (c Cond) check(key string, cur *item, ok bool) error {
	rev := int64(-1)
	if ok {
		rev = cur.revision
	}
	conflict := func(err error) error {
		return &ConflictError{Err: err, Key: key, Revision: rev, Seq: cur.seq}
	}
	if c.NextRevision != nil && *c.NextRevision != rev+1 {
		return conflict(ErrRevisionConflict)
	}
	if c.Revision != nil && *c.Revision != rev {
		return conflict(ErrRevisionConflict)
	}
	if c.Absent && ok {
		return conflict(ErrPreconditionFailed)
	}
	if (c.MatchAny || len(c.MatchSeqs) > 0) && !ok {
		return conflict(ErrPreconditionFailed)
	}
	if len(c.MatchSeqs) > 0 {
		for _, s := range c.MatchSeqs {
			if s == cur.seq {
				return nil
			}
		}
		return conflict(ErrPreconditionFailed)
	}
	return nil
}

// Result is the answer to a write.
type Result struct {
	Key      string
	Revision int64  // the key's revision after the write (for a delete: the deleted revision + 1)
	Seq      uint64 // the commit's seq; for a write that changed nothing, the current seq
	Value    []byte // Incr: the new value
	Deleted  int    // DeletePrefix: how many keys were deleted
	Replayed bool   // the answer comes from an earlier request with the same idempotency key
}

// Set stores value (compact JSON, as returned by Limits.CompactJSON) under key if cond holds.
func (h *Local) Set(key string, value []byte, cond Cond, opt WriteOptions) (Result, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return h.write(opt, intent{op: "set", key: key, body: value, cond: cond}, putStep(key, value, "", cond, opt))
}

// putStep is the read-check-change step of storing value, of content type typ ("" for JSON), under
// key: Set and SetFile share it.
func putStep(key string, value []byte, typ string, cond Cond, opt WriteOptions) buildFunc {
	return func(now time.Time, v view) (step, error) {
		if err := cond.checkFence(key, v); err != nil {
			return step{}, err
		}
		cur, ok := v.get(key)
		if err := cond.check(key, &cur, ok); err != nil {
			return step{}, err
		}
		if err := checkNotLocked(&cur, ok); err != nil {
			return step{}, err
		}
		rev, k := int64(0), key
		if ok {
			rev, k = cur.revision+1, cur.key // see Incr
		}
		ch := Change{Key: k, Value: value, Revision: rev, Expires: expiresAt(now, opt.TTL), Type: typ,
			Ephemeral: opt.Session != nil, Presence: newPresence(opt.Session, opt.Subject), owner: opt.Session}
		return step{res: Result{Key: key, Revision: rev}, one: ch}, nil
	}
}

// Incr adds by to the 64-bit integer at key, creating it at by. It fails with ErrNotInteger when the
// value is not an integer literal in range, and with ErrOverflow when the sum does not fit.
func (h *Local) Incr(key string, by int64, opt WriteOptions) (Result, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return h.write(opt, intent{op: "incr", key: key, n: by}, incrStep(key, by, opt))
}

// incrStep is the read-check-change step of Incr.
func incrStep(key string, by int64, opt WriteOptions) buildFunc {
	return func(now time.Time, v view) (step, error) {
		cur, ok := v.get(key)
		if err := checkNotLocked(&cur, ok); err != nil {
			return step{}, err
		}
		value, err := incremented(key, &cur, ok, by)
		if err != nil {
			return step{}, err
		}
		rev := int64(0)
		if ok {
			rev = cur.revision + 1
		}
		expires := expiresAt(now, opt.TTL)
		if opt.TTL == 0 && ok {
			expires = cur.expires() // a counter keeps its TTL unless the increment sets a new one
		}
		ch := Change{Key: key, Value: value, Revision: rev, Expires: expires}
		return step{res: Result{Key: key, Revision: rev, Value: value}, one: ch}, nil
	}
}

// incremented returns the value of an integer key after adding by: the current value (ok) plus
// by, or by for an absent key. Incr and a transaction's incr share it.
func incremented(key string, cur *item, ok bool, by int64) ([]byte, error) {
	n := by
	if ok {
		v, err := strconv.ParseInt(string(cur.value()), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s holds %.40s", ErrNotInteger, key, cur.value())
		}
		if n, err = addInt64(v, by); err != nil {
			return nil, fmt.Errorf("%w: %s: %d + %d", err, key, v, by)
		}
	}
	return strconv.AppendInt(nil, n, 10), nil
}

func addInt64(a, b int64) (int64, error) {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Delete removes key if cond holds; ErrNotFound when it is absent.
func (h *Local) Delete(key string, cond Cond, opt WriteOptions) (Result, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return h.write(opt, intent{op: "delete", key: key, cond: cond}, deleteStep(key, cond))
}

// deleteStep is the read-check-change step of Delete.
func deleteStep(key string, cond Cond) buildFunc {
	return func(_ time.Time, v view) (step, error) {
		if err := cond.checkFence(key, v); err != nil {
			return step{}, err
		}
		cur, ok := v.get(key)
		if err := cond.check(key, &cur, ok); err != nil {
			return step{}, err
		}
		if !ok {
			return step{}, ErrNotFound
		}
		if err := checkNotLocked(&cur, ok); err != nil {
			return step{}, err
		}
		ch := Change{Key: key, Revision: cur.revision + 1, Deleted: true}
		return step{res: Result{Key: key, Revision: ch.Revision}, one: ch}, nil
	}
}

// DeletePrefix removes every key under prefix (which ends in "/") in one commit, with a delete
// event each. Deleting an empty subtree succeeds and changes nothing.
func (h *Local) DeletePrefix(prefix string, opt WriteOptions) (Result, error) {
	if err := h.limits.CheckPath(prefix); err != nil || !IsPrefix(prefix) {
		return Result{}, fmt.Errorf("%w: %q is not a prefix", ErrInvalidKey, prefix)
	}
	return h.write(opt, intent{op: "deleteprefix", key: prefix}, func(time.Time, view) (step, error) {
		var changes []Change
		h.tree.Ascend(item{key: prefix}, func(it item) bool {
			if !Covers(prefix, it.key) {
				return false
			}
			changes = append(changes, Change{Key: it.key, Revision: it.revision + 1, Deleted: true})
			return true
		})
		return step{res: Result{Key: prefix, Deleted: len(changes)}, many: changes}, nil
	})
}

// A view is the state a write's step decides against: Local's tree under its lock, or the keys
// another store read for the write, all as of one seq.
type view interface {
	get(key string) (item, bool)
	nextSeq() uint64 // the seq the write will commit at; 0 when the store learns it only then
}

// buildFunc is a write's read-check-change step: it decides against v, at now (the zero time
// unless the write needs the clock; see write), and returns the answer and the changes.
type buildFunc func(now time.Time, v view) (step, error)

type localView struct {
	tree *btree.BTreeG[item]
	next uint64
}

func (v localView) get(key string) (item, bool) { return v.tree.Get(item{key: key}) }
func (v localView) nextSeq() uint64             { return v.next }

// A step is what a write's build function decides under mu: the answer, and the changes to
// commit. A write of one change, the usual case, gives it in one, which needs no allocation
// (BenchmarkIncr's allocs/op); a write of several gives them in many. With neither, the write
// changes nothing.
type step struct {
	res  Result
	one  Change
	many []Change
}

// write runs one read-check-change step under the lock: build looks at the state and returns the
// changes (none to change nothing), the commit is journaled, and write waits for durability
// outside the lock before publishing and answering. build's now is the clock's reading when opt
// has a TTL or an idempotency key or in.clock is set, else the zero time.
func (h *Local) write(opt WriteOptions, in intent, build buildFunc) (Result, error) {
	if opt.TTL < 0 {
		return Result{}, fmt.Errorf("%w: negative", ErrInvalidTTL)
	}
	h.mu.Lock()
	if err := h.writableLocked(); err != nil {
		h.mu.Unlock()
		return Result{}, err
	}
	// The clock is read only by a write that needs it (BenchmarkIncr).
	var now time.Time
	if opt.TTL > 0 || opt.Idempotency != "" || in.clock {
		now = h.clock.Now()
	}
	var fp string
	if opt.Idempotency != "" {
		fp = in.fingerprint(opt)
		if rec, ok := h.idem[opt.Idempotency]; ok && now.Before(rec.Expires) {
			h.mu.Unlock()
			if rec.Fingerprint != fp {
				return Result{}, ErrIdempotencyMismatch
			}
			// The first request may still be waiting for its fsync: answer the retry only once
			// that write is durable, so a retry is never told of a write that can be lost.
			if err := h.durableLater(opt, rec.Result.Seq); err != nil {
				return Result{}, err
			}
			res := rec.Result
			res.Replayed = true
			return res, nil
		}
	}
	st, err := build(now, localView{h.tree, h.seq + 1})
	res := st.res
	changes := st.many
	if st.one.Key != "" {
		changes = []Change{st.one}
	}
	if err != nil || len(changes) == 0 {
		// The answer, a conflict's current revision included, shows the applied state: it leaves
		// only once that state is durable.
		res.Seq = h.seq
		h.mu.Unlock()
		if werr := h.durableLater(opt, res.Seq); werr != nil {
			return Result{}, werr
		}
		return res, err
	}
	var idem *IdemRecord
	if opt.Idempotency != "" {
		idem = &IdemRecord{Key: opt.Idempotency, Fingerprint: fp, Result: res, Expires: now.Add(h.cfg.IdempotencyWindow)}
	}
	seq, wait := h.commitLocked(changes, idem)
	h.mu.Unlock()
	res.Seq = seq
	if wait == nil { // no journal: durable already, publish now
		return res, h.finish(seq, nil)
	}
	return res, opt.wait(func() error { return h.finish(seq, wait) })
}

// durableLater waits until seq is durable, now or, for a pipelined write, in its Pending.
func (h *Local) durableLater(opt WriteOptions, seq uint64) error {
	if h.durable.Load() >= seq {
		return nil
	}
	return opt.wait(func() error { return h.waitDurable(seq) })
}

func (h *Local) writableLocked() error {
	switch {
	case h.closed:
		return ErrClosed
	case h.failed != nil:
		return &storageError{h.failed}
	}
	return nil
}

func expiresAt(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	// Round away the monotonic reading: deadlines are persisted as wall time.
	return now.Add(ttl).Round(0)
}

// intent names what a write does, for telling an idempotent retry from a different request that
// reuses its key: the operation, its target, body, amount and precondition, and the write's
// options (TTL, ephemeral). Its fingerprint is computed only for writes that carry an idempotency
// key.
type intent struct {
	op, key string
	body    []byte
	n       int64
	cond    Cond
	clock   bool // the build step reads now even without a TTL or an idempotency key
}

func (in intent) fingerprint(opt WriteOptions) string {
	f := fnv.New64a()
	u := func(v uint64) { f.Write(binary.LittleEndian.AppendUint64(nil, v)) }
	b := func(v bool) {
		if v {
			u(1)
		} else {
			u(0)
		}
	}
	opt64 := func(p *int64) {
		b(p != nil)
		if p != nil {
			u(uint64(*p))
		}
	}
	u(uint64(len(in.body)))
	f.Write(in.body)
	u(uint64(in.n))
	opt64(in.cond.NextRevision)
	opt64(in.cond.Revision)
	u(uint64(len(in.cond.MatchSeqs)))
	for _, s := range in.cond.MatchSeqs {
		u(s)
	}
	b(in.cond.MatchAny)
	b(in.cond.Absent)
	if in.cond.Fence != 0 {
		u(in.cond.Fence)
		f.Write([]byte(in.cond.FenceLock))
	}
	u(uint64(opt.TTL))
	b(opt.Session != nil)
	return in.op + " " + in.key + " " + strconv.FormatUint(f.Sum64(), 16)
}

func sortedChanges(byKey map[string]Change) []Change {
	out := make([]Change, 0, len(byKey))
	for _, c := range byKey {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
