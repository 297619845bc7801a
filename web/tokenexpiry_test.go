package web_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/statehub/statehub/auth"
)

// TestSSETokenExpires: a stream opened with a token ends with `event: close`, reason
// token_expired, once the fake clock passes the token's exp (plus the leeway, when a request with
// it starts getting 401), and nothing committed after that reaches it; anonymous and admin-token
// streams, whose principals have no exp, go on.
func TestSSETokenExpires(t *testing.T) {
	t.Parallel()
	ts, clock := authServer(t, "", &auth.Grants{Read: []string{"/room/"}})
	tok := hs(t, claims("ann", map[string][]string{"read": {"/room/"}})) // exp: an hour from now
	admin := bearer(testAdminToken)
	withToken := ts.subscribe(t, "/room/?token="+tok, "")
	anon := ts.subscribe(t, "/room/", "")
	adminStream := ts.subscribe(t, "/room/", "", admin...)
	for _, s := range []*sseStream{withToken, anon, adminStream} {
		if ev := s.next(t); ev.event != "ready" {
			t.Fatalf("first event %+v, want ready", ev)
		}
	}
	ts.must(t, "POST", "/room/a", `1`, admin...)
	withToken.expect(t, `- /room/a:0:1 1`)

	clock.Advance(30 * time.Minute) // still valid: the stream goes on
	ts.must(t, "POST", "/room/a", `2`, admin...)
	withToken.expect(t, `- /room/a:1:2 2`)

	clock.Advance(30*time.Minute + auth.DefaultLeeway + time.Second)
	ts.must(t, "POST", "/room/b", `3`, admin...)
	if ev := withToken.next(t); ev.event != "close" || ev.data != `{"reason":"token_expired"}` || ev.hasID {
		t.Fatalf("after exp: %+v, want close token_expired and no change", ev)
	}
	if _, err := withToken.read(); err != io.EOF {
		t.Fatalf("after close: %v, want EOF", err)
	}
	if r := ts.do(t, "GET", "/room/a?token="+tok, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("a request with the expired token: %d %s", r.status, r.body)
	}
	for _, s := range []*sseStream{anon, adminStream} {
		s.expect(t, `- /room/a:0:1 1`, `- /room/a:1:2 2`, `- /room/b:0:3 3`)
	}
}
