package web_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// quiet discards the server's logs in tests.
var quiet = slog.New(slog.DiscardHandler)

// testServer is a hub behind a real HTTP server.
type testServer struct {
	hub    *hub.Hub
	srv    *httptest.Server
	client *http.Client
}

// newServer starts a server over a fresh hub. The hub is closed (ending every stream) before the
// HTTP server, so Close does not wait on open streams. Without wcfg.Auth it is configured as the
// binary is by default (protectedAuth): the open API for its loopback clients, admin operations
// with testAdminToken.
func newServer(t testing.TB, hcfg hub.Config, wcfg web.Config) *testServer {
	t.Helper()
	if hcfg.Logger == nil {
		hcfg.Logger = quiet
	}
	if wcfg.Logger == nil {
		wcfg.Logger = quiet
	}
	if wcfg.Auth == nil {
		wcfg.Auth = protectedAuth(t)
	}
	h := hub.New(hcfg)
	srv := httptest.NewServer(web.New(h, wcfg).Handler())
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)
	t.Cleanup(func() { h.Close() })
	return &testServer{hub: h, srv: srv, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// protectedAuth is the binary's default: no auth configured (protected mode), and the admin
// token it generates, here testAdminToken.
func protectedAuth(t testing.TB) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{AdminToken: testAdminToken, AdminTokenGenerated: true})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// openAuth is -open: every request holds every grant, no token is looked at. Benchmarks use it
// to measure the API without authorization, as before protected mode.
func openAuth(t testing.TB) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{Open: true})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// response is a fully read HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request; hdr is pairs of header name and value.
func (ts *testServer) do(t testing.TB, method, path, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// must sends a request that must succeed with 200.
func (ts *testServer) must(t testing.TB, method, path, body string, hdr ...string) response {
	t.Helper()
	r := ts.do(t, method, path, body, hdr...)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: status %d, body %s", method, path, r.status, r.body)
	}
	return r
}

// errorBody decodes an error answer and checks it has both fields.
func errorBody(t testing.TB, r response) web.ErrorBody {
	t.Helper()
	var eb web.ErrorBody
	if err := json.Unmarshal([]byte(r.body), &eb); err != nil {
		t.Fatalf("status %d: error body %q is not JSON: %v", r.status, r.body, err)
	}
	if eb.Error == "" || eb.Code == "" {
		t.Fatalf("status %d: error body %q lacks error or code", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d: error Content-Type %q", r.status, ct)
	}
	return eb
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
