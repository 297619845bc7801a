package hub

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Locks. A lock is a key whose value is the lock's public state (LockState): who holds it, its
// fencing token and when it expires. It is read, listed and subscribed to like any key; acquiring
// it is a set (revision 0), renewing a set, releasing and expiring a delete, each with its event.
//
//   - The fence is the seq of the acquiring commit, so fences strictly increase over acquisitions,
//     across keys and restarts. Renewing keeps the fence.
//   - The secret token is returned once, to the acquirer. The hub keeps only its SHA-256, in the
//     entry and in the journal and snapshots (so renew and release work after a restart); the
//     hash never appears in a value or an event.
//   - Expiry is the key's TTL on the hub's one expiry queue. In a running hub the deadline keeps the
//     Clock's monotonic reading, so wall-clock steps do not move it; after a restart it is the
//     persisted wall time.
//   - A held lock refuses every other write to its key (ErrLocked): only Renew and Unlock change
//     it. A key that holds a plain value cannot be locked (ErrNotLock). Deleting a subtree deletes
//     the locks in it.
//   - Waiters (Hub.Lock) queue per key in the hub, in arrival order: only the head attempts, at
//     once and at each change of the key (release, expiry, a subtree delete), and the next one
//     attempts once it leaves. Drain ends every wait with ErrShutdown.
//   - A fenced write (Cond.Fence) holds only while its lock is held with that fence, checked in
//     the write's step, so atomically with it: a stale holder's write fails with ErrFenceStale.

// DefaultLockTTL is a lock's time to live when LockOptions.TTL is zero.
const DefaultLockTTL = 60 * time.Minute

// MaxLockOwner bounds the owner label of a lock, in bytes.
const MaxLockOwner = 256

// LockOptions are the options of an acquisition.
type LockOptions struct {
	TTL   time.Duration // how long the lock lasts unless renewed (default DefaultLockTTL)
	Owner string        // a label shown to others, at most MaxLockOwner bytes of UTF-8
	Wait  time.Duration // > 0: wait up to this long, on the hub's Clock, for a held lock to be free
}

// Lock is a held lock, as its holder sees it.
type Lock struct {
	Key      string
	Token    string // secret: Renew and Unlock need it
	Fence    uint64 // the seq of the acquisition: larger for every later acquisition
	Owner    string
	Expires  time.Time
	Revision int64  // the lock key's revision
	Seq      uint64 // the seq of this acquisition or renewal
}

// LockState is the public JSON value of a lock key.
type LockState struct {
	Owner   string    `json:"owner"`
	Fence   uint64    `json:"fence"`
	Expires time.Time `json:"expires"`
}

// LockedError reports a lock held by someone else. It matches ErrLocked.
type LockedError struct {
	Key     string
	Owner   string
	Fence   uint64
	Expires time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%v: %s is held by %q until %s", ErrLocked, e.Key, e.Owner, e.Expires.UTC().Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// lockedError describes the lock held in it.
func lockedError(it *item) *LockedError {
	var st LockState
	json.Unmarshal(it.value(), &st) // our own JSON
	return &LockedError{Key: it.key, Owner: st.Owner, Fence: st.Fence, Expires: st.Expires}
}

// checkNotLocked refuses a plain write to a held lock.
func checkNotLocked(cur *item, ok bool) error {
	if ok && cur.lock() != "" {
		return lockedError(cur)
	}
	return nil
}

// TryLock makes one attempt to acquire the lock on key: when it is held, it fails at once with a
// *LockedError (ErrLocked); a key that holds a plain value fails with ErrNotLock. opt.Wait is not
// its business (Hub.Lock waits).
func (h *Local) TryLock(key string, opt LockOptions) (Lock, error) {
	opt, err := checkLock(h.limits, key, opt)
	if err != nil {
		return Lock{}, err
	}
	token, sum := newLockToken()
	var st LockState
	res, err := h.write(WriteOptions{}, intent{clock: true}, lockStep(key, opt, sum, &st))
	if err != nil {
		return Lock{}, err
	}
	return Lock{Key: key, Token: token, Fence: res.Seq, Owner: st.Owner, Expires: st.Expires, Seq: res.Seq}, nil
}

// checkLock validates a lock request and fills its default TTL.
func checkLock(limits Limits, key string, opt LockOptions) (LockOptions, error) {
	if err := limits.CheckKey(key); err != nil {
		return opt, err
	}
	if opt.TTL < 0 {
		return opt, fmt.Errorf("%w: negative", ErrInvalidTTL)
	}
	if opt.TTL == 0 {
		opt.TTL = DefaultLockTTL
	}
	if len(opt.Owner) > MaxLockOwner {
		return opt, fmt.Errorf("%w: lock owner longer than %d bytes", ErrInvalidValue, MaxLockOwner)
	}
	if err := CheckUTF8("lock owner", []byte(opt.Owner)); err != nil {
		return opt, err
	}
	return opt, nil
}

// lockStep is the read-check-change step of acquiring a lock whose token hashes to sum; it fills
// st. The fence is the seq the write commits at (v.nextSeq, or 0 for a store that fills it in
// when it reads the value back).
func lockStep(key string, opt LockOptions, sum string, st *LockState) buildFunc {
	return func(now time.Time, v view) (step, error) {
		cur, ok := v.get(key)
		if ok && cur.lock() != "" {
			return step{}, lockedError(&cur)
		}
		if ok {
			return step{}, fmt.Errorf("%w: %s", ErrNotLock, key)
		}
		expires := now.Add(opt.TTL) // keeps the monotonic reading; see the comment at the top
		*st = LockState{Owner: opt.Owner, Fence: v.nextSeq(), Expires: expires}
		value := lockValue(*st)
		return step{res: Result{Key: key}, one: Change{Key: key, Value: value, Revision: 0, Expires: expires, lock: sum}}, nil
	}
}

// RenewLock extends a held lock to ttl from now (DefaultLockTTL when 0), keeping its fence. It
// fails with ErrLockToken when token is not the lock's and ErrNotFound when no lock is held.
func (h *Local) RenewLock(key, token string, ttl time.Duration) (Lock, error) {
	ttl, err := checkRenew(h.limits, key, ttl)
	if err != nil {
		return Lock{}, err
	}
	var st LockState
	res, err := h.write(WriteOptions{}, intent{clock: true}, renewStep(key, token, ttl, &st))
	if err != nil {
		return Lock{}, err
	}
	return Lock{Key: key, Token: token, Fence: st.Fence, Owner: st.Owner, Expires: st.Expires, Revision: res.Revision, Seq: res.Seq}, nil
}

// checkRenew validates a renewal and fills its default TTL.
func checkRenew(limits Limits, key string, ttl time.Duration) (time.Duration, error) {
	if err := limits.CheckKey(key); err != nil {
		return 0, err
	}
	if ttl < 0 {
		return 0, fmt.Errorf("%w: negative", ErrInvalidTTL)
	}
	if ttl == 0 {
		ttl = DefaultLockTTL
	}
	return ttl, nil
}

// renewStep is the read-check-change step of a renewal; it fills st.
func renewStep(key, token string, ttl time.Duration, st *LockState) buildFunc {
	return func(now time.Time, v view) (step, error) {
		cur, err := held(v, key, token)
		if err != nil {
			return step{}, err
		}
		json.Unmarshal(cur.value(), st)
		st.Expires = now.Add(ttl)
		ch := Change{Key: key, Value: lockValue(*st), Revision: cur.revision + 1, Expires: st.Expires, lock: cur.lock()}
		return step{res: Result{Key: key, Revision: ch.Revision}, one: ch}, nil
	}
}

// Unlock releases a held lock: the key is deleted, with its event, and waiters wake. It fails
// with ErrLockToken when token is not the lock's and ErrNotFound when no lock is held.
func (h *Local) Unlock(key, token string) (Result, error) {
	if err := h.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return h.write(WriteOptions{}, intent{}, unlockStep(key, token))
}

// unlockStep is the read-check-change step of a release.
func unlockStep(key, token string) buildFunc {
	return func(_ time.Time, v view) (step, error) {
		cur, err := held(v, key, token)
		if err != nil {
			return step{}, err
		}
		ch := Change{Key: key, Revision: cur.revision + 1, Deleted: true}
		return step{res: Result{Key: key, Revision: ch.Revision}, one: ch}, nil
	}
}

// held returns the lock at key if token is its token.
func held(v view, key, token string) (item, error) {
	cur, ok := v.get(key)
	switch {
	case !ok:
		return cur, fmt.Errorf("%w: %s holds no lock (released or expired)", ErrNotFound, key)
	case cur.lock() == "":
		return cur, fmt.Errorf("%w: %s", ErrNotLock, key)
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(cur.lock())) != 1 {
		return cur, fmt.Errorf("%w for %s", ErrLockToken, key)
	}
	return cur, nil
}

// newLockToken returns a fresh secret (128 random bits) and its hash.
func newLockToken() (token, sum string) {
	token = rand.Text()
	s := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(s[:])
}

func lockValue(st LockState) []byte {
	st.Expires = st.Expires.UTC() // also drops the monotonic reading
	b, _ := json.Marshal(st)
	return b
}
