package auth_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/internal/fakeclock"
)

// jwksServer serves a JWK Set that a test rotates, on 127.0.0.1, and counts its fetches.
type jwksServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	set     string
	status  int
	fetches int
}

func newJWKSServer(t *testing.T, set string) *jwksServer {
	t.Helper()
	s := &jwksServer{set: set, status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		w.Write([]byte(s.set))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// rotate makes the server publish set from now on.
func (s *jwksServer) rotate(set string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = set
}

func (s *jwksServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// urlAuth makes an Authenticator that fetches its keys from s, on a fake clock at t0.
func urlAuth(t *testing.T, s *jwksServer, mod func(*auth.Config)) *auth.Authenticator {
	t.Helper()
	cfg := auth.Config{
		JWKSURL: s.srv.URL + "/.well-known/jwks.json", Audience: testAudience, Issuer: testIssuer,
		Clock: fakeclock.New(t0), HTTPClient: s.srv.Client(), Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// TestJWKSURLRotation: a token whose kid appeared in the provider's set after the last fetch
// makes the set be fetched again and is accepted; until then it is refused as an unknown kid.
func TestJWKSURLRotation(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	grants := map[string][]string{"read": {"/users/{sub}/"}}
	old := auth.JWKSOf(t, map[string]any{"old": &k.ec.PublicKey})
	s := newJWKSServer(t, old)
	a := urlAuth(t, s, func(c *auth.Config) { c.JWKSRefreshLimit = time.Nanosecond })
	if n := s.count(); n != 1 {
		t.Fatalf("New fetched the set %d times, want 1", n)
	}
	oldTok := sign(t, jwt.SigningMethodES256, "old", k.ec, claims("ann", grants))
	newTok := sign(t, jwt.SigningMethodEdDSA, "new", k.ed, claims("ann", grants))
	if p, err := a.Principal(oldTok); err != nil || p.Allow(auth.Read, "/users/ann/x") != nil {
		t.Fatalf("a token of the published key: %v, %v", p, err)
	}
	if n := s.count(); n != 1 {
		t.Fatalf("a known kid fetched the set again (%d fetches)", n)
	}
	if _, err := a.Principal(newTok); !errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), "unknown kid") {
		t.Fatalf("a kid not yet published: %v, want unknown kid", err)
	}
	if n := s.count(); n != 2 {
		t.Fatalf("an unknown kid fetched the set %d times in all, want 2", n)
	}

	// The provider rotates: the new key appears next to the old one, then the old one goes.
	s.rotate(auth.JWKSOf(t, map[string]any{"old": &k.ec.PublicKey, "new": k.ed.Public()}))
	if p, err := a.Principal(newTok); err != nil || p.Subject() != "ann" {
		t.Fatalf("a token of the rotated-in key: %v, %v", p, err)
	}
	if n := s.count(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	if _, err := a.Principal(oldTok); err != nil {
		t.Fatalf("the old key, still published: %v", err)
	}
	s.rotate(auth.JWKSOf(t, map[string]any{"new": k.ed.Public()}))
	other := sign(t, jwt.SigningMethodEdDSA, "other", k.ed, claims("ann", grants))
	if _, err := a.Principal(other); err == nil { // an unknown kid: the set is fetched again
		t.Fatal("a kid never published was accepted")
	}
	if _, err := a.Principal(oldTok); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("a key the provider withdrew: %v, want ErrUnauthorized", err)
	}
	if _, err := a.Principal(newTok); err != nil {
		t.Fatalf("the new key: %v", err)
	}
}

// TestJWKSURLRefresh: the set is fetched again every JWKSRefresh without any token asking, so a
// withdrawn key stops verifying.
func TestJWKSURLRefresh(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	s := newJWKSServer(t, auth.JWKSOf(t, map[string]any{"old": &k.ec.PublicKey, "new": k.ed.Public()}))
	a := urlAuth(t, s, func(c *auth.Config) { c.JWKSRefresh = 10 * time.Millisecond })
	oldTok := sign(t, jwt.SigningMethodES256, "old", k.ec, claims("ann", nil))
	if _, err := a.Principal(oldTok); err != nil {
		t.Fatal(err)
	}
	s.rotate(auth.JWKSOf(t, map[string]any{"new": k.ed.Public()}))
	// keyfunc's refresh runs on its own ticker: wait (bounded) for a fetch after the rotation.
	for after := s.count(); s.count() < after+2; {
		if testing.Short() {
			t.Skip("waits for a refresh")
		}
		select {
		case <-t.Context().Done():
			t.Fatal("no refresh")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := a.Principal(oldTok); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("a withdrawn key after a refresh: %v, want ErrUnauthorized", err)
	}
}

// TestJWKSURLRefreshLimit: tokens with unknown kids fetch the set at most once per
// JWKSRefreshLimit, and the ones the limit holds back are refused at once.
func TestJWKSURLRefreshLimit(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	s := newJWKSServer(t, auth.JWKSOf(t, map[string]any{"k": &k.ec.PublicKey}))
	a := urlAuth(t, s, nil) // the default limit: one fetch in 5 minutes
	for i := range 20 {
		tok := sign(t, jwt.SigningMethodES256, "unknown-"+string(rune('a'+i)), k.ec, claims("eve", nil))
		start := time.Now()
		if _, err := a.Principal(tok); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("unknown kid %d: %v", i, err)
		}
		if d := time.Since(start); d > auth.DefaultJWKSTimeout {
			t.Fatalf("unknown kid %d waited %v", i, d)
		}
	}
	if n := s.count(); n != 2 {
		t.Fatalf("20 unknown kids fetched the set %d times in all, want 2 (New's and one)", n)
	}
}

// TestJWKSURLWithKeyFile: a key file and a JWKS URL together; HS256 too.
func TestJWKSURLWithKeyFile(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	s := newJWKSServer(t, auth.JWKSOf(t, map[string]any{"remote": &k.ec.PublicKey}))
	a := urlAuth(t, s, func(c *auth.Config) { c.JWTKeys = k.pemFile; c.JWTSecret = testSecret })
	for name, tok := range map[string]string{
		"remote":     sign(t, jwt.SigningMethodES256, "remote", k.ec, claims("ann", nil)),
		"file RSA":   sign(t, jwt.SigningMethodRS256, "rsa1", k.rsa, claims("ann", nil)),
		"file EdDSA": sign(t, jwt.SigningMethodEdDSA, "ed1", k.ed, claims("ann", nil)),
		"HS256":      hs(t, claims("ann", nil)),
	} {
		if _, err := a.Principal(tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A token without kid names no key when there are several.
	if _, err := a.Principal(sign(t, jwt.SigningMethodES256, "", k.ec, claims("ann", nil))); err == nil {
		t.Fatal("a token without kid was accepted among several keys")
	}
	d := a.Describe()
	attrs := map[any]any{}
	for i := 0; i+1 < len(d); i += 2 {
		attrs[d[i]] = d[i+1]
	}
	algs, _ := attrs["jwt_algs"].([]string)
	if attrs["jwks_url"] != s.srv.URL+"/.well-known/jwks.json" || strings.Join(algs, ",") != "ES256,EdDSA,HS256,RS256" {
		t.Fatalf("Describe: %v", d)
	}
}

// TestJWKSURLSingleKey: with one key in the set, a token without kid uses it.
func TestJWKSURLSingleKey(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	s := newJWKSServer(t, auth.JWKSOf(t, map[string]any{"only": k.ed.Public()}))
	a := urlAuth(t, s, nil)
	if _, err := a.Principal(sign(t, jwt.SigningMethodEdDSA, "", k.ed, claims("ann", nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Principal(sign(t, jwt.SigningMethodES256, "", k.ec, claims("ann", nil))); err == nil {
		t.Fatal("an ES256 token verified with the only key, an Ed25519 one")
	}
}

// TestJWKSURLRefused: New fails when the first fetch does, or yields no usable key, so that a
// wrong URL shows at start.
func TestJWKSURLRefused(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	cases := []struct {
		name   string
		status int
		set    string
	}{
		{"not found", http.StatusNotFound, `{"keys":[]}`},
		{"not JSON", http.StatusOK, `<html>`},
		{"no keys", http.StatusOK, `{"keys":[]}`},
		{"only a symmetric key", http.StatusOK, `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}`},
		{"only an encryption key", http.StatusOK, strings.Replace(auth.JWKSOf(t, map[string]any{"r": &k.rsa.PublicKey}), `"sig"`, `"enc"`, 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newJWKSServer(t, tc.set)
			s.status = tc.status
			a, err := auth.New(auth.Config{JWKSURL: s.srv.URL, HTTPClient: s.srv.Client(), Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				a.Close()
				t.Fatal("New accepted it")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a start-up error of more than one line: %q", err)
			}
		})
	}
	// Nothing listens there any more.
	s := newJWKSServer(t, "")
	s.srv.Close()
	if a, err := auth.New(auth.Config{JWKSURL: s.srv.URL}); err == nil {
		a.Close()
		t.Fatal("New accepted an unreachable URL")
	}
}
