package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// apiError is an error the web layer raises itself, with its status and machine code.
type apiError struct {
	Status int
	Code   string
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func badRequest(code, msg string) error { return &apiError{http.StatusBadRequest, code, msg} }

// statusOf maps hub errors and the web layer's own sentinels (auth.go, limits.go) to an HTTP
// status and a machine code. It is the only such mapping.
var statusOf = []struct {
	err    error
	status int
	code   string
}{
	{hub.ErrInvalidKey, http.StatusBadRequest, "invalid_key"},
	{hub.ErrInvalidValue, http.StatusBadRequest, "invalid_json"},
	{hub.ErrValueTooDeep, http.StatusBadRequest, "too_deep"},
	{hub.ErrInvalidTTL, http.StatusBadRequest, "invalid_ttl"},
	{hub.ErrInvalidPosition, http.StatusBadRequest, "invalid_position"},
	{hub.ErrInvalidCursor, http.StatusBadRequest, "invalid_cursor"},
	{hub.ErrValueTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{hub.ErrNotFound, http.StatusNotFound, "not_found"},
	{hub.ErrRevisionConflict, http.StatusConflict, "revision_conflict"},
	{hub.ErrPreconditionFailed, http.StatusPreconditionFailed, "precondition_failed"},
	{hub.ErrNotInteger, http.StatusConflict, "not_integer"},
	{hub.ErrOverflow, http.StatusConflict, "overflow"},
	{hub.ErrIdempotencyMismatch, http.StatusUnprocessableEntity, "idempotency_mismatch"},
	{hub.ErrLocked, http.StatusConflict, "locked"},
	{hub.ErrLockToken, http.StatusForbidden, "lock_token"},
	{hub.ErrNotLock, http.StatusConflict, "not_a_lock"},
	{hub.ErrFenceStale, http.StatusConflict, "fence_stale"},
	{hub.ErrInvalidTx, http.StatusBadRequest, "invalid_tx"},
	{hub.ErrHistoryGone, http.StatusGone, "history_gone"},
	{hub.ErrRootForbidden, http.StatusForbidden, "forbidden"},
	{hub.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{ErrProtected, http.StatusForbidden, "protected_mode"},
	{auth.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{auth.ErrForbidden, http.StatusForbidden, "forbidden"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
	{ErrTooManyConns, http.StatusTooManyRequests, "too_many_connections"},
	{hub.ErrTooManyDisconnectWrites, http.StatusTooManyRequests, "too_many_ondisconnect"},
	{hub.ErrClosed, http.StatusServiceUnavailable, "unavailable"},
	{hub.ErrShutdown, http.StatusServiceUnavailable, "unavailable"},
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error    string  `json:"error"`
	Code     string  `json:"code"`
	Revision *int64  `json:"revision,omitempty"` // the current revision, on a failed precondition
	Key      string  `json:"key,omitempty"`      // the key of a held lock or of a transaction's failed check
	Owner    *string `json:"owner,omitempty"`    // a held lock's owner (code "locked")
	Expires  string  `json:"expires,omitempty"`  // when a held lock expires, RFC 3339 (code "locked")
	Oldest   uint64  `json:"oldest,omitempty"`   // the oldest seq still retained (code "history_gone")
}

// classify returns the status, code and message for err. A 5xx message never carries the text
// of the error itself, which for a failed disk names server paths: it is the sentinel's text and
// at most the operating system's description of the cause ("storage unavailable: no space left on
// device"). handleError logs the whole error.
func classify(err error) (int, string, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status, ae.Code, ae.Msg
	}
	for _, m := range statusOf {
		if !errors.Is(err, m.err) {
			continue
		}
		if m.status < 500 {
			return m.status, m.code, trimPrefix(err.Error())
		}
		msg := trimPrefix(m.err.Error())
		var errno syscall.Errno
		if errors.As(err, &errno) {
			msg += ": " + errno.Error()
		}
		return m.status, m.code, msg
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok {
			msg = s
		}
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, "not_found", msg
		case http.StatusMethodNotAllowed:
			return he.Code, "method_not_allowed", msg
		case http.StatusRequestEntityTooLarge:
			return he.Code, "too_large", msg
		}
		if he.Code < 500 {
			return he.Code, "bad_request", msg
		}
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

func trimPrefix(msg string) string {
	return strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(msg, "hub: "), "web: "), "auth: ")
}

// errorBody is the status and JSON body of err's answer, over HTTP and the WebSocket alike: a
// failed precondition names the key and its current revision, a held lock its key, owner and
// expiry.
func errorBody(err error) (int, ErrorBody) {
	status, code, msg := classify(err)
	body := ErrorBody{Error: msg, Code: code}
	var ce *hub.ConflictError
	if errors.As(err, &ce) {
		body.Revision, body.Key = &ce.Revision, ce.Key
	}
	var fe *hub.FenceError
	if errors.As(err, &fe) {
		body.Key = fe.Lock
	}
	var ge *hub.HistoryGoneError
	if errors.As(err, &ge) {
		body.Key, body.Oldest = ge.Key, ge.Oldest
	}
	var le *hub.LockedError
	if errors.As(err, &le) {
		body.Key, body.Owner, body.Expires = le.Key, &le.Owner, formatTime(le.Expires)
	}
	return status, body
}

// handleError is echo's HTTPErrorHandler: every error becomes one JSON answer.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := errorBody(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if body.Revision != nil {
		c.Response().Header().Set(hdrRevision, strconv.FormatInt(*body.Revision, 10))
	}
	if errors.Is(err, auth.ErrUnauthorized) {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="statehub"`)
	}
	if errors.Is(err, hub.ErrShutdown) {
		// The server is going away (a lock wait ended by the drain): try again, here once it is
		// back or at another node, soon.
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, body)
}
