package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/statehub/statehub/auth"
)

// TestLogMode: the start-up log names the URL to open and the mode: open-on-loopback or
// protected by the listening address when no auth is configured, auth, or -open (a warning).
func TestLogMode(t *testing.T) {
	t.Parallel()
	const admin = "admin-token-for-tests-0123456789"
	protected := auth.Config{AdminToken: admin, AdminTokenGenerated: true}
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 8000} }
	for _, tc := range []struct {
		name string
		cfg  auth.Config
		addr net.Addr
		tls  bool
		mode string
		url  string
		warn bool
	}{
		{"loopback", protected, tcp("127.0.0.1"), false, "open-on-loopback", "http://127.0.0.1:8000/", false},
		{"IPv6 loopback", protected, tcp("::1"), false, "open-on-loopback", "http://[::1]:8000/", false},
		{"every address", protected, tcp("0.0.0.0"), false, "protected", "http://localhost:8000/", false},
		{"every IPv6 address", protected, tcp("::"), false, "protected", "http://localhost:8000/", false},
		{"a public address", protected, tcp("192.0.2.1"), true, "protected", "https://192.0.2.1:8000/", false},
		{"auth", auth.Config{AdminToken: admin}, tcp("0.0.0.0"), false, "auth", "http://localhost:8000/", false},
		{"-open", auth.Config{Open: true}, tcp("0.0.0.0"), false, "open", "http://localhost:8000/", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := auth.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			logMode(slog.New(slog.NewTextHandler(&buf, nil)), a, tc.addr, tc.tls)
			out := buf.String()
			if !strings.Contains(out, "url="+tc.url) || !strings.Contains(out, "mode="+tc.mode+" ") && !strings.HasSuffix(strings.TrimSpace(out), "mode="+tc.mode) {
				t.Fatalf("log %q, want url=%s mode=%s", out, tc.url, tc.mode)
			}
			if strings.Contains(out, "level=WARN") != tc.warn {
				t.Fatalf("log %q: warning %v, want %v", out, !tc.warn, tc.warn)
			}
			if strings.Contains(out, admin) {
				t.Fatalf("the log shows the admin token: %q", out)
			}
		})
	}
}
