package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.health" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	tlsOK := httptest.NewTLSServer(ok.Config.Handler) // a self-signed certificate on 127.0.0.1
	defer tlsOK.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/.health" // nothing listens there once closed
	ln.Close()

	tests := []struct {
		name    string
		url     string
		wantErr string // "" for healthy
	}{
		{"healthy", ok.URL + "/.health", ""},
		{"healthy over TLS on loopback", tlsOK.URL + "/.health", ""},
		{"not found", ok.URL + "/nope", "404"},
		{"unavailable", down.URL + "/.health", "503"},
		{"nothing listening", closed, "health check"},
		{"not a URL", "127.0.0.1:8000", "http://"},
		{"another scheme", "ftp://127.0.0.1/.health", "http://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := healthcheck(tc.url, healthcheckTimeout)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("healthcheck(%s): %v", tc.url, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("healthcheck(%s) = %v, want an error about %s", tc.url, err, tc.wantErr)
			}
			// run exits 0 for nil and 1 for an error, as main does.
			if rerr := run([]string{"-healthcheck", tc.url}, io.Discard); (rerr == nil) != (err == nil) {
				t.Fatalf("run -healthcheck %s = %v, healthcheck = %v", tc.url, rerr, err)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true,
		"statehub.example": false, "10.0.0.1": false, "0.0.0.0": false, "": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestCommandLineOnlyFlags: -version and -healthcheck are never read from the environment, where a
// STATEHUB_VERSION of a deployment's own would otherwise make a server print and exit.
func TestCommandLineOnlyFlags(t *testing.T) {
	t.Setenv("STATEHUB_VERSION", "v1.2.3")
	t.Setenv("STATEHUB_HEALTHCHECK", "http://127.0.0.1:8000/.health")
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.version || c.healthcheck != "" {
		t.Fatalf("version %v healthcheck %q from the environment, want neither", c.version, c.healthcheck)
	}
	c, err = parseFlags([]string{"-version", "-healthcheck", "http://127.0.0.1:9/.health"}, io.Discard)
	if err != nil || !c.version || c.healthcheck != "http://127.0.0.1:9/.health" {
		t.Fatalf("flags: version %v healthcheck %q, %v", c.version, c.healthcheck, err)
	}
	if err := run([]string{"-version"}, io.Discard); err != nil {
		t.Fatalf("run -version = %v, want nil (exit 0)", err)
	}
}
