package web

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

const (
	protAdmin   = "protected-admin-token-0123456789"
	protMetrics = "protected-metrics-token-01234567"
)

// protServer is a server with cfg (the binary's default when zero: protected, with a generated
// admin token and a metrics token) over a hub holding /k and /public/k, driven without a network
// so that each request may come from any address.
func protServer(t *testing.T, ac auth.Config, limits Limits) http.Handler {
	t.Helper()
	a, err := auth.New(ac)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	h := hub.New(hub.Config{Logger: quiet})
	t.Cleanup(func() { h.Close() })
	for _, k := range []string{"/k", "/public/k"} {
		if _, err := h.Set(k, []byte(`1`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return New(h, Config{Logger: quiet, Auth: a, Limits: limits}).Handler()
}

// TestProtectedMode: with no auth configured, clients on loopback (the peer, not a forwarding
// header unless its proxy is trusted) get AtomKV's open API and any other address 403
// protected_mode with the explanation; admin operations and the metrics need the admin token (or
// the metrics token for the metrics) from anywhere; -open serves everyone everything; configured
// auth ends the local privilege.
func TestProtectedMode(t *testing.T) {
	t.Parallel()
	protected := auth.Config{AdminToken: protAdmin, AdminTokenGenerated: true, MetricsToken: protMetrics}
	configured := auth.Config{AdminToken: protAdmin, Anonymous: &auth.Grants{Read: []string{"/public/"}}}
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	_, localProxy, _ := net.ParseCIDR("127.0.0.1/32")
	const local, remote = "127.0.0.1:4000", "192.0.2.1:4000"
	admin := []string{"Authorization", "Bearer " + protAdmin}
	metrics := []string{"Authorization", "Bearer " + protMetrics}
	stream := []string{"Accept", "text/event-stream"}
	cases := []struct {
		name    string
		cfg     auth.Config
		proxies []*net.IPNet
		from    string // the TCP peer
		method  string
		path    string
		hdr     []string
		want    int
		code    string // the error code, for an error
	}{
		{"loopback reads", protected, nil, local, "GET", "/k", nil, 200, ""},
		{"loopback writes", protected, nil, local, "POST", "/n?incr", nil, 200, ""},
		{"loopback deletes a subtree", protected, nil, local, "DELETE", "/public/", nil, 200, ""},
		{"all of 127/8 is loopback", protected, nil, "127.1.2.3:4000", "GET", "/k", nil, 200, ""},
		{"IPv6 loopback", protected, nil, "[::1]:4000", "GET", "/k", nil, 200, ""},
		{"loopback with an unknown token", protected, nil, local, "GET", "/k", []string{"Authorization", "Bearer whatever"}, 200, ""},
		{"loopback with a malformed Authorization", protected, nil, local, "GET", "/k", []string{"Authorization", "Basic eDp5"}, 200, ""},
		{"remote reads", protected, nil, remote, "GET", "/k", nil, 403, "protected_mode"},
		{"remote writes", protected, nil, remote, "POST", "/n?incr", nil, 403, "protected_mode"},
		{"remote streams", protected, nil, remote, "GET", "/k", stream, 403, "protected_mode"},
		{"remote gets no console or script", protected, nil, remote, "GET", "/", []string{"Accept", "text/html"}, 403, "protected_mode"},
		{"private addresses are remote", protected, nil, "10.1.2.3:4000", "GET", "/k", nil, 403, "protected_mode"},
		{"IPv6 is remote", protected, nil, "[2001:db8::1]:4000", "GET", "/k", nil, 403, "protected_mode"},
		{"remote with an unknown token", protected, nil, remote, "GET", "/k", []string{"Authorization", "Bearer whatever"}, 403, "protected_mode"},
		{"remote health", protected, nil, remote, "GET", "/.health", nil, 200, ""},
		{"remote preflight", protected, nil, remote, "OPTIONS", "/k", []string{"Origin", "https://a.example", "Access-Control-Request-Method", "PUT"}, 204, ""},
		{"X-Forwarded-For through a local proxy is not loopback", protected, nil, local, "GET", "/k", []string{"X-Forwarded-For", "127.0.0.1"}, 403, "protected_mode"},
		{"Forwarded through a local proxy is not loopback", protected, nil, local, "GET", "/k", []string{"Forwarded", "for=192.0.2.1"}, 403, "protected_mode"},
		{"a trusted proxy relays a loopback client", protected, []*net.IPNet{proxies}, "10.0.0.1:4000", "GET", "/k", []string{"X-Forwarded-For", "127.0.0.1"}, 200, ""},
		{"a trusted proxy relays a remote client", protected, []*net.IPNet{proxies}, "10.0.0.1:4000", "GET", "/k", []string{"X-Forwarded-For", "192.0.2.1"}, 403, "protected_mode"},
		{"a trusted local proxy relays a remote client", protected, []*net.IPNet{localProxy}, local, "GET", "/k", []string{"X-Forwarded-For", "192.0.2.1"}, 403, "protected_mode"},
		{"an untrusted peer's X-Forwarded-For is ignored", protected, []*net.IPNet{proxies}, remote, "GET", "/k", []string{"X-Forwarded-For", "127.0.0.1"}, 403, "protected_mode"},

		{"loopback takes no snapshot without the token", protected, nil, local, "GET", "/.snapshot", nil, 401, "unauthorized"},
		{"loopback deletes no root without the token", protected, nil, local, "DELETE", "/", nil, 401, "unauthorized"},
		{"loopback streams no root without the token", protected, nil, local, "GET", "/", stream, 401, "unauthorized"},
		{"loopback reads no metrics without a token", protected, nil, local, "GET", "/.metrics", nil, 401, "unauthorized"},
		{"loopback takes a snapshot with the admin token", protected, nil, local, "GET", "/.snapshot", admin, 200, ""},
		{"loopback deletes the root with the admin token", protected, nil, local, "DELETE", "/", admin, 200, ""},
		{"loopback reads the metrics with the admin token", protected, nil, local, "GET", "/.metrics", admin, 200, ""},
		{"remote uses the admin token", protected, nil, remote, "GET", "/k", admin, 200, ""},
		{"remote takes a snapshot with the admin token", protected, nil, remote, "GET", "/.snapshot", admin, 200, ""},
		{"the metrics token reads the metrics", protected, nil, local, "GET", "/.metrics", metrics, 200, ""},
		{"the metrics token reads the metrics from afar", protected, nil, remote, "GET", "/.metrics", metrics, 200, ""},
		{"the metrics token reads no key", protected, nil, local, "GET", "/k", metrics, 403, "forbidden"},
		{"the metrics token reads no key from afar", protected, nil, remote, "GET", "/k", metrics, 403, "forbidden"},
		{"the metrics token takes no snapshot", protected, nil, local, "GET", "/.snapshot", metrics, 403, "forbidden"},

		{"-open serves a remote read", auth.Config{Open: true}, nil, remote, "GET", "/k", nil, 200, ""},
		{"-open serves a remote snapshot", auth.Config{Open: true}, nil, remote, "GET", "/.snapshot", nil, 200, ""},
		{"-open serves remote metrics", auth.Config{Open: true}, nil, remote, "GET", "/.metrics", nil, 200, ""},
		{"-open deletes the root for anyone", auth.Config{Open: true}, nil, remote, "DELETE", "/", nil, 200, ""},

		{"configured auth: remote anonymous grant", configured, nil, remote, "GET", "/public/k", nil, 200, ""},
		{"configured auth: remote without a grant", configured, nil, remote, "GET", "/k", nil, 401, "unauthorized"},
		{"configured auth: loopback holds no more", configured, nil, local, "GET", "/k", nil, 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := protServer(t, tc.cfg, Limits{TrustedProxies: tc.proxies})
			req := httptest.NewRequest(tc.method, tc.path, nil) // no stream here succeeds, so each ends
			req.RemoteAddr = tc.from
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%s %s from %s: %d %s, want %d", tc.method, tc.path, tc.from, rec.Code, rec.Body, tc.want)
			}
			if tc.code == "" {
				return
			}
			var eb ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Code != tc.code {
				t.Fatalf("body %s (%v), want code %s", rec.Body, err, tc.code)
			}
			if tc.code == "protected_mode" {
				for _, hint := range []string{"loopback", "-anon", "-open", "-jwt-secret", "admin token"} {
					if !strings.Contains(eb.Error, hint) {
						t.Errorf("the protected_mode error does not mention %s: %q", hint, eb.Error)
					}
				}
				if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
					t.Error("the refusal lacks the CORS headers, so a page cannot read its explanation")
				}
			}
		})
	}
}

// TestProtectedModeWebSocket: a socket from a client not on loopback is upgraded (its token may
// come in its first message), but a request that holds only the local principal is refused with
// protected_mode; the admin token works; a loopback client gets the open API.
func TestProtectedModeWebSocket(t *testing.T) {
	t.Parallel()
	a, err := auth.New(auth.Config{AdminToken: protAdmin, AdminTokenGenerated: true})
	if err != nil {
		t.Fatal(err)
	}
	// The test's client is on loopback; a trusted proxy's X-Forwarded-For makes it a remote one.
	_, lo, _ := net.ParseCIDR("127.0.0.0/8")
	ts := newWSServer(t, hub.Config{}, Config{Auth: a, Limits: Limits{TrustedProxies: []*net.IPNet{lo}}}, false)
	remote := http.Header{"X-Forwarded-For": {"192.0.2.1"}}

	ts.dial(t).must(m{"op": "set", "key": "/k", "value": 1})

	c := ts.dialWith(t, "", remote)
	c.expectFail(m{"op": "get", "key": "/k"}, 403, "protected_mode")
	c.expectFail(m{"op": "sub", "path": "/k"}, 403, "protected_mode")

	c = ts.dialWith(t, "", remote)
	c.must(m{"op": "auth", "token": protAdmin})
	c.must(m{"op": "get", "key": "/k"})
	c.must(m{"op": "list", "path": "/", "keys": true}) // the root: admin

	c = ts.dialWith(t, "token="+protAdmin, remote)
	c.must(m{"op": "get", "key": "/k"})

	c = ts.dialWith(t, "", remote)
	c.expectFail(m{"op": "auth", "token": "a-token-nobody-knows"}, 403, "protected_mode")
}

// TestPrivateNetworkPreflight: a Private Network Access preflight is answered without
// Access-Control-Allow-Private-Network unless Config.AllowPrivateNetwork, and never outside a
// preflight.
func TestPrivateNetworkPreflight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		allow  bool
		method string
		ask    bool
		want   string
	}{
		{"refused by default", false, "OPTIONS", true, ""},
		{"allowed when configured", true, "OPTIONS", true, "true"},
		{"not asked", true, "OPTIONS", false, ""},
		{"not a preflight", true, "GET", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			quiet := slog.New(slog.DiscardHandler)
			h := hub.New(hub.Config{Logger: quiet})
			t.Cleanup(func() { h.Close() })
			srv := New(h, Config{Logger: quiet, AllowPrivateNetwork: tc.allow}).Handler()
			req := httptest.NewRequest(tc.method, "/k", nil)
			req.RemoteAddr = "127.0.0.1:4000"
			req.Header.Set("Origin", "https://public.example")
			req.Header.Set("Access-Control-Request-Method", "GET")
			if tc.ask {
				req.Header.Set("Access-Control-Request-Private-Network", "true")
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if got := rec.Header().Get("Access-Control-Allow-Private-Network"); got != tc.want {
				t.Fatalf("%s: Access-Control-Allow-Private-Network %q, want %q (status %d)", tc.method, got, tc.want, rec.Code)
			}
			if tc.method == "OPTIONS" && rec.Code != http.StatusNoContent {
				t.Fatalf("preflight status %d", rec.Code)
			}
		})
	}
}
