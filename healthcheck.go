package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// healthcheckTimeout bounds a -healthcheck request, connection and answer together.
const healthcheckTimeout = 5 * time.Second

// healthcheck asks a running server whether it is healthy: one GET of rawURL (its /.health),
// which must answer 200 within timeout. It is what the container image's HEALTHCHECK runs, where
// there is no curl. No proxy is used. The certificate of an https URL is verified, but for a
// loopback address (127.0.0.1, ::1, localhost), where the check only asks this machine's own
// server whether it is up and sends no credentials: a certificate is issued for the server's
// public name, not for the address the check dials.
func healthcheck(rawURL string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-healthcheck needs an http:// or https:// URL, such as http://127.0.0.1:8000/.health, not %q", rawURL)
	}
	tr := &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: isLoopback(u.Hostname())},
	}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: timeout}).Get(u.String())
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s answered %s", rawURL, res.Status)
	}
	return nil
}

// isLoopback reports whether host names this machine: localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
