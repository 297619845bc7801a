package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// step is one request of a scripted exchange and what its answer must be.
type step struct {
	method, path, body string
	hdr                []string          // header name, value, ...
	status             int               // wanted status
	want               string            // exact body when non-empty (success answers)
	code               string            // wanted error code; the body must then be an error
	hdrs               map[string]string // exact response headers; "-" means absent
	revision           *int64            // wanted "revision" of an error body
}

func (s step) run(t *testing.T, ts *testServer) {
	t.Helper()
	r := ts.do(t, s.method, s.path, s.body, s.hdr...)
	name := s.method + " " + s.path
	if r.status != s.status {
		t.Fatalf("%s: status %d, want %d (body %s)", name, r.status, s.status, r.body)
	}
	if s.want != "" && strings.TrimSuffix(r.body, "\n") != s.want {
		t.Errorf("%s: body %s, want %s", name, r.body, s.want)
	}
	if s.method != http.MethodHead && (s.code != "" || r.status >= 400) {
		eb := errorBody(t, r)
		if s.code != "" && eb.Code != s.code {
			t.Errorf("%s: code %q, want %q (%s)", name, eb.Code, s.code, eb.Error)
		}
		if s.revision != nil {
			if eb.Revision == nil || *eb.Revision != *s.revision {
				t.Errorf("%s: error body %s, want revision %d", name, r.body, *s.revision)
			}
		}
	}
	for k, v := range s.hdrs {
		got, ok := r.header[http.CanonicalHeaderKey(k)]
		switch {
		case v == "-" && ok:
			t.Errorf("%s: header %s = %q, want none", name, k, got)
		case v != "-" && (len(got) != 1 || got[0] != v):
			t.Errorf("%s: header %s = %q, want %q", name, k, got, v)
		}
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want *", name, got)
	}
	if got := r.header.Get("Date"); got == "" {
		t.Errorf("%s: no Date", name)
	} else if _, err := http.ParseTime(got); err != nil {
		t.Errorf("%s: Date %q: %v", name, got, err)
	}
}

func ok(method, path, body, want string, hdr ...string) step {
	return step{method: method, path: path, body: body, hdr: hdr, status: http.StatusOK, want: want}
}

func fail(method, path, body string, status int, code string, hdr ...string) step {
	return step{method: method, path: path, body: body, hdr: hdr, status: status, code: code}
}

func (s step) with(h map[string]string) step { s.hdrs = h; return s }
func (s step) rev(n int64) step              { s.revision = &n; return s }

func TestKeyAPI(t *testing.T) {
	t.Parallel()
	const (
		bad       = http.StatusBadRequest
		conflict  = http.StatusConflict
		failed    = http.StatusPreconditionFailed
		notFound  = http.StatusNotFound
		notAllow  = http.StatusMethodNotAllowed
		tooLarge  = http.StatusRequestEntityTooLarge
		revHeader = "X-Revision"
	)
	tests := []struct {
		name  string
		cfg   hub.Config
		steps []step
	}{
		// AtomKV's protocol.
		{name: "get absent", steps: []step{
			fail("GET", "/a", "", notFound, "not_found"),
		}},
		{name: "post then get", steps: []step{
			ok("POST", "/a/b", `{"x": 1}`, `{"key":"/a/b","revision":0,"seq":1}`).
				with(map[string]string{"X-Revision": "0", "X-Seq": "1", "ETag": `"1"`}),
			ok("GET", "/a/b", "", `{"x":1}`).
				with(map[string]string{"X-Revision": "0", "X-Seq": "1", "ETag": `"1"`, "Content-Type": "application/json"}),
			ok("POST", "/a/b", `2`, `{"key":"/a/b","revision":1,"seq":2}`),
			ok("GET", "/a/b", "", `2`).with(map[string]string{"X-Revision": "1", "X-Seq": "2"}),
		}},
		{name: "put revision 0 creates once", steps: []step{
			ok("PUT", "/k", `"v"`, `{"key":"/k","revision":0,"seq":1}`, revHeader, "0"),
			fail("PUT", "/k", `"w"`, conflict, "revision_conflict", revHeader, "0").rev(0).
				with(map[string]string{"X-Revision": "0"}),
			ok("GET", "/k", "", `"v"`),
		}},
		{name: "put revision on absent key", steps: []step{
			fail("PUT", "/k", `1`, conflict, "revision_conflict", revHeader, "1").rev(-1).
				with(map[string]string{"X-Revision": "-1"}),
			fail("GET", "/k", "", notFound, "not_found"),
		}},
		{name: "put revision must be current plus one", steps: []step{
			ok("POST", "/k", `1`, ""),
			ok("PUT", "/k", `2`, `{"key":"/k","revision":1,"seq":2}`, revHeader, "1"),
			fail("PUT", "/k", `3`, conflict, "revision_conflict", revHeader, "1").rev(1).with(map[string]string{"X-Revision": "1"}),
			fail("PUT", "/k", `3`, conflict, "revision_conflict", revHeader, "3").rev(1),
			fail("PUT", "/k", `3`, conflict, "revision_conflict", revHeader, "0").rev(1),
			ok("PUT", "/k", `3`, `{"key":"/k","revision":2,"seq":3}`, revHeader, "2"),
			ok("GET", "/k", "", `3`).with(map[string]string{"X-Revision": "2"}),
		}},
		{name: "bad keys", steps: []step{
			fail("GET", "/a//b", "", bad, "invalid_key"),
			fail("GET", "/a.b", "", bad, "invalid_key"),
			fail("POST", "/a/b!", `1`, bad, "invalid_key"),
			fail("POST", "/a%20b", `1`, bad, "invalid_key"),
			fail("PUT", "/a:b", `1`, bad, "invalid_key"),
			fail("DELETE", "/a//", "", bad, "invalid_key"),
			fail("GET", "/"+strings.Repeat("k", 1100), "", bad, "invalid_key"),
			fail("GET", strings.Repeat("/k", 33), "", bad, "invalid_key"),
			ok("POST", "/ünï/码/x-y_z/0", `1`, ""),
		}},
		{name: "bad JSON", steps: []step{
			fail("POST", "/a", `{`, bad, "invalid_json"),
			fail("POST", "/a", ``, bad, "invalid_json"),
			fail("POST", "/a", `1 2`, bad, "invalid_json"),
			fail("POST", "/a", `{'a':1}`, bad, "invalid_json"),
			fail("PUT", "/a", `nul`, bad, "invalid_json"),
			fail("GET", "/a", "", notFound, "not_found"),
		}},
		{name: "bad X-Revision", steps: []step{
			fail("PUT", "/a", `1`, bad, "invalid_revision", revHeader, "x"),
			fail("PUT", "/a", `1`, bad, "invalid_revision", revHeader, "-1"),
			fail("PUT", "/a", `1`, bad, "invalid_revision", revHeader, "1.0"),
			fail("DELETE", "/a", "", bad, "invalid_revision", revHeader, "99999999999999999999"),
		}},
		{name: "numbers kept exactly", steps: []step{
			ok("POST", "/n", `12345678901234567890`, ""),
			ok("GET", "/n", "", `12345678901234567890`),
			ok("POST", "/n", `1.50`, ""),
			ok("GET", "/n", "", `1.50`),
			ok("POST", "/n", `2e3`, ""),
			ok("GET", "/n", "", `2e3`),
			ok("POST", "/n", "{ \"a\" : [ 1.0 , -0.0E+1 ,\n 1e400 ] }", ""),
			ok("GET", "/n", "", `{"a":[1.0,-0.0E+1,1e400]}`),
		}},

		// Conditional reads and writes.
		{name: "if-none-match on get", steps: []step{
			ok("POST", "/k", `1`, ""),
			step{method: "GET", path: "/k", hdr: []string{"If-None-Match", `"1"`}, status: http.StatusNotModified}.
				with(map[string]string{"ETag": `"1"`, "X-Revision": "0"}),
			step{method: "GET", path: "/k", hdr: []string{"If-None-Match", `W/"1"`}, status: http.StatusNotModified},
			step{method: "GET", path: "/k", hdr: []string{"If-None-Match", `"7", "1"`}, status: http.StatusNotModified},
			step{method: "GET", path: "/k", hdr: []string{"If-None-Match", `*`}, status: http.StatusNotModified},
			ok("GET", "/k", "", `1`, "If-None-Match", `"2"`),
			ok("POST", "/k", `2`, ""),
			ok("GET", "/k", "", `2`, "If-None-Match", `"1"`).with(map[string]string{"ETag": `"2"`}),
		}},
		{name: "put if-match", steps: []step{
			fail("PUT", "/k", `1`, failed, "precondition_failed", "If-Match", `"1"`).rev(-1),
			fail("PUT", "/k", `1`, failed, "precondition_failed", "If-Match", `*`).rev(-1),
			ok("POST", "/k", `1`, ""),
			ok("PUT", "/k", `2`, `{"key":"/k","revision":1,"seq":2}`, "If-Match", `"1"`),
			fail("PUT", "/k", `3`, failed, "precondition_failed", "If-Match", `"1"`).rev(1),
			ok("PUT", "/k", `3`, "", "If-Match", `"5", W/"2"`),
			ok("PUT", "/k", `4`, "", "If-Match", `*`),
			fail("PUT", "/k", `5`, failed, "precondition_failed", "If-Match", `abc`).rev(3),
			fail("PUT", "/k", `5`, failed, "precondition_failed", "If-Match", `"never-issued", W/"x"`).rev(3),
			ok("GET", "/k", "", `4`),
		}},
		{name: "put if-none-match star", steps: []step{
			ok("PUT", "/k", `1`, `{"key":"/k","revision":0,"seq":1}`, "If-None-Match", "*"),
			fail("PUT", "/k", `2`, failed, "precondition_failed", "If-None-Match", "*").rev(0),
			fail("PUT", "/k", `2`, bad, "invalid_precondition", "If-None-Match", `"1"`),
			ok("GET", "/k", "", `1`),
		}},
		{name: "put without precondition sets", steps: []step{
			ok("PUT", "/k", `1`, `{"key":"/k","revision":0,"seq":1}`),
			ok("PUT", "/k", `2`, `{"key":"/k","revision":1,"seq":2}`),
		}},

		// Deletes.
		{name: "delete key", steps: []step{
			fail("DELETE", "/k", "", notFound, "not_found"),
			ok("POST", "/k", `1`, ""),
			ok("DELETE", "/k", "", `{"key":"/k","revision":1,"seq":2}`).with(map[string]string{"X-Revision": "1", "X-Seq": "2"}),
			fail("GET", "/k", "", notFound, "not_found"),
			fail("DELETE", "/k", "", notFound, "not_found"),
			ok("POST", "/k", `1`, `{"key":"/k","revision":0,"seq":3}`),
		}},
		{name: "conditional delete", steps: []step{
			fail("DELETE", "/k", "", conflict, "revision_conflict", revHeader, "0").rev(-1),
			ok("POST", "/k", `1`, ""),
			ok("POST", "/k", `2`, ""),
			fail("DELETE", "/k", "", conflict, "revision_conflict", revHeader, "2").rev(1).with(map[string]string{"X-Revision": "1"}),
			fail("DELETE", "/k", "", conflict, "revision_conflict", revHeader, "0").rev(1),
			fail("DELETE", "/k", "", failed, "precondition_failed", "If-Match", `"1"`).rev(1),
			ok("GET", "/k", "", `2`),
			ok("DELETE", "/k", "", `{"key":"/k","revision":2,"seq":3}`, revHeader, "1"),
			fail("GET", "/k", "", notFound, "not_found"),
		}},
		{name: "delete prefix", steps: []step{
			ok("DELETE", "/p/", "", `{"deleted":0,"seq":0}`),
			ok("POST", "/p/a", `1`, ""),
			ok("POST", "/p/b/c", `1`, ""),
			ok("POST", "/pq", `1`, ""),
			ok("DELETE", "/p/", "", `{"deleted":2,"seq":4}`).with(map[string]string{"X-Seq": "4"}),
			fail("GET", "/p/a", "", notFound, "not_found"),
			fail("GET", "/p/b/c", "", notFound, "not_found"),
			ok("GET", "/pq", "", `1`),
			ok("DELETE", "/p/", "", `{"deleted":0,"seq":4}`),
		}},

		// Increments.
		{name: "incr", steps: []step{
			ok("POST", "/n?incr", "", `1`).with(map[string]string{"X-Revision": "0", "X-Seq": "1", "ETag": `"1"`}),
			ok("POST", "/n?incr=", "", `2`),
			ok("POST", "/n?incr=5", "", `7`).with(map[string]string{"X-Revision": "2"}),
			ok("POST", "/n?incr=-10", "", `-3`),
			ok("GET", "/n", "", `-3`),
			ok("POST", "/m?incr=-4", "", `-4`),
			fail("POST", "/n?incr=abc", "", bad, "invalid_increment"),
			fail("POST", "/n?incr=1.5", "", bad, "invalid_increment"),
			fail("POST", "/n?incr=9223372036854775808", "", bad, "invalid_increment"),
			ok("GET", "/n", "", `-3`).with(map[string]string{"X-Revision": "3"}),
		}},
		{name: "incr conflicts", steps: []step{
			ok("POST", "/s", `{"a":1}`, ""),
			fail("POST", "/s?incr", "", conflict, "not_integer"),
			ok("POST", "/f", `1.50`, ""),
			fail("POST", "/f?incr", "", conflict, "not_integer"),
			ok("POST", "/big", `12345678901234567890`, ""),
			fail("POST", "/big?incr", "", conflict, "not_integer"),
			ok("POST", "/max", `9223372036854775807`, ""),
			fail("POST", "/max?incr", "", conflict, "overflow"),
			ok("POST", "/max?incr=-1", "", `9223372036854775806`),
			ok("POST", "/min?incr=-9223372036854775808", "", `-9223372036854775808`),
			fail("POST", "/min?incr=-1", "", conflict, "overflow"),
			ok("GET", "/min", "", `-9223372036854775808`),
		}},

		// Idempotency and TTL syntax.
		{name: "idempotency key", steps: []step{
			ok("POST", "/k", `1`, `{"key":"/k","revision":0,"seq":1}`, "Idempotency-Key", "a").
				with(map[string]string{"Idempotent-Replayed": "-"}),
			ok("POST", "/k", `1`, `{"key":"/k","revision":0,"seq":1}`, "Idempotency-Key", "a").
				with(map[string]string{"Idempotent-Replayed": "true", "X-Revision": "0", "X-Seq": "1"}),
			fail("POST", "/k", `2`, http.StatusUnprocessableEntity, "idempotency_mismatch", "Idempotency-Key", "a"),
			fail("POST", "/k?ttl=30s", `1`, http.StatusUnprocessableEntity, "idempotency_mismatch", "Idempotency-Key", "a"),
			fail("PUT", "/k", `1`, http.StatusUnprocessableEntity, "idempotency_mismatch", "Idempotency-Key", "a", "X-Revision", "0"),
			fail("PUT", "/k", `1`, http.StatusUnprocessableEntity, "idempotency_mismatch", "Idempotency-Key", "a", "If-None-Match", "*"),
			ok("POST", "/n?incr=3", "", `3`, "Idempotency-Key", "b"),
			ok("POST", "/n?incr=3", "", `3`, "Idempotency-Key", "b").with(map[string]string{"Idempotent-Replayed": "true"}),
			ok("DELETE", "/k", "", `{"key":"/k","revision":1,"seq":3}`, "Idempotency-Key", "c"),
			ok("DELETE", "/k", "", `{"key":"/k","revision":1,"seq":3}`, "Idempotency-Key", "c").with(map[string]string{"Idempotent-Replayed": "true"}),
			ok("GET", "/n", "", `3`).with(map[string]string{"X-Revision": "0"}),
			fail("POST", "/k", `1`, bad, "invalid_idempotency_key", "Idempotency-Key", strings.Repeat("x", 256)),
		}},
		{name: "bad ttl", steps: []step{
			fail("POST", "/k?ttl=abc", `1`, bad, "invalid_ttl"),
			fail("POST", "/k?ttl=-1s", `1`, bad, "invalid_ttl"),
			fail("POST", "/k?ttl=0s", `1`, bad, "invalid_ttl"),
			fail("POST", "/k?ttl=", `1`, bad, "invalid_ttl"),
			fail("POST", "/k?ttl=1000000h", `1`, bad, "invalid_ttl"),
			fail("POST", "/k?incr&ttl=5", "", bad, "invalid_ttl"),
			ok("POST", "/k?ttl=1h30m", `1`, ""),
		}},

		// Limits and methods.
		{name: "value too large", cfg: hub.Config{Limits: hub.Limits{MaxValueBytes: 16}}, steps: []step{
			ok("POST", "/k", `"0123456789abcd"`, ""),
			fail("POST", "/k", `"0123456789abcde"`, tooLarge, "too_large"),
			fail("PUT", "/k", `[`+strings.Repeat("1,", 1000)+`1]`, tooLarge, "too_large"),
			ok("GET", "/k", "", `"0123456789abcd"`),
		}},
		{name: "too deep", cfg: hub.Config{Limits: hub.Limits{MaxJSONDepth: 3}}, steps: []step{
			ok("POST", "/k", `[[{"a":"[[[[\"{{"}]]`, ""),
			fail("POST", "/k", `[[[[1]]]]`, bad, "too_deep"),
			fail("POST", "/k", `{"a":{"b":{"c":{}}}}`, bad, "too_deep"),
		}},
		{name: "too deep by default", steps: []step{
			ok("POST", "/k", strings.Repeat("[", 64)+strings.Repeat("]", 64), ""),
			fail("POST", "/k", strings.Repeat("[", 65)+strings.Repeat("]", 65), bad, "too_deep"),
		}},
		{name: "methods", steps: []step{
			fail("POST", "/p/", `1`, notAllow, "method_not_allowed"),
			fail("PUT", "/p/", `1`, notAllow, "method_not_allowed"),
			fail("PATCH", "/k", `1`, notAllow, "method_not_allowed"),
			// Methods echo does not route get the same JSON 405, with CORS (FuzzHandler found "0").
			fail("FOO", "/k", ``, notAllow, "method_not_allowed").with(map[string]string{"Allow": "GET, HEAD, POST, PUT, DELETE, OPTIONS"}),
			fail("0", "/", ``, notAllow, "method_not_allowed"),
			fail("PROPFIND", "/a/", ``, notAllow, "method_not_allowed"),
			fail("BREW", "/.ws", ``, notAllow, "method_not_allowed"),
			step{method: "OPTIONS", path: "/k", status: http.StatusNoContent},
			step{method: "HEAD", path: "/k", status: notFound},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, tc.cfg, web.Config{})
			for _, s := range tc.steps {
				s.run(t, ts)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ts.must(t, "POST", "/k", `1`)
	tests := []struct {
		name   string
		method string
		path   string
		hdr    []string
		status int
	}{
		{"get without origin", "GET", "/k", nil, http.StatusOK},
		{"get with origin", "GET", "/k", []string{"Origin", "https://example.com"}, http.StatusOK},
		{"error without origin", "GET", "/absent", nil, http.StatusNotFound},
		{"error with origin", "GET", "/a//b", []string{"Origin", "https://example.com"}, http.StatusBadRequest},
		{"write with origin", "POST", "/k", []string{"Origin", "null"}, http.StatusOK},
		{"conflict with origin", "PUT", "/k", []string{"Origin", "https://x.test", "X-Revision", "9"}, http.StatusConflict},
		{"health", "GET", "/.health", nil, http.StatusOK},
		{"listing", "GET", "/p/", []string{"Origin", "https://x.test"}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := ""
			if tc.method == "POST" || tc.method == "PUT" {
				body = "1"
			}
			r := ts.do(t, tc.method, tc.path, body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			if r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("Access-Control-Allow-Credentials is set")
			}
			// "*" exposes every header to a request without credentials (e2e checks it in Chromium).
			if got := r.header.Values("Access-Control-Expose-Headers"); len(got) != 1 || got[0] != "*" {
				t.Errorf("Access-Control-Expose-Headers = %q, want *", got)
			}
		})
	}

	preflights := []struct {
		name    string
		method  string
		headers string
	}{
		{"put with revision", "PUT", "X-Revision, Idempotency-Key, If-Match, Content-Type"},
		{"put if-none-match", "PUT", "if-none-match,content-type"},
		{"post incr", "POST", "Idempotency-Key,Content-Type,Authorization"},
		{"delete", "DELETE", "X-Revision,If-Match"},
		{"fenced put", "PUT", "If-Fence,Content-Type,Idempotency-Key"},
		{"get stream", "GET", "Last-Event-ID,Cache-Control,Authorization"},
	}
	for _, tc := range preflights {
		t.Run("preflight "+tc.name, func(t *testing.T) {
			t.Parallel()
			r := ts.do(t, "OPTIONS", "/k", "", "Origin", "https://example.com",
				"Access-Control-Request-Method", tc.method, "Access-Control-Request-Headers", tc.headers)
			if r.status != http.StatusNoContent && r.status != http.StatusOK {
				t.Fatalf("preflight status %d: %s", r.status, r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			methods := r.header.Get("Access-Control-Allow-Methods")
			if !strings.Contains(methods, tc.method) {
				t.Errorf("Access-Control-Allow-Methods %q lacks %s", methods, tc.method)
			}
			allowed := strings.ToLower(strings.Join(r.header.Values("Access-Control-Allow-Headers"), ","))
			for _, h := range strings.Split(tc.headers, ",") {
				if h = strings.ToLower(strings.TrimSpace(h)); !strings.Contains(allowed, h) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
				}
			}
		})
	}
}

func TestListing(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	keys := []string{"/l/a", "/l/b/x", "/l/b/y", "/l/c", "/l/d/e/f", "/l/e", "/lz", "/m/a"}
	for i, k := range keys {
		ts.must(t, "POST", k, fmt.Sprintf(`{"n":%d}`, i+1))
	}
	entry := func(i int) string {
		return fmt.Sprintf(`{"key":%q,"value":{"n":%d},"revision":0,"seq":%d}`, keys[i], i+1, i+1)
	}
	tests := []struct {
		name, query string
		want        string
	}{
		{"all", "/l/", `{"entries":[` + strings.Join([]string{entry(0), entry(1), entry(2), entry(3), entry(4), entry(5)}, ",") + `]}`},
		{"subtree", "/l/b/", `{"entries":[` + entry(1) + "," + entry(2) + `]}`},
		{"empty", "/nothing/", `{"entries":[]}`},
		{"keys only", "/l/b/?keys", `{"entries":[{"key":"/l/b/x","revision":0,"seq":2},{"key":"/l/b/y","revision":0,"seq":3}]}`},
		{"children", "/l/?children", `{"entries":[` + entry(0) + `,{"key":"/l/b/"},` + entry(3) + `,{"key":"/l/d/"},` + entry(5) + `]}`},
		{"children keys", "/l/?children&keys=1", `{"entries":[{"key":"/l/a","revision":0,"seq":1},{"key":"/l/b/"},{"key":"/l/c","revision":0,"seq":4},{"key":"/l/d/"},{"key":"/l/e","revision":0,"seq":6}]}`},
		{"keys false", "/l/b/?keys=false", `{"entries":[` + entry(1) + "," + entry(2) + `]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := ts.must(t, "GET", tc.query, "")
			if strings.TrimSuffix(r.body, "\n") != tc.want {
				t.Errorf("GET %s:\n got %s\nwant %s", tc.query, r.body, tc.want)
			}
			if r.header.Get("X-Seq") != "8" {
				t.Errorf("X-Seq %q, want 8", r.header.Get("X-Seq"))
			}
		})
	}

	pages := []struct {
		name  string
		query string
		limit int
		want  []string
	}{
		{"limit 1", "/l/", 1, []string{"/l/a", "/l/b/x", "/l/b/y", "/l/c", "/l/d/e/f", "/l/e"}},
		{"limit 4", "/l/", 4, []string{"/l/a", "/l/b/x", "/l/b/y", "/l/c", "/l/d/e/f", "/l/e"}},
		{"limit 6", "/l/", 6, []string{"/l/a", "/l/b/x", "/l/b/y", "/l/c", "/l/d/e/f", "/l/e"}},
		{"children limit 2", "/l/?children", 2, []string{"/l/a", "/l/b/", "/l/c", "/l/d/", "/l/e"}},
	}
	for _, tc := range pages {
		t.Run("paging "+tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			cursor := ""
			for n := 0; ; n++ {
				if n > len(tc.want) {
					t.Fatalf("more pages than entries: %v", got)
				}
				sep := "?"
				if strings.Contains(tc.query, "?") {
					sep = "&"
				}
				q := fmt.Sprintf("%s%slimit=%d", tc.query, sep, tc.limit)
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				r := ts.must(t, "GET", q, "")
				var page struct {
					Entries []web.ListEntry `json:"entries"`
					Cursor  *string         `json:"cursor"`
				}
				if err := json.Unmarshal([]byte(r.body), &page); err != nil {
					t.Fatal(err)
				}
				if len(page.Entries) > tc.limit {
					t.Fatalf("page of %d entries over limit %d", len(page.Entries), tc.limit)
				}
				for _, e := range page.Entries {
					got = append(got, e.Key)
				}
				if page.Cursor == nil {
					break
				}
				if *page.Cursor == "" {
					t.Fatalf("empty cursor present: %s", r.body)
				}
				cursor = *page.Cursor
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("keys %v, want %v", got, tc.want)
			}
		})
	}

	errs := []struct {
		name, query, code string
	}{
		{"limit zero", "/l/?limit=0", "invalid_limit"},
		{"limit word", "/l/?limit=many", "invalid_limit"},
		{"bad cursor", "/l/?cursor=!!", "invalid_cursor"},
		{"cursor of other bytes", "/l/?cursor=zzzz", "invalid_cursor"},
		{"foreign cursor", "/m/?cursor=L2wvYQ", "invalid_cursor"},
		{"bad prefix", "/l//", "invalid_key"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := ts.do(t, "GET", tc.query, "")
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if eb := errorBody(t, r); eb.Code != tc.code {
				t.Errorf("code %q, want %q", eb.Code, tc.code)
			}
		})
	}
}

// TestListingBytes: a listing of 1 MiB values comes back in pages of at most hub.DefaultListBytes
// (or a single entry), streamed, whose concatenation is the whole subtree.
func TestListingBytes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	const n = 10
	value := func(i int) string { return `"` + strconv.Itoa(i) + strings.Repeat("v", 1<<20-3) + `"` }
	for i := range n {
		ts.must(t, "POST", fmt.Sprintf("/big/%d", i), value(i))
	}
	next, pages, cursor := 0, 0, ""
	for {
		q := "/big/"
		if cursor != "" {
			q += "?cursor=" + cursor
		}
		r := ts.must(t, "GET", q, "")
		var page web.ListAnswer
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatal(err)
		}
		pages++
		used := 0
		for _, e := range page.Entries {
			if want := fmt.Sprintf("/big/%d", next); e.Key != want || string(e.Value) != value(next) {
				t.Fatalf("page %d: entry %s (%d bytes), want %s", pages, e.Key, len(e.Value), want)
			}
			used += len(e.Key) + len(e.Value)
			next++
		}
		if len(page.Entries) == 0 || len(page.Entries) > 1 && used > hub.DefaultListBytes {
			t.Fatalf("page %d: %d entries of %d bytes", pages, len(page.Entries), used)
		}
		if page.Cursor == "" {
			break
		}
		cursor = page.Cursor
	}
	if next != n || pages < 3 {
		t.Fatalf("%d entries in %d pages, want %d in several", next, pages, n)
	}
}

// TestListingWireFormat: the streamed listing is byte for byte what encoding/json makes of a
// web.ListAnswer, escapes included.
func TestListingWireFormat(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	values := map[string]string{
		"/w/a":     `{"html":"<b>&amp;</b>","sep":"` + "\u2028 \u2029" + ` \u00e9"}`,
		"/w/b/c":   `[1,2.50,"x"]`,
		"/w/été":   `"ü ☃ 😀"`,
		"/w/d":     `null`,
		"/w/e/f/g": `{}`,
	}
	for k, v := range values {
		ts.must(t, "POST", k, v)
	}
	// An ephemeral key's presence, with a subject to escape.
	if _, err := ts.hub.Set("/w/p", []byte(`1`), hub.Cond{}, hub.WriteOptions{Session: ts.hub.NewSession(), Subject: "<a&b> é"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"/w/", "/w/?children", "/w/?keys", "/w/?limit=2", "/w/?children&limit=1"} {
		r := ts.must(t, "GET", q, "")
		var page web.ListAnswer
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var want strings.Builder
		if err := json.NewEncoder(&want).Encode(page); err != nil {
			t.Fatal(err)
		}
		if r.body != want.String() {
			t.Errorf("GET %s:\n got %s\nwant %s", q, r.body, want.String())
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", q, ct)
		}
	}
}

func TestTTLExpiry(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{})
	stream := ts.subscribe(t, "/t/", "")
	stream.next(t) // ready

	ts.must(t, "POST", "/t/a?ttl=30s", `1`)
	ts.must(t, "POST", "/t/b?ttl=1m", `2`)
	ts.must(t, "POST", "/t/n?incr=2&ttl=45s", ``)
	ts.must(t, "POST", "/t/n?incr", ``) // keeps its TTL
	ts.must(t, "PUT", "/t/c?ttl=10s", `3`)
	ts.must(t, "PUT", "/t/c", `3`) // a write without ttl clears it
	for range 6 {
		stream.next(t)
	}

	clock.Advance(29 * time.Second)
	ts.must(t, "GET", "/t/a", "")
	clock.Advance(time.Second)
	if r := ts.do(t, "GET", "/t/a", ""); r.status != http.StatusNotFound {
		t.Fatalf("after its ttl /t/a answers %d %s", r.status, r.body)
	}
	ev := stream.next(t)
	if ev.event != "delete" || ev.id != "/t/a:1:7" || ev.data != "null" {
		t.Fatalf("expiry event %+v, want delete of /t/a:1:7", ev)
	}
	clock.Advance(time.Minute)
	for _, k := range []string{"/t/b", "/t/n"} {
		if r := ts.do(t, "GET", k, ""); r.status != http.StatusNotFound {
			t.Errorf("after its ttl %s answers %d %s", k, r.status, r.body)
		}
	}
	got := []event{stream.next(t), stream.next(t)}
	want := []string{"/t/n:2:8", "/t/b:1:9"}
	for i, ev := range got {
		if ev.event != "delete" || ev.id != want[i] {
			t.Errorf("expiry event %d: %+v, want delete %s", i, ev, want[i])
		}
	}
	ts.must(t, "GET", "/t/c", "")
}

func TestIdempotentRetriesConcurrently(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	var wg sync.WaitGroup
	bodies := make([]string, 16)
	for i := range bodies {
		wg.Go(func() {
			bodies[i] = ts.must(t, "POST", "/c?incr=10", "", "Idempotency-Key", "once").body
		})
	}
	wg.Wait()
	for i, b := range bodies {
		if b != "10" {
			t.Errorf("retry %d answered %q, want 10", i, b)
		}
	}
	if r := ts.must(t, "GET", "/c", ""); r.body != "10" || r.header.Get("X-Revision") != "0" {
		t.Errorf("value %s at revision %s, want 10 at 0", r.body, r.header.Get("X-Revision"))
	}
}

// TestInvalidUTF8: JSON is UTF-8 (RFC 8259). A value, an object key, a transaction or a lock owner
// that is not valid UTF-8 is refused with 400 invalid_json naming the offset of the first bad byte,
// and nothing is stored; valid multi-byte text is stored unchanged, and a raw file stays bytes.
func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	const bad = http.StatusBadRequest
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, msg                string // msg: in the error's text
	}{
		{"the report's value", "POST", "/u8/raw", "\"\xff\xfe\"", nil, bad, "invalid_json", "value is not valid UTF-8 (byte offset 1)"},
		{"json content type", "POST", "/u8/raw", "\"\xff\"", []string{"Content-Type", "application/json; charset=utf-8"}, bad, "invalid_json", "byte offset 1"},
		{"text/plain as sent by fetch", "POST", "/u8/raw", "\"\xff\"", []string{"Content-Type", "text/plain;charset=UTF-8"}, bad, "invalid_json", "byte offset 1"},
		{"lone continuation byte", "POST", "/u8/raw", "[\"a\x80\"]", nil, bad, "invalid_json", "byte offset 3"},
		{"overlong encoding", "POST", "/u8/raw", "\"\xc0\xaf\"", nil, bad, "invalid_json", "byte offset 1"},
		{"surrogate half", "POST", "/u8/raw", "\"\xed\xa0\x80\"", nil, bad, "invalid_json", "byte offset 1"},
		{"truncated sequence", "POST", "/u8/raw", "\"€\xe2\x82\"", nil, bad, "invalid_json", "byte offset 4"},
		{"in an object key", "POST", "/u8/raw", "{\"k\xff\":1}", nil, bad, "invalid_json", "byte offset 3"},
		{"put compare-and-swap", "PUT", "/u8/raw", "\"\xff\"", []string{"X-Revision", "0"}, bad, "invalid_json", "not valid UTF-8"},
		{"put create only", "PUT", "/u8/raw", "\"\xff\"", []string{"If-None-Match", "*"}, bad, "invalid_json", "not valid UTF-8"},
		{"put with ttl and idempotency key", "PUT", "/u8/raw?ttl=1m", "\"\xff\"", []string{"Idempotency-Key", "k"}, bad, "invalid_json", "not valid UTF-8"},
		{"tx value", "POST", "/.tx", "{\"ops\":[{\"op\":\"set\",\"key\":\"/u8/raw\",\"value\":\"\xff\"}]}", nil, bad, "invalid_json", "the body is not valid UTF-8 (byte offset 45)"},
		{"tx object key in a value", "POST", "/.tx", "{\"ops\":[{\"op\":\"set\",\"key\":\"/u8/raw\",\"value\":{\"\xed\xa0\x80\":1}}]}", nil, bad, "invalid_json", "byte offset 46"},
		{"tx key", "POST", "/.tx", "{\"ops\":[{\"op\":\"delete\",\"key\":\"/u8/\xff\"}]}", nil, bad, "invalid_json", "byte offset 34"},
		{"lock owner", "POST", "/u8/raw?lock&owner=ci%FF", "", nil, bad, "invalid_json", "lock owner is not valid UTF-8 (byte offset 2)"},
		{"key", "POST", "/u8/%FF", `1`, nil, bad, "invalid_key", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			eb := errorBody(t, r)
			if r.status != tc.status || eb.Code != tc.code || !strings.Contains(eb.Error, tc.msg) {
				t.Fatalf("%d %s; want %d %s with %q", r.status, r.body, tc.status, tc.code, tc.msg)
			}
		})
	}
	fail("GET", "/u8/raw", "", http.StatusNotFound, "not_found").run(t, ts)

	// Valid text of every length of sequence, in keys and strings, is stored and read back as sent;
	// an escaped lone surrogate is ASCII and valid JSON text.
	for _, v := range []string{`{"ключ":"€ 𝄞 日本 é"}`, "\"\xef\xbf\xbd\"", `"\ud800"`} {
		ts.must(t, "POST", "/u8/ok", v)
		ts.must(t, "POST", "/.tx", `{"ops":[{"op":"set","key":"/u8/tx","value":`+v+`}]}`)
		for _, key := range []string{"/u8/ok", "/u8/tx"} {
			if r := ts.must(t, "GET", key, ""); r.body != v {
				t.Errorf("GET %s = %s, want %s", key, r.body, v)
			}
		}
	}
	// A raw file is bytes, served over HTTP only; its description (the key's value) is JSON.
	ts.must(t, "POST", "/u8/file", "\xff\xfe", "Content-Type", "application/octet-stream")
	if r := ts.must(t, "GET", "/u8/file", ""); r.body != "\xff\xfe" {
		t.Errorf("raw file = %q", r.body)
	}
}

// TestBadInputNamed: a mistyped query parameter, a key that exists only as a subtree and a file
// sent without its type each get an answer that says what is wrong and what to do.
func TestBadInputNamed(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ts.must(t, "POST", "/dir/a", `1`)
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, says               string
	}{
		{"misspelled ttl", "POST", "/k?tll=30s", `1`, nil, 400, "unknown_parameter", `"tll"`},
		{"misspelled ttl on a lock", "POST", "/k?lock&tll=5s", ``, nil, 400, "unknown_parameter", "ttl"},
		{"a read takes none", "GET", "/k?snapshot", ``, nil, 400, "unknown_parameter", "takes none"},
		{"a listing option on a key", "DELETE", "/k?limit=3", ``, nil, 400, "unknown_parameter", `"limit"`},
		{"a subtree read as a key", "GET", "/dir", ``, nil, 404, "not_found", "/dir/ holds keys"},
		{"a file without its type", "PUT", "/cov", "<svg/>", nil, 400, "invalid_json", "Content-Type"},
		{"a cache buster", "GET", "/dir/a?_=123", ``, nil, 200, "", ""},
		{"a token", "GET", "/dir/a?token=x", ``, nil, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.status)
			}
			if tc.code == "" {
				return
			}
			var e struct{ Error, Code string }
			json.Unmarshal([]byte(r.body), &e)
			if e.Code != tc.code || !strings.Contains(e.Error, tc.says) {
				t.Errorf("%s %s: %s, want code %s and an error that says %q", tc.method, tc.path, r.body, tc.code, tc.says)
			}
		})
	}
}

// TestListingShowsExpiry: a listing names when a key with a TTL expires, over HTTP and the
// WebSocket alike (RFC 3339, UTC); a key without one has no expires.
func TestListingShowsExpiry(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{})
	ts.must(t, "POST", "/t/a?ttl=1h", `1`)
	ts.must(t, "POST", "/t/b", `2`)
	r := ts.must(t, "GET", "/t/", "")
	want := `{"entries":[{"key":"/t/a","value":1,"revision":0,"seq":1,"expires":"2026-01-02T04:04:05Z"},{"key":"/t/b","value":2,"revision":0,"seq":2}]}`
	if strings.TrimSpace(r.body) != want {
		t.Fatalf("listing %s, want %s", r.body, want)
	}
}
