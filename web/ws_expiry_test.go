package web

import (
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// wsExpiryServer runs a WebSocket server whose hub, auth and server share one fake clock.
func wsExpiryServer(t *testing.T) (*wsServer, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(time.Now())
	authn, err := auth.New(auth.Config{JWTSecret: wsTestSecret, AdminToken: wsTestAdmin, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return newWSServer(t, hub.Config{Clock: clock}, Config{Auth: authn, Clock: clock}, false), clock
}

// wsTokenUntil signs an HS256 token for sub with grants that expires at exp.
func wsTokenUntil(t *testing.T, sub string, grants map[string][]string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "grants": grants, "exp": exp.Unix()}).
		SignedString([]byte(wsTestSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expectClosed reads until the connection ends, which must be with status and reason; every
// message read meanwhile goes to check.
func (c *wsClient) expectClosed(status websocket.StatusCode, reason string, check func(wsMsg)) {
	c.t.Helper()
	for {
		msg, err := c.readMsg()
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != status || ce.Reason != reason {
				c.t.Fatalf("connection ended with %v, want status %d reason %q", err, status, reason)
			}
			return
		}
		check(msg)
	}
}

// TestWSTokenExpires: a connection whose token has an exp is closed with 1008 "token_expired"
// when the fake clock passes it (plus the leeway), and no change committed after that reaches
// it; a connection whose token has no exp (the admin token) goes on; a fresh token connects.
func TestWSTokenExpires(t *testing.T) {
	t.Parallel()
	ts, clock := wsExpiryServer(t)
	admin := ts.authed(t, wsTestAdmin)
	grants := map[string][]string{"write": {"/w/"}}
	c := ts.authed(t, wsTokenUntil(t, "ann", grants, clock.Now().Add(time.Hour)))
	c.must(m{"op": "sub", "path": "/w/"})
	sub := c.id
	c.expectEvents(sub, "ready")
	c.must(m{"op": "set", "key": "/w/a", "value": 1})
	c.expectEvents(sub, "set /w/a 1@0")

	clock.Advance(30 * time.Minute) // still valid
	admin.must(m{"op": "set", "key": "/w/a", "value": 2})
	c.expectEvents(sub, "set /w/a 2@1")

	clock.Advance(30*time.Minute + auth.DefaultLeeway + time.Second)
	admin.must(m{"op": "set", "key": "/w/b", "value": 3}) // the admin token has no exp
	c.expectClosed(websocket.StatusPolicyViolation, "token_expired", func(msg wsMsg) {
		t.Fatalf("after exp: %s", msg.raw)
	})

	ts.authed(t, wsTokenUntil(t, "ann", grants, clock.Now().Add(time.Hour))).must(m{"op": "get", "key": "/w/b"})
}

// TestWSReauth: an auth message with a fresh token before the old one expires keeps the
// connection and its subscriptions past the old exp; the new token's grants apply at once (a
// subscription they do not cover ends with close "unauthorized"); a refused token changes
// nothing; the new exp closes the connection.
func TestWSReauth(t *testing.T) {
	t.Parallel()
	ts, clock := wsExpiryServer(t)
	admin := ts.authed(t, wsTestAdmin)
	start := clock.Now()
	c := ts.authed(t, wsTokenUntil(t, "ann", map[string][]string{"read": {"/w/", "/x/"}}, start.Add(time.Hour)))
	c.must(m{"op": "sub", "path": "/w/"})
	w := c.id
	c.expectEvents(w, "ready")
	c.must(m{"op": "sub", "path": "/x/"})
	x := c.id
	c.expectEvents(x, "ready")

	clock.Advance(30 * time.Minute)
	c.must(m{"op": "auth", "token": wsTokenUntil(t, "ann", map[string][]string{"read": {"/w/"}, "write": {"/y/"}}, start.Add(2*time.Hour))})
	c.expectEvents(x, "close unauthorized")
	c.must(m{"op": "set", "key": "/y/a", "value": 0}) // a grant of the new token only

	clock.Advance(30*time.Minute + auth.DefaultLeeway + time.Second) // past the old token's exp
	admin.must(m{"op": "set", "key": "/w/a", "value": 1})
	admin.must(m{"op": "set", "key": "/x/a", "value": 1})
	c.expectEvents(w, "set /w/a 1@0")
	c.expectFail(m{"op": "get", "key": "/x/a"}, 403, "forbidden")

	// Refused tokens: an error answer, and the connection goes on as it was.
	for _, bad := range []string{"garbage", wsTokenUntil(t, "ann", map[string][]string{"read": {"/"}}, start), wsTestAdmin + "x"} {
		c.expectFail(m{"op": "auth", "token": bad}, 401, "unauthorized")
	}
	c.expectFail(m{"op": "auth"}, 400, "bad_request")
	admin.must(m{"op": "set", "key": "/w/a", "value": 2})
	c.expectEvents(w, "set /w/a 2@1")
	c.expectFail(m{"op": "get", "key": "/x/a"}, 403, "forbidden")

	clock.Advance(time.Hour) // past the new token's exp
	admin.must(m{"op": "set", "key": "/w/a", "value": 3})
	c.expectClosed(websocket.StatusPolicyViolation, "token_expired", func(msg wsMsg) {
		t.Fatalf("after exp: %s", msg.raw)
	})
}
