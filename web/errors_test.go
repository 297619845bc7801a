package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal/waltest"
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
			409, `{"error":"revision conflict: /k is at revision 4","code":"revision_conflict","revision":4,"key":"/k"}`, "4"},
		{"absent", "DELETE", &hub.ConflictError{Err: hub.ErrPreconditionFailed, Key: "/k", Revision: -1},
			412, `{"error":"precondition failed: /k is at revision -1","code":"precondition_failed","revision":-1,"key":"/k"}`, "-1"},
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

// TestStorageErrorsHTTP: a write that fails on the disk, JSON or a stored file, answers 503
// "unavailable" with a message that names no server path and no OS error text beyond the cause's
// description; the whole error, path included, is logged.
func TestStorageErrorsHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		open  func(t *testing.T, log *slog.Logger) (*hub.Hub, string)
		ctype string
		want  string // the message
	}{
		{"json on a full disk", func(t *testing.T, log *slog.Logger) (*hub.Hub, string) {
			const dir = "/srv/statehub/data-7f3a"
			fsys := waltest.New(1)
			h, err := hub.Open(hub.Config{Logger: log}, hub.StoreConfig{Dir: dir, FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			fsys.SetFault(func(op waltest.Op, name string) error {
				if op == waltest.OpWrite {
					return syscall.ENOSPC
				}
				return nil
			})
			return h, dir
		}, "application/json", "storage unavailable: no space left on device"},
		{"file with no blob directory", func(t *testing.T, log *slog.Logger) (*hub.Hub, string) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "blobs"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			h, err := hub.Open(hub.Config{Logger: log}, hub.StoreConfig{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			return h, dir
		}, "text/csv", "storage unavailable: not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			var mu sync.Mutex
			log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
			h, dir := tc.open(t, log)
			defer h.Close()
			s := New(h, Config{Logger: log})
			for _, method := range []string{"PUT", "POST"} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(method, "/k", strings.NewReader(`"v"`))
				req.RemoteAddr = "127.0.0.1:1234" // a client on loopback, which a protected server serves
				req.Header.Set("Content-Type", tc.ctype)
				s.Handler().ServeHTTP(rec, req)
				body := rec.Body.String()
				if rec.Code != http.StatusServiceUnavailable {
					t.Fatalf("%s: status %d, body %s", method, rec.Code, body)
				}
				var eb ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Code != "unavailable" || eb.Error != tc.want {
					t.Fatalf("%s: body %s, want code unavailable and error %q", method, body, tc.want)
				}
				if strings.Contains(body, dir) || strings.Contains(body, "/") {
					t.Fatalf("%s: body names a server path: %s", method, body)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(logs.String(), dir) {
				t.Fatalf("the log lacks the full error:\n%s", logs.String())
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestClassifyStorageMessage(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("%w: wal: write or sync failed: %w", hub.ErrUnavailable,
		&fs.PathError{Op: "write", Path: "/srv/data/wal/0000000000000001.wal", Err: syscall.ENOSPC})
	if _, _, msg := classify(err); msg != "storage unavailable: no space left on device" {
		t.Fatalf("message %q", msg)
	}
	if _, _, msg := classify(fmt.Errorf("%w: %w", hub.ErrUnavailable, errors.New("/srv/data: gone"))); msg != "storage unavailable" {
		t.Fatalf("message %q", msg)
	}
}
