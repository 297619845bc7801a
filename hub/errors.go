package hub

import (
	"errors"
	"fmt"
)

// Sentinel errors. The web layer maps each to one HTTP status; callers test them with errors.Is.
var (
	ErrNotFound            = errors.New("hub: key not found")
	ErrInvalidKey          = errors.New("hub: invalid key")
	ErrInvalidValue        = errors.New("hub: invalid JSON value")
	ErrValueTooLarge       = errors.New("hub: value too large")
	ErrValueTooDeep        = errors.New("hub: value nested too deeply")
	ErrRevisionConflict    = errors.New("hub: revision conflict")
	ErrPreconditionFailed  = errors.New("hub: precondition failed")
	ErrNotInteger          = errors.New("hub: value is not a 64-bit integer")
	ErrOverflow            = errors.New("hub: integer overflow")
	ErrIdempotencyMismatch = errors.New("hub: idempotency key reused for a different request")
	ErrInvalidTTL          = errors.New("hub: invalid ttl")
	ErrInvalidPosition     = errors.New("hub: invalid stream position")
	ErrRootForbidden       = errors.New("hub: the root path is not allowed here")
	ErrUnavailable         = errors.New("hub: storage unavailable")
	ErrClosed              = errors.New("hub: closed")
	ErrSlowConsumer        = errors.New("hub: subscriber fell behind")
	ErrShutdown            = errors.New("hub: shutting down")
	ErrLocked              = errors.New("hub: locked")
	ErrLockToken           = errors.New("hub: wrong lock token")
	ErrNotLock             = errors.New("hub: the key holds a value, not a lock")
	ErrFenceStale          = errors.New("hub: the lock has moved past the write's fence")
	ErrInvalidTx           = errors.New("hub: invalid transaction")
	ErrCompacted           = errors.New("hub: the store no longer holds the changes after that position")
)

// ConflictError reports a failed precondition together with the key's current state, so the caller
// can retry without another read. It matches ErrRevisionConflict or ErrPreconditionFailed.
type ConflictError struct {
	Err      error  // ErrRevisionConflict or ErrPreconditionFailed
	Key      string // the key whose precondition failed
	Revision int64  // the current revision, -1 when the key is absent
	Seq      uint64 // the seq of the key's last change, 0 when absent
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s is at revision %d", e.Err, e.Key, e.Revision)
}

func (e *ConflictError) Unwrap() error { return e.Err }
