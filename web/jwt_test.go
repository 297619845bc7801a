package web

import (
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
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrincipalMay is the grant boundary table: prefix edges, {sub}, implied operations, root.
func TestPrincipalMay(t *testing.T) {
	t.Parallel()
	g := Grants{
		Read:  []string{"/a/b/", "/k"},
		Write: []string{"/users/{sub}/", "/w/"},
		Incr:  []string{"/views/"},
		Lock:  []string{"/ci/deploy"},
		Admin: []string{"/adm/"},
	}
	p := compileGrants(g, "ann")
	cases := []struct {
		name string
		op   Op
		path string
		want bool
	}{
		{"prefix covers a key below", OpRead, "/a/b/c", true},
		{"prefix covers itself", OpRead, "/a/b/", true},
		{"prefix covers deeper subtree", OpRead, "/a/b/c/", true},
		{"prefix is not a string prefix", OpRead, "/a/bc", false},
		{"prefix does not cover its key", OpRead, "/a/b", false},
		{"prefix does not cover its parent", OpRead, "/a/", false},
		{"key grant is exact", OpRead, "/k", true},
		{"key grant is not a prefix", OpRead, "/k/x", false},
		{"key grant does not cover longer key", OpRead, "/kk", false},
		{"sub substituted", OpWrite, "/users/ann/x", true},
		{"other subject", OpWrite, "/users/bob/x", false},
		{"literal {sub} not granted", OpWrite, "/users/{sub}/x", false},
		{"write implies read", OpRead, "/w/x", true},
		{"write implies incr", OpIncr, "/w/x", true},
		{"write implies lock", OpLock, "/w/x", true},
		{"write does not imply admin", OpAdmin, "/w/x", false},
		{"read does not imply write", OpWrite, "/a/b/c", false},
		{"incr only incr", OpIncr, "/views/home", true},
		{"incr does not imply read", OpRead, "/views/home", false},
		{"incr does not imply write", OpWrite, "/views/home", false},
		{"lock only lock", OpLock, "/ci/deploy", true},
		{"lock does not imply write", OpWrite, "/ci/deploy", false},
		{"admin implies read", OpRead, "/adm/x", true},
		{"admin implies write", OpWrite, "/adm/x", true},
		{"admin implies incr", OpIncr, "/adm/x", true},
		{"admin implies lock", OpLock, "/adm/x", true},
		{"root needs admin on root", OpRead, "/", false},
		{"no grant at all", OpRead, "/zzz", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := p.may(tc.op, tc.path); got != tc.want {
				t.Fatalf("may(%s, %s) = %v, want %v", tc.op, tc.path, got, tc.want)
			}
		})
	}
}

func TestGrantSubjectCannotWiden(t *testing.T) {
	t.Parallel()
	g := Grants{Write: []string{"/users/{sub}/", "/u/{sub}"}, Read: []string{"/public/"}}
	for _, sub := range []string{"", "a/b", "..", "x/", "a b", "a.b", "*"} {
		p := compileGrants(g, sub)
		if len(p.grants[OpWrite]) != 0 {
			t.Errorf("subject %q: write grants %v, want none", sub, p.grants[OpWrite])
		}
		if !p.may(OpRead, "/public/x") {
			t.Errorf("subject %q: lost the grants without {sub}", sub)
		}
	}
	// invalid grant paths are dropped, valid ones kept
	p := compileGrants(Grants{Read: []string{"", "a", "/a//b", "/ok/", "/x.y"}}, "s")
	if got := p.grants[OpRead]; len(got) != 1 || got[0] != "/ok/" {
		t.Fatalf("read grants %v, want [/ok/]", got)
	}
	root := compileGrants(Grants{Admin: []string{"/"}}, "")
	if !root.may(OpAdmin, "/") || !root.may(OpWrite, "/any/key") {
		t.Fatal("admin on / must cover the root and everything")
	}
	readRoot := compileGrants(Grants{Read: []string{"/"}}, "")
	if readRoot.may(OpRead, "/") || !readRoot.may(OpRead, "/x") {
		t.Fatal("read on / covers every key but never the root itself")
	}
}

func TestParseGrants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"read": ["/public/"], "incr": ["/views/"]}`, true},
		{`{}`, true},
		{`{"read": ["/"]}`, true},
		{`{"reed": ["/public/"]}`, false},
		{`{"read": "/public/"}`, false},
		{`{"read": ["public"]}`, false},
		{`{"write": ["/users/{sub}/"]}`, false},
		{`not json`, false},
	} {
		_, err := ParseGrants(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseGrants(%s): err %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestParseKeys(t *testing.T) {
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
		{"jwks private part refused", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`, nil},
		{"jwks EC point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}]}`, nil},
		{"jwks unknown kty", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, nil},
		{"jwks encryption key skipped", `{"keys":[{"kty":"oct","use":"enc"}]}`, []string{}},
		{"jwks alg mismatch", `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, nil},
		{"not a key file", "hello", []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := parseKeys([]byte(tc.data))
			if tc.kids == nil {
				if err == nil {
					t.Fatalf("parseKeys accepted it: %v", keys)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tc.kids) {
				t.Fatalf("got %d keys, want %v", len(keys), tc.kids)
			}
			for _, kid := range tc.kids {
				if keys[kid] == nil {
					t.Fatalf("no key %q in %v", kid, keys)
				}
			}
		})
	}
}

func TestNewAuthRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("no keys here"), 0o600)
	for name, cfg := range map[string]AuthConfig{
		"short secret":       {JWTSecret: "short"},
		"short admin token":  {AdminToken: "abc"},
		"missing key file":   {JWTKeys: filepath.Join(dir, "nope")},
		"key file w/o keys":  {JWTKeys: empty},
		"audience w/o a key": {AdminToken: strings.Repeat("a", 20), Audience: "x"},
	} {
		if _, err := NewAuth(cfg); err == nil {
			t.Errorf("%s: NewAuth accepted %+v", name, cfg)
		}
	}
}

// JWKSOf encodes public keys by kid as a JWK Set (RSA, EC P-256, Ed25519), for the tests of both
// packages.
func JWKSOf(t testing.TB, keys map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	var out []map[string]string
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			out = append(out, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			b, err := k.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(b[1:33]), "y": enc(b[33:])})
		case ed25519.PublicKey:
			out = append(out, map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)})
		default:
			t.Fatalf("JWKSOf: %T", k)
		}
	}
	b, err := json.Marshal(map[string]any{"keys": out})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
