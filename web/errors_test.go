package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// TestClassify pins the one mapping from errors to statuses and codes, for errors as the hub
// returns them (wrapped with context).
func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"invalid key", fmt.Errorf("%w: ends with /", hub.ErrInvalidKey), 400, "invalid_key"},
		{"invalid value", fmt.Errorf("%w: eof", hub.ErrInvalidValue), 400, "invalid_json"},
		{"too deep", fmt.Errorf("%w: 65", hub.ErrValueTooDeep), 400, "too_deep"},
		{"invalid ttl", hub.ErrInvalidTTL, 400, "invalid_ttl"},
		{"invalid position", fmt.Errorf("%w: x", hub.ErrInvalidPosition), 400, "invalid_position"},
		{"invalid cursor", hub.ErrInvalidCursor, 400, "invalid_cursor"},
		{"too large", fmt.Errorf("%w: big", hub.ErrValueTooLarge), 413, "too_large"},
		{"not found", hub.ErrNotFound, 404, "not_found"},
		{"revision conflict", &hub.ConflictError{Err: hub.ErrRevisionConflict, Key: "/k", Revision: 3}, 409, "revision_conflict"},
		{"precondition", &hub.ConflictError{Err: hub.ErrPreconditionFailed, Key: "/k", Revision: -1}, 412, "precondition_failed"},
		{"not integer", fmt.Errorf("%w: /k holds x", hub.ErrNotInteger), 409, "not_integer"},
		{"overflow", fmt.Errorf("%w: 1 + 2", hub.ErrOverflow), 409, "overflow"},
		{"idempotency mismatch", hub.ErrIdempotencyMismatch, 422, "idempotency_mismatch"},
		{"root forbidden", hub.ErrRootForbidden, 403, "forbidden"},
		{"unavailable", fmt.Errorf("write: %w", hub.ErrUnavailable), 503, "unavailable"},
		{"closed", hub.ErrClosed, 503, "unavailable"},
		{"shutdown", hub.ErrShutdown, 503, "unavailable"},
		{"api error", badRequest("invalid_limit", "limit"), 400, "invalid_limit"},
		{"echo not found", echo.ErrNotFound, 404, "not_found"},
		{"echo method", echo.ErrMethodNotAllowed, 405, "method_not_allowed"},
		{"echo too large", echo.ErrStatusRequestEntityTooLarge, 413, "too_large"},
		{"echo bad request", echo.NewHTTPError(400, "bad"), 400, "bad_request"},
		{"unknown", errors.New("disk on fire"), 500, "internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, code, msg := classify(tc.err)
			if status != tc.status || code != tc.code || msg == "" {
				t.Errorf("classify(%v) = %d %q %q, want %d %q", tc.err, status, code, msg, tc.status, tc.code)
			}
		})
	}
}

// TestHandleError checks the shape of the answer: JSON {"error","code"}, with the current
// revision in the body and in X-Revision on a failed precondition, and no body for HEAD.
func TestHandleError(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{})
	defer h.Close()
	s := New(h, Config{})
	tests := []struct {
		name     string
		method   string
		err      error
		status   int
		body     string
		revision string
	}{
		{"plain", "GET", hub.ErrNotFound, 404, `{"error":"key not found","code":"not_found"}`, ""},
		{"conflict", "PUT", &hub.ConflictError{Err: hub.ErrRevisionConflict, Key: "/k", Revision: 4},
			409, `{"error":"revision conflict: /k is at revision 4","code":"revision_conflict","revision":4}`, "4"},
		{"absent", "DELETE", &hub.ConflictError{Err: hub.ErrPreconditionFailed, Key: "/k", Revision: -1},
			412, `{"error":"precondition failed: /k is at revision -1","code":"precondition_failed","revision":-1}`, "-1"},
		{"internal", "GET", errors.New("secret detail"), 500, `{"error":"internal error","code":"internal"}`, ""},
		{"head", "HEAD", hub.ErrNotFound, 404, ``, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			c := s.echo.NewContext(httptest.NewRequest(tc.method, "/k", nil), rec)
			s.handleError(tc.err, c)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Body.String(); got != tc.body && got != tc.body+"\n" {
				t.Errorf("body %q, want %q", got, tc.body)
			}
			if tc.body != "" && !json.Valid(rec.Body.Bytes()) {
				t.Errorf("body %q is not JSON", rec.Body)
			}
			if got := rec.Header().Get(hdrRevision); got != tc.revision {
				t.Errorf("X-Revision %q, want %q", got, tc.revision)
			}
		})
	}
	t.Run("committed", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		c := s.echo.NewContext(httptest.NewRequest("GET", "/k", nil), rec)
		c.Response().WriteHeader(http.StatusOK)
		s.handleError(hub.ErrNotFound, c)
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Errorf("an error after the answer began wrote %d %q", rec.Code, rec.Body)
		}
	})
}
