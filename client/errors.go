package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. An *Error from the server matches the sentinel of its code with errors.Is
// (errors.Is(err, ErrConflict) for code "revision_conflict"); ErrBadRequest, ErrTooManyRequests
// and ErrUnavailable match by status, whatever the code.
var (
	ErrNotFound            = errors.New("client: not found")                                  // not_found (404)
	ErrConflict            = errors.New("client: revision conflict")                          // revision_conflict (409): the key is not at the revision asked for
	ErrPreconditionFailed  = errors.New("client: precondition failed")                        // precondition_failed (412)
	ErrLocked              = errors.New("client: locked")                                     // locked (409): a lock holds the key
	ErrLockToken           = errors.New("client: wrong lock token")                           // lock_token (403)
	ErrNotLock             = errors.New("client: not a lock")                                 // not_a_lock (409)
	ErrNotInteger          = errors.New("client: not an integer")                             // not_integer (409)
	ErrOverflow            = errors.New("client: integer overflow")                           // overflow (409)
	ErrIdempotencyMismatch = errors.New("client: idempotency key reused")                     // idempotency_mismatch (422)
	ErrTooLarge            = errors.New("client: too large")                                  // too_large (413)
	ErrUnauthorized        = errors.New("client: unauthorized")                               // unauthorized (401): no token, or one the server refuses
	ErrForbidden           = errors.New("client: forbidden")                                  // forbidden (403): the token lacks the grant
	ErrProtectedMode       = errors.New("client: server in protected mode")                   // protected_mode (403): a server without auth serves only loopback clients without a token
	ErrBadRequest          = errors.New("client: bad request")                                // any 400
	ErrTooManyRequests     = errors.New("client: too many requests")                          // any 429 (rate_limited, too_many_connections, ...)
	ErrUnavailable         = errors.New("client: server unavailable")                         // any 503 (unavailable: shutting down, or a failed disk)
	ErrFile                = errors.New("client: the key holds a stored file")                // Get of a stored file: read it with GetFile
	ErrLockLost            = errors.New("client: lock lost")                                  // WithLock: the lock expired or was taken away while the function ran
	ErrNotKey              = errors.New("client: a key must start with / and not end with /") // a key argument that is a prefix, or no key at all
	ErrFenceStale          = errors.New("client: fence stale")                                // fence_stale (409): a Fenced write whose lock was released, expired or taken again
	ErrHistoryGone         = errors.New("client: history no longer retained")                 // history_gone (410): a History page below what the server retains
)

// byCode maps the server's machine codes to sentinels.
var byCode = map[string]error{
	"not_found":            ErrNotFound,
	"revision_conflict":    ErrConflict,
	"precondition_failed":  ErrPreconditionFailed,
	"locked":               ErrLocked,
	"lock_token":           ErrLockToken,
	"not_a_lock":           ErrNotLock,
	"not_integer":          ErrNotInteger,
	"overflow":             ErrOverflow,
	"idempotency_mismatch": ErrIdempotencyMismatch,
	"too_large":            ErrTooLarge,
	"unauthorized":         ErrUnauthorized,
	"forbidden":            ErrForbidden,
	"protected_mode":       ErrProtectedMode,
	"fence_stale":          ErrFenceStale,
	"history_gone":         ErrHistoryGone,
}

// Error is an error answer of the server: its status and its JSON body {"error","code",...}
// (PROTOCOL.md). An answer that is not Statehub's JSON (a proxy's 502 page, say) has an empty
// Code and the start of its body as Message.
type Error struct {
	Status  int    // the HTTP status, or the WebSocket answer's status
	Code    string // the machine code, e.g. "revision_conflict"
	Message string // the server's text for people

	// Revision is the key's current revision (-1: absent) on revision_conflict and
	// precondition_failed; 0 otherwise.
	Revision int64
	Key      string    // the key of a held lock (locked), of a transaction's failed check, or the lock of a Fenced write (fence_stale)
	Owner    string    // locked: the holder's owner label
	Expires  time.Time // locked: when the holder's lock expires unless renewed
	Oldest   uint64    // history_gone: the oldest seq whose changes the server still retains
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("client: %s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("client: %s (%d %s)", e.Message, e.Status, e.Code)
}

// Is reports whether target is the sentinel of e's code or status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrTooManyRequests:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	s, ok := byCode[e.Code]
	return ok && s == target
}

// errorBody is the JSON of an error answer, over HTTP and the WebSocket alike.
type errorBody struct {
	Error    string `json:"error"`
	Code     string `json:"code"`
	Status   int    `json:"status"` // WebSocket answers only
	Revision *int64 `json:"revision"`
	Key      string `json:"key"`
	Owner    string `json:"owner"`
	Expires  string `json:"expires"`
	Oldest   uint64 `json:"oldest"`
}

func (b errorBody) toError(status int) *Error {
	e := &Error{Status: status, Code: b.Code, Message: b.Error, Key: b.Key, Owner: b.Owner, Oldest: b.Oldest}
	if b.Revision != nil {
		e.Revision = *b.Revision
	}
	if b.Expires != "" {
		e.Expires, _ = time.Parse(time.RFC3339Nano, b.Expires)
	}
	return e
}

// transient reports whether a failed attempt may be retried as it is: a network error, or an
// answer that says "later" (429, 5xx).
func transient(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}
