package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// Test identities.
const (
	testSecret     = "0123456789abcdef0123456789abcdef-test-secret"
	testAdminToken = "admin-token-for-tests-0123456789"
	testAudience   = "statehub-test"
	testIssuer     = "https://issuer.test"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// claims builds a token's claims: valid at t0 for the test audience and issuer, with grants.
func claims(sub string, grants map[string][]string) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": sub, "aud": testAudience, "iss": testIssuer,
		"iat": t0.Add(-time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
	if grants != nil {
		c["grants"] = grants
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs(t testing.TB, c jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodHS256, "", []byte(testSecret), c)
}

// authServer runs a server with every kind of auth configured, on a fake clock at t0.
func authServer(t testing.TB, keysFile string, anon *auth.Grants, mod ...func(*web.Config)) (*testServer, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(t0)
	authn, err := auth.New(auth.Config{
		JWTSecret: testSecret, JWTKeys: keysFile, Audience: testAudience, Issuer: testIssuer,
		AdminToken: testAdminToken, Anonymous: anon, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{Auth: authn, Clock: clock}
	for _, m := range mod {
		m(&cfg)
	}
	return newServer(t, hub.Config{Clock: clock}, cfg), clock
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestJWTRejected: a refused token, in the Authorization header or in ?token=, is 401
// unauthorized with WWW-Authenticate, and the answer does not repeat it. The auth package's
// TestTokenRejected is the whole matrix of refused tokens; these few show the transport's part.
func TestJWTRejected(t *testing.T) {
	t.Parallel()
	ts, _ := authServer(t, "", nil)
	all := map[string][]string{"admin": {"/"}}
	parts := strings.Split(hs(t, claims("ann", all)), ".")
	cases := []struct {
		name  string
		token string
	}{
		{"HS256 with another secret", sign(t, jwt.SigningMethodHS256, "", []byte("another-secret-another-secret-xx"), claims("eve", all))},
		{"expired", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["exp"] = t0.Add(-time.Hour).Unix(); return c }())},
		{"wrong aud", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["aud"] = "other"; return c }())},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
		{"16 KB of periods", strings.Repeat(".", 16<<10)},
		{"garbage", "not-a-token"},
		{"wrong admin token", testAdminToken + "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, via := range []string{"header", "query"} {
				var r response
				if via == "header" {
					r = ts.do(t, "GET", "/x", "", bearer(tc.token)...)
				} else {
					r = ts.do(t, "GET", "/x?token="+url.QueryEscape(tc.token), "")
				}
				if r.status != http.StatusUnauthorized {
					t.Fatalf("%s: status %d (%s), want 401", via, r.status, r.body)
				}
				if eb := errorBody(t, r); eb.Code != "unauthorized" {
					t.Fatalf("%s: code %q", via, eb.Code)
				}
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s: WWW-Authenticate %q", via, r.header.Get("WWW-Authenticate"))
				}
				if strings.Contains(r.body, tc.token[:min(len(tc.token), 40)]) {
					t.Fatalf("%s: the answer repeats the token", via)
				}
			}
		})
	}
	t.Run("not a bearer scheme", func(t *testing.T) {
		t.Parallel()
		if r := ts.do(t, "GET", "/x", "", "Authorization", "Basic YTpi"); r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", r.status)
		}
	})
}

// TestGrantsOverHTTP checks grants request by request: 401 without a token, 403 with a token that
// lacks the grant, and the operations each grant implies.
func TestGrantsOverHTTP(t *testing.T) {
	t.Parallel()
	ts, _ := authServer(t, "", &auth.Grants{Read: []string{"/public/"}, Incr: []string{"/views/"}})
	admin := bearer(testAdminToken)
	for _, k := range []string{"/a/b/c", "/a/bc", "/public/p", "/views/v", "/w/x", "/users/ann/x"} {
		ts.must(t, "POST", k, `1`, admin...)
	}
	tok := hs(t, claims("ann", map[string][]string{
		"read": {"/a/b/"}, "write": {"/w/", "/users/{sub}/"}, "incr": {"/n/"}, "lock": {"/l"}, "broadcast": {"/rooms/"},
	}))
	reader := hs(t, claims("rob", map[string][]string{"read": {"/"}}))
	cases := []struct {
		name   string
		method string
		path   string
		hdr    []string
		want   int
	}{
		{"prefix grant reads below", "GET", "/a/b/c", bearer(tok), 200},
		{"prefix grant does not reach /a/bc", "GET", "/a/bc", bearer(tok), 403},
		{"read grant does not write", "POST", "/a/b/c", bearer(tok), 403},
		{"read grant lists its subtree", "GET", "/a/b/", bearer(tok), 200},
		{"read grant does not list the parent", "GET", "/a/", bearer(tok), 403},
		{"write implies read", "GET", "/w/x", bearer(tok), 200},
		{"write implies incr", "POST", "/w/n?incr=2", bearer(tok), 200},
		{"write allows delete", "DELETE", "/w/x", bearer(tok), 200},
		{"write allows a subtree delete", "DELETE", "/w/", bearer(tok), 200},
		{"{sub} becomes the subject", "GET", "/users/ann/x", bearer(tok), 200},
		{"incr grant increments", "POST", "/n/c?incr", bearer(tok), 200},
		{"incr grant does not set", "POST", "/n/c", bearer(tok), 403},
		{"incr grant does not read", "GET", "/n/c", bearer(tok), 403},
		{"write implies broadcast", "POST", "/w/x?broadcast", bearer(tok), 202},
		{"broadcast grant broadcasts", "POST", "/rooms/1/cursor?broadcast", bearer(tok), 202},
		{"broadcast grant broadcasts to a prefix", "POST", "/rooms/1/?broadcast", bearer(tok), 202},
		{"broadcast grant does not write", "POST", "/rooms/1/cursor", bearer(tok), 403},
		{"broadcast grant does not stream", "GET", "/rooms/1/", append(bearer(tok), "Accept", "text/event-stream"), 403},
		{"read grant does not broadcast", "POST", "/a/b/c?broadcast", bearer(tok), 403},
		{"incr grant does not broadcast", "POST", "/n/c?broadcast", bearer(tok), 403},
		{"anonymous does not broadcast", "POST", "/public/p?broadcast", nil, 401},
		{"the root needs admin", "GET", "/", append(bearer(reader), "Accept", "text/event-stream"), 403},
		{"deleting the root needs admin", "DELETE", "/", bearer(tok), 403},
		{"read on / reads keys", "GET", "/a/bc", bearer(reader), 200},
		{"the snapshot needs admin", "GET", "/.snapshot", bearer(reader), 403},
		{"the metrics need admin", "GET", "/.metrics", bearer(reader), 403},
		{"admin token reads metrics", "GET", "/.metrics", admin, 200},
		{"admin token takes a snapshot", "GET", "/.snapshot", admin, 200},
		{"anonymous reads the public prefix", "GET", "/public/p", nil, 200},
		{"anonymous counts views", "POST", "/views/v?incr", nil, 200},
		{"anonymous does not read the count", "GET", "/views/v", nil, 401},
		{"anonymous does not write public", "POST", "/public/p", nil, 401},
		{"anonymous is not admin", "GET", "/.snapshot", nil, 401},
		{"health needs nothing", "GET", "/.health", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.method, tc.path, "", tc.hdr...)
			if tc.method == "POST" && !strings.Contains(tc.path, "incr") {
				r = ts.do(t, tc.method, tc.path, `2`, tc.hdr...)
			}
			if r.status != tc.want {
				t.Fatalf("%s %s: status %d (%s), want %d", tc.method, tc.path, r.status, r.body, tc.want)
			}
			if tc.want >= 400 {
				errorBody(t, r)
			}
		})
	}
	// The admin token deletes the root last.
	ts.must(t, "DELETE", "/", "", admin...)
}

// TestStreamNeedsRead opens SSE streams with and without the read grant.
func TestStreamNeedsRead(t *testing.T) {
	t.Parallel()
	ts, _ := authServer(t, "", nil)
	tok := hs(t, claims("ann", map[string][]string{"read": {"/room/"}}))
	open := func(path string) int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.srv.URL+path, nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := open("/room/?token=" + tok); got != 200 {
		t.Fatalf("stream with read: %d", got)
	}
	if got := open("/other/?token=" + tok); got != 403 {
		t.Fatalf("stream without read: %d", got)
	}
	if got := open("/room/"); got != 401 {
		t.Fatalf("stream without token: %d", got)
	}
	if got := open("/?token=" + tok); got != 403 {
		t.Fatalf("root stream: %d", got)
	}
}

func TestOpenServer(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{Auth: openAuth(t)})
	// -open, as AtomKV: no token needed, and a token (good or bad) is ignored.
	ts.must(t, "POST", "/a", `1`)
	ts.must(t, "GET", "/a", "", bearer("whatever")...)
	ts.must(t, "GET", "/.metrics", "")
	ts.must(t, "DELETE", "/", "")
}

// TestNoSecretsInLogs sends recognizable secrets everywhere a token is accepted or could be put
// (the Authorization header; ?token= in any case, escaping and position, after ";" too; the
// WebSocket's upgrade request and auth message; lock tokens in X-Lock-Token, a query parameter
// and WebSocket messages), good and refused ones, with every request logged at debug level, and
// then looks for each secret in every log line. Idempotency keys are not secrets.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts, _ := authServer(t, "", nil, func(c *web.Config) { c.Logger = log })
	logged := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	tok := hs(t, claims("ann", map[string][]string{"write": {"/s/"}}))
	const canary = "Canary0Secret0Token0c4n4ry" // a token the server refuses
	secrets := []string{tok, tok[strings.LastIndex(tok, ".")+1:], canary, testAdminToken, testSecret}

	// HTTP: the request's token wherever a client may put it.
	for _, q := range []string{"token=" + tok, "token=" + testAdminToken, "token=not-" + testAdminToken,
		"TOKEN=" + canary, "x=1&Token=" + canary + "&y=2", "x=1;token=" + canary, "%74oken=" + canary,
		"token%3D" + canary, "access_token=" + canary, "lock&token=" + canary} {
		ts.do(t, "GET", "/s/a?"+q, "")
	}
	for _, h := range []string{tok, testAdminToken, canary} {
		ts.do(t, "GET", "/s/a", "", bearer(h)...)
	}
	ts.do(t, "GET", "/s/a", "", "Authorization", "Basic "+canary)
	ts.must(t, "POST", "/s/a", `1`, append(bearer(tok), "Idempotency-Key", "idem-not-a-secret")...)

	// Lock tokens: in X-Lock-Token, as the API takes them, and in a query parameter, as it does not.
	lk := lockAnswer(t, ts.must(t, "POST", "/s/lock?lock&owner=ci", "", bearer(tok)...))
	secrets = append(secrets, lk.Token)
	ts.must(t, "POST", "/s/lock?lock&renew", "", append(bearer(tok), "X-Lock-Token", lk.Token)...)
	ts.do(t, "POST", "/s/lock?lock&renew&lock_token="+lk.Token, "", bearer(tok)...)
	ts.do(t, "DELETE", "/s/lock?lock&X-Lock-Token="+lk.Token, "", bearer(tok)...)
	ts.do(t, "DELETE", "/s/lock?lock", "", append(bearer(tok), "X-Lock-Token", canary)...)
	ts.must(t, "DELETE", "/s/lock?lock", "", append(bearer(tok), "X-Lock-Token", lk.Token)...)

	// WebSocket: a token on the upgrade request and in the auth message, lock tokens in messages.
	wsURL := "ws" + strings.TrimPrefix(ts.srv.URL, "http") + "/.ws"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(c *websocket.Conn, req string) map[string]any {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		var a map[string]any
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	c, _, err := websocket.Dial(ctx, wsURL+"?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	call(c, `{"op":"auth","id":1,"token":"`+tok+`"}`)
	a := call(c, `{"op":"lock","id":2,"key":"/s/ws"}`)
	wsLock, _ := a["token"].(string)
	if wsLock == "" {
		t.Fatalf("websocket lock: %v", a)
	}
	secrets = append(secrets, wsLock)
	call(c, `{"op":"renew","id":3,"key":"/s/ws","token":"`+canary+`"}`)
	call(c, `{"op":"renew","id":4,"key":"/s/ws","token":"`+wsLock+`"}`)
	call(c, `{"op":"unlock","id":5,"key":"/s/ws","token":"`+wsLock+`"}`)
	if a := call(c, `{"op":"auth","id":6,"token":"`+canary+`"}`); a["code"] != "unauthorized" { // a refused re-authentication
		t.Fatalf("re-auth with a bad token: %v", a)
	}
	call(c, `{"op":"auth","id":7,"token":"`+tok+`"}`)
	c.Close(websocket.StatusNormalClosure, "")
	c, _, err = websocket.Dial(ctx, wsURL+"?TOKEN="+canary, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + canary}}})
	if err != nil {
		t.Fatal(err)
	}
	call(c, `{"op":"auth","id":1,"token":"`+canary+`"}`) // refused: the server closes the socket
	c.CloseNow()
	// A socket's request is logged when the socket ends.
	waitFor(t, "both sockets logged", func() bool { return strings.Count(logged(), "/.ws") == 2 })

	out := logged()
	for _, want := range []string{"token=REDACTED", "TOKEN=REDACTED", "lock_token=REDACTED", "X-Lock-Token=REDACTED"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no request log with %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		for _, secret := range secrets {
			if strings.Contains(line, secret) {
				t.Fatalf("a secret (%.12s...) is in the log line\n%s", secret, line)
			}
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// FuzzAuthHandler sends arbitrary requests with arbitrary tokens to a server with auth configured:
// none may get a 5xx.
func FuzzAuthHandler(f *testing.F) {
	ts, _ := authServer(f, "", &auth.Grants{Read: []string{"/public/"}})
	tok := hs(f, claims("ann", map[string][]string{"write": {"/users/{sub}/"}}))
	f.Add("GET", "/public/x", "", "")
	f.Add("POST", "/users/ann/x", "Bearer "+tok, `{"a":1}`)
	f.Add("GET", "/users/ann/?token="+tok, "", "")
	f.Add("DELETE", "/", "Bearer "+testAdminToken, "")
	f.Add("GET", "/.metrics", "Bearer "+tok, "")
	f.Add("GET", "/x", "Bearer "+strings.Repeat(".", 16<<10), "")
	f.Add("PUT", "/users/ann/x?incr&ttl=1s", "bearer  "+tok+" ", "1")
	f.Add("GET", "/x", "Bearer eyJhbGciOiJub25lIn0.e30.", "")
	f.Fuzz(func(t *testing.T, method, path, authz, body string) {
		switch method {
		case "GET", "HEAD", "POST", "PUT", "DELETE":
		default:
			return
		}
		u, err := url.Parse(ts.srv.URL + "/" + strings.TrimPrefix(path, "/"))
		if err != nil || strings.ContainsAny(authz, "\r\n\x00") {
			return
		}
		req, err := http.NewRequest(method, u.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		res, err := ts.client.Do(req)
		if err != nil {
			return // the client refused to send it
		}
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s (Authorization %q): status %d", method, u, authz, res.StatusCode)
		}
	})
}
