package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

const (
	wsTestSecret = "0123456789abcdef0123456789abcdef-ws-test-secret"
	wsTestAdmin  = "ws-admin-token-for-tests-0123456789"
)

// wsAuthServer runs a WebSocket server with an HS256 secret, an admin token and anon as the
// anonymous grants (nil: none).
func wsAuthServer(t testing.TB, anon *auth.Grants, limits Limits) *wsServer {
	t.Helper()
	authn, err := auth.New(auth.Config{JWTSecret: wsTestSecret, AdminToken: wsTestAdmin, Anonymous: anon})
	if err != nil {
		t.Fatal(err)
	}
	return newWSServer(t, hub.Config{}, Config{Auth: authn, Limits: limits}, false)
}

// wsToken signs an HS256 token for sub with grants, valid for an hour.
func wsToken(t testing.TB, sub string, grants map[string][]string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "grants": grants, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	s, err := tok.SignedString([]byte(wsTestSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialWith dials with a query string (without "?") and headers on the upgrade request.
func (ts *wsServer) dialWith(t testing.TB, query string, hdr http.Header) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := ts.url
	if query != "" {
		u += "?" + query
	}
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

// authed dials and sends tok in the auth message, which must be accepted.
func (ts *wsServer) authed(t testing.TB, tok string) *wsClient {
	t.Helper()
	c := ts.dial(t)
	c.must(m{"op": "auth", "token": tok})
	return c
}

// expectFail calls req and requires an error answer with status and code.
func (c *wsClient) expectFail(req m, status int, code string) {
	c.t.Helper()
	a := c.call(req)
	if a.OK || a.Status != status || a.Code != code || a.Error == "" {
		c.t.Fatalf("%v: %s, want status %d code %s", req, a.raw, status, code)
	}
}

// TestWSAuthGrants: each op over a WebSocket needs the grant its HTTP counterpart needs.
func TestWSAuthGrants(t *testing.T) {
	t.Parallel()
	ts := wsAuthServer(t, &auth.Grants{Read: []string{"/public/"}}, Limits{})
	admin := ts.authed(t, wsTestAdmin)
	for _, k := range []string{"/a/b/c", "/a/bc", "/a/b", "/public/p", "/n/c", "/w/x"} {
		admin.must(m{"op": "set", "key": k, "value": 1})
	}

	// No token: the anonymous grants only, and 401 (a token would help) for the rest.
	anon := ts.dial(t)
	anon.must(m{"op": "get", "key": "/public/p"})
	anon.must(m{"op": "list", "path": "/public/"})
	anon.must(m{"op": "sub", "path": "/public/"})
	anon.expectFail(m{"op": "get", "key": "/a/b/c"}, 401, "unauthorized")
	anon.expectFail(m{"op": "list", "path": "/a/"}, 401, "unauthorized")
	anon.expectFail(m{"op": "sub", "path": "/a/b/"}, 401, "unauthorized")
	anon.expectFail(m{"op": "set", "key": "/public/p", "value": 2}, 401, "unauthorized")
	anon.expectFail(m{"op": "incr", "key": "/public/n"}, 401, "unauthorized")
	anon.expectFail(m{"op": "lock", "key": "/public/l"}, 401, "unauthorized")
	anon.expectFail(m{"op": "sub", "path": "/"}, 401, "unauthorized")
	// A bad path is a bad request before it is an authorization question, as over HTTP.
	anon.expectFail(m{"op": "get", "key": "/a//b"}, 400, "invalid_key")
	anon.expectFail(m{"op": "get", "key": ""}, 400, "invalid_key")

	// A token in the auth message grants its paths only.
	tok := wsToken(t, "ann", map[string][]string{
		"read": {"/a/b/"}, "write": {"/w/"}, "incr": {"/n/"}, "lock": {"/l"},
	})
	c := ts.authed(t, tok)
	c.must(m{"op": "get", "key": "/a/b/c"})
	c.must(m{"op": "list", "path": "/a/b/"})
	c.expectFail(m{"op": "get", "key": "/a/bc"}, 403, "forbidden")
	c.expectFail(m{"op": "get", "key": "/a/b"}, 403, "forbidden")
	c.expectFail(m{"op": "list", "path": "/a/"}, 403, "forbidden")
	c.expectFail(m{"op": "set", "key": "/a/b/c", "value": 2}, 403, "forbidden")
	c.expectFail(m{"op": "cas", "key": "/a/b/c", "value": 2, "revision": 1}, 403, "forbidden")
	c.expectFail(m{"op": "delete", "key": "/a/b/c"}, 403, "forbidden")
	c.must(m{"op": "set", "key": "/w/y", "value": 1})
	c.must(m{"op": "cas", "key": "/w/y", "value": 2, "revision": 1})
	c.must(m{"op": "get", "key": "/w/y"})    // write implies read
	c.must(m{"op": "incr", "key": "/w/cnt"}) // and incr
	c.must(m{"op": "incr", "key": "/n/c"})
	c.expectFail(m{"op": "get", "key": "/n/c"}, 403, "forbidden") // incr does not imply read
	c.expectFail(m{"op": "set", "key": "/n/c", "value": 1}, 403, "forbidden")
	l := c.must(m{"op": "lock", "key": "/l", "ttl": "1m"})
	c.must(m{"op": "renew", "key": "/l", "token": l.Token})
	c.must(m{"op": "unlock", "key": "/l", "token": l.Token})
	c.expectFail(m{"op": "lock", "key": "/l2"}, 403, "forbidden")
	c.expectFail(m{"op": "renew", "key": "/a/b/c", "token": "x"}, 403, "forbidden")
	c.expectFail(m{"op": "unlock", "key": "/a/b/c", "token": "x"}, 403, "forbidden")
	// Transactions: read on each check, write (or incr) on each operation.
	c.must(m{"op": "tx", "checks": []m{{"key": "/a/b/c", "revision": 0}}, "ops": []m{{"op": "set", "key": "/w/t", "value": 1}, {"op": "incr", "key": "/n/t"}}})
	c.expectFail(m{"op": "tx", "ops": []m{{"op": "set", "key": "/w/t", "value": 2}, {"op": "set", "key": "/a/b/c", "value": 2}}}, 403, "forbidden")
	c.expectFail(m{"op": "tx", "ops": []m{{"op": "set", "key": "/n/t", "value": 2}}}, 403, "forbidden")
	c.expectFail(m{"op": "tx", "checks": []m{{"key": "/n/c", "revision": 0}}, "ops": []m{{"op": "incr", "key": "/n/t"}}}, 403, "forbidden")
	if a := admin.must(m{"op": "get", "key": "/w/t"}); string(a.Value) != "1" {
		t.Fatalf("a refused transaction must not apply: %s", a.raw)
	}
	// Subscriptions need read on their path; the root needs admin.
	c.must(m{"op": "sub", "path": "/a/b/"})
	sub := c.id
	c.expectFail(m{"op": "sub", "path": "/a/"}, 403, "forbidden")
	c.expectFail(m{"op": "sub", "path": "/other/"}, 403, "forbidden")
	c.expectFail(m{"op": "sub", "path": "/"}, 403, "forbidden")
	c.must(m{"op": "delete", "path": "/w/"})
	c.expectFail(m{"op": "delete", "path": "/"}, 403, "forbidden")
	admin.must(m{"op": "set", "key": "/a/bc", "value": 7}) // outside the subscription
	admin.must(m{"op": "set", "key": "/a/b/c", "value": 8})
	c.expectEvents(sub, "ready", "set /a/b/c 8@1")

	// A reader of every key is not admin: the root is refused; the admin token has it.
	reader := ts.authed(t, wsToken(t, "rob", map[string][]string{"read": {"/"}}))
	reader.must(m{"op": "sub", "path": "/a/"})
	reader.expectFail(m{"op": "sub", "path": "/"}, 403, "forbidden")
	reader.expectFail(m{"op": "list", "path": "/"}, 403, "forbidden")
	admin.must(m{"op": "sub", "path": "/"})
	admin.must(m{"op": "list", "path": "/"})
	root := ts.authed(t, wsToken(t, "root", map[string][]string{"admin": {"/"}}))
	root.must(m{"op": "sub", "path": "/"})
}

// TestWSAuthUpgradeToken: the token may come with the upgrade request instead; the auth message
// takes precedence over it.
func TestWSAuthUpgradeToken(t *testing.T) {
	t.Parallel()
	ts := wsAuthServer(t, nil, Limits{})
	admin := ts.authed(t, wsTestAdmin)
	admin.must(m{"op": "set", "key": "/a/b/c", "value": 1})
	admin.must(m{"op": "set", "key": "/a/bc", "value": 1})
	tok := wsToken(t, "ann", map[string][]string{"read": {"/a/b/"}})

	q := ts.dialWith(t, "token="+url.QueryEscape(tok), nil)
	q.must(m{"op": "get", "key": "/a/b/c"})
	q.must(m{"op": "sub", "path": "/a/b/"})
	q.expectFail(m{"op": "get", "key": "/a/bc"}, 403, "forbidden")
	q.expectFail(m{"op": "sub", "path": "/a/"}, 403, "forbidden")

	h := ts.dialWith(t, "", http.Header{"Authorization": {"Bearer " + tok}})
	h.must(m{"op": "get", "key": "/a/b/c"})
	h.expectFail(m{"op": "get", "key": "/a/bc"}, 403, "forbidden")

	// The auth message's token wins over the upgrade request's.
	o := ts.dialWith(t, "token="+url.QueryEscape(tok), nil)
	o.must(m{"op": "auth", "token": wsTestAdmin})
	o.must(m{"op": "get", "key": "/a/bc"})

	// A bad token on the upgrade request: every request is refused with 401.
	bad := ts.dialWith(t, "token=nope", nil)
	bad.expectFail(m{"op": "get", "key": "/a/b/c"}, 401, "unauthorized")
	bad.expectFail(m{"op": "sub", "path": "/a/b/"}, 401, "unauthorized")
	bh := ts.dialWith(t, "", http.Header{"Authorization": {"Basic " + tok}})
	bh.expectFail(m{"op": "get", "key": "/a/b/c"}, 401, "unauthorized")

	// No token at all and no anonymous grants: 401.
	none := ts.dial(t)
	none.expectFail(m{"op": "get", "key": "/a/b/c"}, 401, "unauthorized")
}

// TestWSAuthBadToken: a refused token in the auth message is answered 401, then the connection
// is closed (the client treats it as fatal); nothing sent after it runs.
func TestWSAuthBadToken(t *testing.T) {
	t.Parallel()
	ts := wsAuthServer(t, &auth.Grants{Write: []string{"/"}}, Limits{})
	expired := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "ann", "grants": map[string][]string{"write": {"/x/"}}, "exp": time.Now().Add(-time.Hour).Unix(),
	})
	expiredTok, err := expired.SignedString([]byte(wsTestSecret))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"garbage": "nope", "expired": expiredTok, "other secret": func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "eve"}).SignedString([]byte("another-secret-another-secret-xx"))
		return s
	}()} {
		t.Run(name, func(t *testing.T) {
			c := ts.dial(t)
			// The auth and a write pipelined behind it, as the client sends them.
			c.sendRaw(`{"op":"auth","id":1,"token":` + strconv.Quote(tok) + `}`)
			c.sendRaw(`{"op":"set","id":2,"key":"/x/` + name[:1] + `","value":1}`)
			a := c.read()
			if string(a.ID) != "1" || a.OK || a.Status != 401 || a.Code != "unauthorized" {
				t.Fatalf("auth with a bad token: %s", a.raw)
			}
			for {
				m, err := c.readMsg()
				if err != nil {
					if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
						t.Fatalf("close: %v, want status %d", err, websocket.StatusPolicyViolation)
					}
					break
				}
				if m.OK {
					t.Fatalf("a request after a refused auth succeeded: %s", m.raw)
				}
			}
		})
	}
	// Nothing was written.
	c := ts.dial(t)
	if a := c.call(m{"op": "list", "path": "/x/"}); !a.OK || len(a.Entries) != 0 {
		t.Fatalf("writes after a refused auth: %s", a.raw)
	}
}

// TestWSSubscriptionLimit: at most MaxSocketSubs subscriptions per connection.
func TestWSSubscriptionLimit(t *testing.T) {
	t.Parallel()
	ts := wsAuthServer(t, &auth.Grants{Read: []string{"/"}}, Limits{MaxSocketSubs: 2})
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/a/"})
	first := c.id
	c.must(m{"op": "sub", "path": "/b/"})
	c.expectFail(m{"op": "sub", "path": "/c/"}, 429, "too_many_subscriptions")
	// Another connection has its own allowance.
	d := ts.dial(t)
	d.must(m{"op": "sub", "path": "/c/"})
	// An unsub frees a place.
	c.must(m{"op": "unsub", "sub": first})
	c.must(m{"op": "sub", "path": "/c/"})
	c.expectFail(m{"op": "sub", "path": "/d/"}, 429, "too_many_subscriptions")

}
