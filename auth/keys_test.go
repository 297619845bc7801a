package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

// TestParseKeyFile: what a -jwt-keys file may hold. Keys are filed by kid, a PEM block without one
// under its RFC 7638 thumbprint; a key that cannot verify fails the whole file.
func TestParseKeyFile(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pub := func(k any, hdr map[string]string) string {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: hdr, Bytes: der}))
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	encRSA := jwkOf(t, "r", &rsaKey.PublicKey)
	encRSA["use"] = "enc"
	cases := []struct {
		name string
		data string
		kids []string // expected kids; nil: an error
	}{
		{"pem with kid headers", pub(&rsaKey.PublicKey, map[string]string{"kid": "r"}) + pub(&ecKey.PublicKey, map[string]string{"kid": "e"}), []string{"r", "e"}},
		{"pem thumbprint kid", pub(edPub, nil), []string{thumbprint(edPub)}},
		{"pem private key refused", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})), nil},
		{"pem small rsa refused", pub(&small.PublicKey, nil), nil},
		{"pem P-384 refused", pub(&p384.PublicKey, nil), nil},
		{"pem duplicate kid", pub(edPub, map[string]string{"kid": "x"}) + pub(&ecKey.PublicKey, map[string]string{"kid": "x"}), nil},
		{"jwks all kinds", JWKSOf(t, map[string]any{"r": &rsaKey.PublicKey, "e": &ecKey.PublicKey, "d": edPub}), []string{"r", "e", "d"}},
		{"one jwk", `{"kty":"OKP","crv":"Ed25519","kid":"one","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, []string{"one"}},
		{"jwk without kid: thumbprint", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, []string{"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}},
		{"jwks private part refused", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`, nil},
		{"jwks EC point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}]}`, nil},
		{"jwks P-384 refused", JWKSOf(t, map[string]any{"p": &p384.PublicKey}), nil},
		{"jwks small rsa refused", JWKSOf(t, map[string]any{"s": &small.PublicKey}), nil},
		{"jwks symmetric key refused", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, nil},
		{"jwks unknown kty", `{"keys":[{"kty":"XYZ"}]}`, nil},
		{"jwks encryption key skipped", jwksJSON(t, encRSA), []string{}},
		{"jwks alg mismatch", `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, nil},
		{"jwks duplicate kid", jwksJSON(t, jwkOf(t, "x", edPub), jwkOf(t, "x", &ecKey.PublicKey)), nil},
		{"not json", "{not json", nil},
		{"not a key file", "hello", []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store, err := parseKeyFile([]byte(tc.data))
			if tc.kids == nil {
				if err == nil {
					all, _ := store.KeyReadAll(context.Background())
					t.Fatalf("parseKeyFile accepted it: %d keys", len(all))
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("an error of more than one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			all, _ := store.KeyReadAll(context.Background())
			if len(all) != len(tc.kids) {
				t.Fatalf("got %d keys, want %v", len(all), tc.kids)
			}
			for _, kid := range tc.kids {
				j, err := store.KeyRead(context.Background(), kid)
				if err != nil {
					t.Fatalf("no key %q: %v", kid, err)
				}
				if m := j.Marshal(); m.ALG.String() != algFor(j.Key()) || m.USE != "sig" {
					t.Fatalf("key %q filed with alg %q use %q", kid, m.ALG, m.USE)
				}
			}
		})
	}
}

// JWKSOf encodes public keys by kid as a JWK Set (RSA, EC, Ed25519), for the tests of this
// package. It writes the JSON itself, as a provider would, so that the tests do not check the key
// loading against its own encoder.
func JWKSOf(t testing.TB, keys map[string]any) string {
	t.Helper()
	var out []map[string]string
	for kid, k := range keys {
		out = append(out, jwkOf(t, kid, k))
	}
	return jwksJSON(t, out...)
}

// jwkOf is the JWK of a public key, with its kid.
func jwkOf(t testing.TB, kid string, k any) map[string]string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	switch k := k.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, err := k.Bytes() // uncompressed: 0x04 || x || y
		if err != nil {
			t.Fatal(err)
		}
		n := (len(b) - 1) / 2
		return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": enc(b[1 : 1+n]), "y": enc(b[1+n:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)}
	}
	t.Fatalf("jwkOf: %T", k)
	return nil
}

// jwksJSON is the JWK Set of keys.
func jwksJSON(t testing.TB, keys ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
