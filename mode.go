package main

import (
	"log/slog"
	"net"

	"github.com/statehub/statehub/auth"
)

// The modes the start-up log names.
const (
	modeOpenOnLoopback = "open-on-loopback" // protected, listening on loopback only: every client gets the open API
	modeProtected      = "protected"        // protected: loopback clients get the open API, any other address 403
	modeAuth           = "auth"             // auth configured: tokens and the anonymous grants decide
	modeOpen           = "open"             // -open: everyone holds every grant
)

// serverMode names how the server at addr treats requests.
func serverMode(a *auth.Authenticator, addr net.Addr) string {
	switch a.Mode() {
	case auth.ModeOpen:
		return modeOpen
	case auth.ModeAuth:
		return modeAuth
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return modeOpenOnLoopback
	}
	return modeProtected
}

// openURL is the URL to open for a server listening on addr: a wildcard address is opened as
// localhost.
func openURL(addr net.Addr, tls bool) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// logMode says at start where to open the server and the mode it runs in, with what that means.
func logMode(log *slog.Logger, a *auth.Authenticator, addr net.Addr, tls bool) {
	mode := serverMode(a, addr)
	attrs := []any{"url", openURL(addr, tls), "mode", mode}
	switch mode {
	case modeOpenOnLoopback:
		log.Info("ready: no auth configured and listening on loopback only, where every client gets the open API; admin operations need the admin token", attrs...)
	case modeProtected:
		log.Info("ready: protected mode: no auth configured, so clients on loopback get the open API and any other address gets 403 until -jwt-secret, -jwt-keys, -jwt-jwks-url, -admin-token, -anon or -open is set; admin operations need the admin token", attrs...)
	case modeAuth:
		log.Info("ready: auth configured", append(attrs, a.Describe()[2:]...)...)
	case modeOpen:
		log.Warn("ready: -open: anyone who can reach the server may read, write and delete every key, download backups and read the metrics", attrs...)
	}
}
