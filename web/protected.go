package web

// Protected mode, as Redis's: with no auth configured (auth.ModeProtected) a request without a
// token holds AtomKV's open API (the local principal) only when it comes from loopback; from any
// other address it is refused with ErrProtected, which says how to open the server deliberately.
// Admin operations and the metrics are never part of it: they need the admin token (or the
// metrics token), which works from anywhere.
//
// The client's address is c.RealIP(): the TCP peer, or, with Limits.TrustedProxies, the address
// their X-Forwarded-For names (ipExtractor). A request from a loopback peer that carries a
// forwarding header while no proxy is trusted came through a proxy on this host, which relays
// clients from anywhere: it is not a loopback client.

import (
	"errors"
	"net/netip"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
)

// ErrProtected refuses a request without a token from a client not on loopback while no auth is
// configured; classify maps it to 403 protected_mode. Its text is the answer's error: it says how
// to open the server.
var ErrProtected = errors.New("web: protected mode: no auth is configured, so this server serves only clients on loopback (127.0.0.1, ::1). " +
	"To serve other addresses, start it with auth (-jwt-secret, -jwt-keys or -jwt-jwks-url, or -admin-token), " +
	`with anonymous grants (for example -anon '{"read": ["/public/"]}'), ` +
	"or with -open to give everyone every grant deliberately; or send the admin token (its file is named in the server's log)")

// forwardingHeaders are the headers a reverse proxy adds to name the client it relays.
var forwardingHeaders = []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded"}

// fromLoopback reports whether the request's client is on loopback (127.0.0.0/8, ::1).
func (s *Server) fromLoopback(c echo.Context) bool {
	ip, err := netip.ParseAddr(c.RealIP())
	if err != nil || !ip.Unmap().IsLoopback() {
		return false
	}
	if len(s.cfg.Limits.TrustedProxies) > 0 {
		return true // RealIP is the client the trusted proxies name
	}
	h := c.Request().Header
	for _, name := range forwardingHeaders {
		if h.Get(name) != "" {
			return false // relayed by a proxy on this host
		}
	}
	return true
}

// resolve turns a request's token (raw, or errRaw when the request's Authorization header is not
// a bearer token) into its principal, refusing the local principal to a client not on loopback.
// A protected server ignores what it cannot use, as an open server does: a malformed
// Authorization header counts as no token (and auth.Principal takes an unknown token for none).
func (s *Server) resolve(raw string, errRaw error, loopback bool) (*auth.Principal, error) {
	if errRaw != nil {
		if s.auth.Mode() != auth.ModeProtected {
			return nil, errRaw
		}
		raw = ""
	}
	p, err := s.auth.Principal(raw)
	if err == nil && p.Local() && !loopback {
		return nil, ErrProtected
	}
	return p, err
}

// protect refuses, on a protected server, every request of a client not on loopback that holds
// only the local principal, whatever its route (the console and the client script included), so
// that the refusal and its explanation come first. /.health (for probes), preflights (wrapRoute
// answers them before) and WebSocket upgrades pass: a socket's token may come in its first
// message, and ws.go refuses each request of a local principal from elsewhere instead.
func (s *Server) protect(c echo.Context) error {
	if s.auth.Mode() != auth.ModeProtected {
		return nil
	}
	switch c.Request().URL.Path {
	case "/.health", "/.ws":
		return nil
	}
	if _, err := s.principalOf(c); errors.Is(err, ErrProtected) {
		return err
	}
	return nil
}

// privateNetworkPreflight answers a Private Network Access preflight (a browser asking whether a
// public page may reach this server on a private or loopback address) with
// Access-Control-Allow-Private-Network only when Config.AllowPrivateNetwork says so; otherwise
// the answer lacks it and the browser refuses the page's request.
func (s *Server) privateNetworkPreflight(c echo.Context) {
	if s.cfg.AllowPrivateNetwork && c.Request().Header.Get("Access-Control-Request-Private-Network") == "true" {
		c.Response().Header().Set("Access-Control-Allow-Private-Network", "true")
	}
}
