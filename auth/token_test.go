package auth_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
)

// TestTokenRejected is the negative JWT matrix: every one of these tokens is refused with an error
// wrapping ErrUnauthorized that does not repeat the token.
func TestTokenRejected(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	a, _ := newAuth(t, k.pemFile, nil)
	all := map[string][]string{"admin": {"/"}}
	good := sign(t, jwt.SigningMethodRS256, "rsa1", k.rsa, claims("ann", all))
	parts := strings.Split(good, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"eve","aud":"statehub-test","iss":"https://issuer.test","exp":9999999999,"grants":{"admin":["/"]}}`))

	none := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("eve", all)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	cases := []struct {
		name  string
		token string
	}{
		{"alg none", none},
		{"alg confusion: HS256 keyed with the RSA public key", sign(t, jwt.SigningMethodHS256, "rsa1", []byte(k.rsaPEM), claims("eve", all))},
		{"HS256 with another secret", sign(t, jwt.SigningMethodHS256, "", []byte("another-secret-another-secret-xx"), claims("eve", all))},
		{"HS512 is not configured", sign(t, jwt.SigningMethodHS512, "", []byte(testSecret), claims("eve", all))},
		{"RS384 is not configured", sign(t, jwt.SigningMethodRS384, "rsa1", k.rsa, claims("eve", all))},
		{"expired", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["exp"] = t0.Add(-time.Hour).Unix(); return c }())},
		{"future nbf", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["nbf"] = t0.Add(time.Hour).Unix(); return c }())},
		{"future iat", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["iat"] = t0.Add(time.Hour).Unix(); return c }())},
		{"wrong aud", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["aud"] = "other"; return c }())},
		{"no aud", hs(t, func() jwt.MapClaims { c := claims("ann", all); delete(c, "aud"); return c }())},
		{"wrong iss", hs(t, func() jwt.MapClaims { c := claims("ann", all); c["iss"] = "https://evil.test"; return c }())},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "rsa2", k.rsa, claims("ann", all))},
		{"kid of a key of another type", sign(t, jwt.SigningMethodRS256, "ed1", k.rsa, claims("ann", all))},
		{"kid that is not a string", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("ann", all))
			tok.Header["kid"] = 7
			s, err := tok.SignedString(k.rsa)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}()},
		{"no kid with several keys", sign(t, jwt.SigningMethodRS256, "", k.rsa, claims("ann", all))},
		{"tampered payload", parts[0] + "." + forged + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
		{"grants of the wrong shape", hs(t, func() jwt.MapClaims { c := claims("ann", nil); c["grants"] = map[string]any{"read": "/"}; return c }())},
		{"16 KB of periods", strings.Repeat(".", 16<<10)},
		{"garbage", "not-a-token"},
		{"wrong admin token", testAdminToken + "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := a.Principal(tc.token)
			if !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("Principal = %v, %v; want ErrUnauthorized", p, err)
			}
			if strings.Contains(err.Error(), tc.token[:min(len(tc.token), 40)]) {
				t.Fatalf("the error repeats the token: %v", err)
			}
		})
	}
}

// TestTokenAccepted: each kind of key verifies its tokens, and a token's grants are its subject's.
func TestTokenAccepted(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	grants := map[string][]string{"write": {"/users/{sub}/"}}
	cases := []struct {
		name  string
		keys  string
		token func(sub string) string
	}{
		{"HS256", "", func(sub string) string { return hs(t, claims(sub, grants)) }},
		{"RS256 PEM", k.pemFile, func(sub string) string { return sign(t, jwt.SigningMethodRS256, "rsa1", k.rsa, claims(sub, grants)) }},
		{"EdDSA PEM", k.pemFile, func(sub string) string { return sign(t, jwt.SigningMethodEdDSA, "ed1", k.ed, claims(sub, grants)) }},
		{"ES256 JWKS", k.jwks, func(sub string) string { return sign(t, jwt.SigningMethodES256, "ec1", k.ec, claims(sub, grants)) }},
		{"EdDSA JWKS", k.jwks, func(sub string) string { return sign(t, jwt.SigningMethodEdDSA, "ed2", k.ed, claims(sub, grants)) }},
		{"HS256 alongside keys", k.jwks, func(sub string) string { return hs(t, claims(sub, grants)) }},
		{"expired within the leeway", "", func(sub string) string {
			c := claims(sub, grants)
			c["exp"] = t0.Add(-10 * time.Second).Unix()
			return hs(t, c)
		}},
		{"audience in a list", "", func(sub string) string {
			c := claims(sub, grants)
			c["aud"] = []string{"other", testAudience}
			return hs(t, c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, _ := newAuth(t, tc.keys, nil)
			p, err := a.Principal(tc.token("ann"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject() != "ann" || p.String() != "token:ann" {
				t.Fatalf("principal %s, subject %q", p, p.Subject())
			}
			for _, op := range []auth.Op{auth.Write, auth.Read, auth.Incr, auth.Lock} {
				if err := p.Allow(op, "/users/ann/doc"); err != nil {
					t.Fatalf("%s on its own key: %v", op, err)
				}
			}
			if err := p.Allow(auth.Write, "/users/bob/doc"); !errors.Is(err, auth.ErrForbidden) {
				t.Fatalf("another subject's key: %v, want ErrForbidden", err)
			}
		})
	}
}

// TestTokenPrincipal: a token's principal expires at its exp plus the leeway, and rate-limits by
// issuer and subject (or by a hash of a token without subject); the admin token, anonymous and open
// principals never expire and have no rate key.
func TestTokenPrincipal(t *testing.T) {
	t.Parallel()
	a, clock := newAuth(t, "", &auth.Grants{Read: []string{"/public/"}})
	tok := hs(t, claims("ann", nil))
	p, err := a.Principal(tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Hour + auth.DefaultLeeway); !p.Expires().Equal(want) {
		t.Fatalf("Expires %v, want %v", p.Expires(), want)
	}
	if p.RateKey() != "sub:"+testIssuer+"\x00ann" {
		t.Fatalf("RateKey %q", p.RateKey())
	}
	anonTok := hs(t, claims("", nil))
	q, err := a.Principal(anonTok)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q.RateKey(), "tok:") || strings.Contains(q.RateKey(), anonTok) {
		t.Fatalf("RateKey of a token without subject: %q", q.RateKey())
	}
	for name, raw := range map[string]string{"admin": testAdminToken, "anonymous": ""} {
		p, err := a.Principal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Expires().IsZero() || p.RateKey() != "" || p.String() != name && !strings.HasPrefix(p.String(), name) {
			t.Fatalf("%s: expires %v, rate key %q, %s", name, p.Expires(), p.RateKey(), p)
		}
	}
	clock.Advance(time.Hour + auth.DefaultLeeway + time.Second)
	if _, err := a.Principal(tok); !errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), "token expired") {
		t.Fatalf("after Expires: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("no keys here"), 0o600)
	for name, cfg := range map[string]auth.Config{
		"short secret":                     {JWTSecret: "short"},
		"short admin token":                {AdminToken: "abc"},
		"missing key file":                 {JWTKeys: filepath.Join(dir, "nope")},
		"key file w/o keys":                {JWTKeys: empty},
		"audience w/o a key":               {AdminToken: strings.Repeat("a", 20), Audience: "x"},
		"JWKS URL not http":                {JWKSURL: "file:///etc/passwd"},
		"JWKS URL w/o host":                {JWKSURL: "https:///jwks.json"},
		"short metrics token":              {MetricsToken: "abc"},
		"metrics token is the admin token": {AdminToken: testAdminToken, MetricsToken: testAdminToken},
		"-open with an admin token":        {Open: true, AdminToken: testAdminToken},
		"-open with a metrics token":       {Open: true, MetricsToken: testAdminToken},
		"-open with a secret":              {Open: true, JWTSecret: testSecret},
		"-open with anonymous grants":      {Open: true, Anonymous: &auth.Grants{}},
	} {
		if a, err := auth.New(cfg); err == nil {
			a.Close()
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
