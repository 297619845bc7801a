package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme/autocert"
)

// tlsConfig is how the server speaks TLS: with a certificate from files (-tls-cert, -tls-key),
// with certificates obtained and renewed over ACME (-tls-domain), or not at all (plain HTTP, as
// behind a reverse proxy that terminates TLS). Over TLS, net/http serves HTTP/2 to clients that
// offer it (ALPN "h2") and HTTP/1.1 to the rest, WebSocket upgrades included.
type tlsConfig struct {
	certFile, keyFile string   // PEM files, read once at start
	domains           []string // names to obtain certificates for
	cacheDir          string   // where the ACME account and certificates are kept: <data>/autocert
}

// setup reads -tls-domain (comma-separated names) and checks the flags against each other and the
// data directory, which holds the ACME cache.
func (t *tlsConfig) setup(domains, dataDir string) error {
	for _, d := range strings.Split(domains, ",") {
		if d = strings.TrimSpace(d); d != "" {
			t.domains = append(t.domains, d)
		}
	}
	switch {
	case (t.certFile == "") != (t.keyFile == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case len(t.domains) > 0 && t.certFile != "":
		return errors.New("-tls-domain obtains its own certificates: give either it or -tls-cert and -tls-key")
	case len(t.domains) > 0 && dataDir == "":
		return errors.New("-tls-domain keeps its certificates under the -data directory: give one (without it every start would ask the CA again, which rate-limits)")
	}
	if len(t.domains) > 0 {
		t.cacheDir = filepath.Join(dataDir, "autocert")
	}
	return nil
}

// mode names the kind of TLS for the start-up log.
func (t tlsConfig) mode() string {
	switch {
	case t.certFile != "":
		return "files"
	case len(t.domains) > 0:
		return "acme"
	}
	return "off"
}

// config returns the TLS configuration to serve with, nil for plain HTTP. Certificate files are
// read here, so a bad one stops the start; a renewed file is read at the next start. With
// -tls-domain, certificates are obtained on the first TLS handshake for each name (TLS-ALPN-01:
// the CA connects to port 443 of the name, so the server must be reachable there), cached and
// renewed before they expire; a handshake for any other name is refused.
func (t tlsConfig) config() (*tls.Config, error) {
	switch {
	case t.certFile != "":
		cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
	case len(t.domains) > 0:
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(t.domains...),
			Cache:      autocert.DirCache(t.cacheDir),
		}
		return m.TLSConfig(), nil // offers h2, http/1.1 and the ACME challenge protocol
	}
	return nil, nil
}

// serve serves hs on ln until it is shut down: over TLS (and HTTP/2) when hs.TLSConfig is set,
// else plain HTTP/1.1.
func serve(hs *http.Server, ln net.Listener) error {
	if hs.TLSConfig != nil {
		return hs.ServeTLS(ln, "", "")
	}
	return hs.Serve(ln)
}
