package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// selfSigned writes a self-signed certificate for 127.0.0.1, ::1 and localhost and its key as PEM
// files, and returns them with a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "statehub test"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startTLS serves a fresh memory-only hub over TLS with the certificate files, as run does, and
// returns its https:// base URL. The hub is closed (ending every stream) before the server.
func startTLS(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	tc := tlsConfig{certFile: certFile, keyFile: keyFile}
	cfg, err := tc.config()
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Logger: quiet})
	hs := web.New(h, web.Config{Logger: quiet}).HTTPServer()
	hs.TLSConfig = cfg
	hs.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve(hs, ln) }()
	t.Cleanup(func() {
		h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

// readSSE reads one event block of a stream into its fields.
func readSSE(r *bufio.Reader) (map[string]string, error) {
	ev := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if len(ev) == 0 {
				continue
			}
			return ev, nil
		}
		name, value, _ := strings.Cut(line, ":")
		ev[name] = strings.TrimPrefix(value, " ")
	}
}

// nextEvent skips retry hints and comments to the next event.
func nextEvent(r *bufio.Reader) (map[string]string, error) {
	for {
		ev, err := readSSE(r)
		if err != nil || ev["event"] != "" || ev["data"] != "" {
			return ev, err
		}
	}
}

// TestTLSHTTP2Streams serves over TLS with a self-signed certificate: one HTTP/2 client opens 20
// SSE streams on one connection, and every stream receives the event of one write. A WebSocket
// (HTTP/1.1 over TLS) and -healthcheck work on the same server.
func TestTLSHTTP2Streams(t *testing.T) {
	const streams = 20
	certFile, keyFile, pool := selfSigned(t)
	base := startTLS(t, certFile, keyFile)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	var conns []string // local address of each connection a request went out on
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		mu.Lock()
		defer mu.Unlock()
		if a := ci.Conn.LocalAddr().String(); !slices.Contains(conns, a) {
			conns = append(conns, a)
		}
	}}
	open := func() (*bufio.Reader, error) {
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, base+"/room/", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/event-stream")
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { res.Body.Close() })
		if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
			return nil, fmt.Errorf("stream answered %d over %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
		}
		r := bufio.NewReader(res.Body)
		if ev, err := nextEvent(r); err != nil || ev["event"] != "ready" {
			return nil, fmt.Errorf("stream starts with %v (%v), want ready", ev, err)
		}
		return r, nil
	}

	// The first stream sets up the connection; the others open concurrently on it.
	first, err := open()
	if err != nil {
		t.Fatal(err)
	}
	readers := []*bufio.Reader{first}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams - 1 {
		wg.Go(func() {
			r, err := open()
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			readers = append(readers, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(conns) != 1 {
		t.Fatalf("the streams went out on %d connections, want one HTTP/2 connection", len(conns))
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/room/k", strings.NewReader(`{"n": 1}`))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
		t.Fatalf("PUT answered %d over %s", res.StatusCode, res.Proto)
	}
	errs = make(chan error, streams)
	for i, r := range readers {
		wg.Go(func() {
			ev, err := nextEvent(r)
			if err != nil || ev["data"] != `{"n":1}` || ev["id"] != "/room/k:0:1" {
				errs <- fmt.Errorf("stream %d got %v (%v), want the write of /room/k", i, ev, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A WebSocket upgrades over HTTP/1.1 on TLS.
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(base, "https")+"/.ws", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"op":"get","key":"/room/k"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !bytes.Contains(b, []byte(`"value":{"n":1}`)) {
		t.Fatalf("wss get: %s, %v", b, err)
	}

	// -healthcheck over TLS: a loopback address, not the certificate's name, so not verified.
	if err := healthcheck(base+"/.health", healthcheckTimeout); err != nil {
		t.Fatalf("healthcheck over TLS: %v", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	for _, tc := range []tlsConfig{
		{certFile: filepath.Join(t.TempDir(), "none.pem"), keyFile: keyFile},
		{certFile: certFile, keyFile: certFile},
	} {
		if _, err := tc.config(); err == nil || !strings.Contains(err.Error(), "-tls-cert") {
			t.Errorf("config(%+v) = %v, want an error about -tls-cert", tc, err)
		}
	}
}

// TestTLSFlags: -tls-cert and -tls-key go together, -tls-domain excludes them and needs a data
// directory for its cache; no ACME server is contacted.
func TestTLSFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "off", check: func(t *testing.T, c config) {
			if c.tls.mode() != "off" {
				t.Errorf("mode %q", c.tls.mode())
			}
			if cfg, err := c.tls.config(); cfg != nil || err != nil {
				t.Errorf("config() = %v, %v, want nil, nil", cfg, err)
			}
		}},
		{name: "files", args: []string{"-tls-cert", "c.pem", "-tls-key", "k.pem"}, check: func(t *testing.T, c config) {
			if c.tls.certFile != "c.pem" || c.tls.keyFile != "k.pem" || c.tls.mode() != "files" {
				t.Errorf("tls %+v", c.tls)
			}
		}},
		{name: "cert without key", args: []string{"-tls-cert", "c.pem"}, wantErr: "-tls-key"},
		{name: "key without cert", args: []string{"-tls-key", "k.pem"}, wantErr: "-tls-cert"},
		{name: "domain and files", args: []string{"-tls-domain", "a.example", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, wantErr: "-tls-domain"},
		{name: "domain without data", args: []string{"-tls-domain", "a.example", "-data", ""}, wantErr: "-data"},
		{name: "domains", args: []string{"-tls-domain", " a.example, b.example ,", "-data", "/srv/statehub"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.tls.domains, []string{"a.example", "b.example"}) || c.tls.cacheDir != filepath.Join("/srv/statehub", "autocert") || c.tls.mode() != "acme" {
				t.Errorf("tls %+v", c.tls)
			}
			cfg, err := c.tls.config()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GetCertificate == nil || !slices.Contains(cfg.NextProtos, "h2") || !slices.Contains(cfg.NextProtos, "acme-tls/1") {
				t.Errorf("autocert TLS config: GetCertificate set %v, NextProtos %q", cfg.GetCertificate != nil, cfg.NextProtos)
			}
			// A name it was not given is refused before any CA is asked.
			if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example"}); err == nil {
				t.Error("a certificate for other.example, want a refusal")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("parseFlags(%q) = %v, want an error about %s", tc.args, err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}
