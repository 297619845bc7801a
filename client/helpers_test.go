package client_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/cutproxy"
	"github.com/statehub/statehub/web"
)

// The tests run the client against the real server, in process: a hub behind web's handler on
// an httptest server, with an admin token and a JWT secret configured.

const (
	adminToken = "client-test-admin-token-0123456789"
	jwtSecret  = "client-test-jwt-secret-0123456789-abcdef"
)

var quiet = slog.New(slog.DiscardHandler)

// testServer is a running server and its hub.
type testServer struct {
	hub  *hub.Hub
	srv  *httptest.Server
	URL  string
	once sync.Once
}

// newServer starts a server over a memory-only hub made with hcfg; wcfg may change the web
// configuration (its Auth and Logger are set unless given).
func newServer(t testing.TB, hcfg hub.Config, wcfg web.Config) *testServer {
	t.Helper()
	if hcfg.Logger == nil {
		hcfg.Logger = quiet
	}
	return serve(t, hub.New(hcfg), wcfg, nil)
}

// serve starts a server over h, on ln when it is not nil.
func serve(t testing.TB, h *hub.Hub, wcfg web.Config, ln net.Listener) *testServer {
	t.Helper()
	if wcfg.Logger == nil {
		wcfg.Logger = quiet
	}
	if wcfg.Auth == nil {
		a, err := auth.New(auth.Config{AdminToken: adminToken, JWTSecret: jwtSecret})
		if err != nil {
			t.Fatal(err)
		}
		wcfg.Auth = a
	}
	srv := httptest.NewUnstartedServer(web.New(h, wcfg).Handler())
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	ts := &testServer{hub: h, srv: srv, URL: srv.URL}
	t.Cleanup(ts.Close)
	return ts
}

// Close closes the hub (ending every stream) and then the HTTP server; again, nothing.
func (ts *testServer) Close() {
	ts.once.Do(func() {
		ts.hub.Close()
		ts.srv.Close()
	})
}

// newClient is a client of url with the admin token.
func newClient(t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(client.StaticToken(adminToken))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// jwtToken is an HS256 token for sub with these grants, valid for an hour.
func jwtToken(t testing.TB, sub string, grants map[string][]string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "grants": grants, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testContext is a context that ends with the test, bounded so that a hung test fails.
func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newProxy starts a proxy to backend, stopped at the end of the test.
func newProxy(t testing.TB, backend string) *cutproxy.Proxy {
	t.Helper()
	p, err := cutproxy.New(backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// newPlainServer answers every request with status and body, as a proxy in front of a missing
// server would.
func newPlainServer(t testing.TB, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serveWrapped starts a server over h whose handler calls see with each request first.
func serveWrapped(t testing.TB, h *hub.Hub, wcfg web.Config, see func(*http.Request)) string {
	t.Helper()
	a, err := auth.New(auth.Config{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	wcfg.Auth, wcfg.Logger = a, quiet
	inner := web.New(h, wcfg).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		see(r)
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return srv.URL
}
