package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/internal/fakeclock"
)

// Test identities: every key is generated once per test binary.
const (
	testSecret     = "0123456789abcdef0123456789abcdef-test-secret"
	testAdminToken = "admin-token-for-tests-0123456789"
	testAudience   = "statehub-test"
	testIssuer     = "https://issuer.test"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type testKeys struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsaPEM  string // public key PEM, kid "rsa1"
	pemFile string // rsa1 and ed1 as PEM
	jwks    string // ec1 and ed2 as a JWKS file
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func genKeys(t testing.TB) testKeys {
	keysOnce.Do(func() {
		var err error
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, keys.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	k := keys
	pemOf := func(pub any, kid string) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"kid": kid}, Bytes: der}))
	}
	dir := t.TempDir()
	k.rsaPEM = pemOf(&k.rsa.PublicKey, "rsa1")
	k.pemFile = filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(k.pemFile, []byte(k.rsaPEM+pemOf(k.ed.Public(), "ed1")), 0o600); err != nil {
		t.Fatal(err)
	}
	k.jwks = filepath.Join(dir, "jwks.json")
	set := auth.JWKSOf(t, map[string]any{"ec1": &k.ec.PublicKey, "ed2": k.ed.Public()})
	if err := os.WriteFile(k.jwks, []byte(set), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// claims builds a token's claims: valid at t0 for the test audience and issuer, with grants.
func claims(sub string, grants map[string][]string) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": sub, "aud": testAudience, "iss": testIssuer,
		"iat": t0.Add(-time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
	if grants != nil {
		c["grants"] = grants
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs(t testing.TB, c jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodHS256, "", []byte(testSecret), c)
}

// newAuth makes an Authenticator with every kind of auth configured, on a fake clock at t0.
func newAuth(t testing.TB, keysFile string, anon *auth.Grants) (*auth.Authenticator, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(t0)
	a, err := auth.New(auth.Config{
		JWTSecret: testSecret, JWTKeys: keysFile, Audience: testAudience, Issuer: testIssuer,
		AdminToken: testAdminToken, Anonymous: anon, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, clock
}
