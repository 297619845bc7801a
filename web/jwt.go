package web

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statehub/statehub/hub"
)

// Token verification limits.
const (
	// DefaultLeeway is the clock skew allowed when checking exp and nbf.
	DefaultLeeway = 30 * time.Second
	// MaxTokenBytes bounds a token before it is parsed at all.
	MaxTokenBytes = 8 << 10
)

// verifier checks JWTs: the signature with a configured key, then exp, nbf, aud and iss. It is
// immutable after newVerifier and safe for concurrent use.
type verifier struct {
	secret   []byte                      // HS256; nil when not configured
	keys     map[string]crypto.PublicKey // public keys by kid
	only     crypto.PublicKey            // the single public key, for tokens without a kid; nil unless exactly one
	methods  []string                    // the algorithms accepted: only those a configured key can verify
	audience string
	issuer   string
	leeway   time.Duration
	parser   *jwt.Parser
}

// tokenClaims is the claim set Statehub reads. Grants is decoded with encoding/json into typed
// fields: a claim of the wrong shape fails the token instead of being type-asserted later.
type tokenClaims struct {
	jwt.RegisteredClaims
	Grants Grants `json:"grants"`
}

// Grants lists, per operation, the paths a principal may use it on. A path is a key, or a prefix
// ending in "/" naming a subtree; "{sub}" in a path stands for the token's subject.
type Grants struct {
	Read  []string `json:"read,omitempty"`
	Write []string `json:"write,omitempty"`
	Incr  []string `json:"incr,omitempty"`
	Lock  []string `json:"lock,omitempty"`
	Admin []string `json:"admin,omitempty"`
}

// newVerifier builds the verifier for a secret and/or a key file; it returns nil when neither is
// configured. now is the clock exp and nbf are checked against.
func newVerifier(secret string, keysFile string, audience, issuer string, leeway time.Duration, clock hub.Clock) (*verifier, error) {
	if secret == "" && keysFile == "" {
		return nil, nil
	}
	v := &verifier{audience: audience, issuer: issuer, leeway: leeway, keys: map[string]crypto.PublicKey{}}
	if secret != "" {
		if len(secret) < 32 {
			return nil, errors.New("the JWT secret must be at least 32 bytes (HS256 needs a 256-bit key)")
		}
		v.secret = []byte(secret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if keysFile != "" {
		data, err := os.ReadFile(keysFile)
		if err != nil {
			return nil, fmt.Errorf("reading JWT keys: %w", err)
		}
		keys, err := parseKeys(data)
		if err != nil {
			return nil, fmt.Errorf("JWT keys in %s: %w", keysFile, err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("JWT keys in %s: no public key found", keysFile)
		}
		v.keys = keys
		algs := map[string]bool{}
		for _, k := range keys {
			v.only = k
			algs[algFor(k)] = true
		}
		if len(keys) != 1 {
			v.only = nil
		}
		for alg := range algs {
			v.methods = append(v.methods, alg)
		}
		sort.Strings(v.methods)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(clock.Now),
		jwt.WithIssuedAt(),
	}
	if audience != "" {
		opts = append(opts, jwt.WithAudience(audience))
	}
	if issuer != "" {
		opts = append(opts, jwt.WithIssuer(issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// verify parses and checks a token and returns its claims. Every failure wraps ErrUnauthorized;
// the message names the cause but never the token.
func (v *verifier) verify(raw string) (*tokenClaims, error) {
	if len(raw) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: the token is longer than %d bytes", ErrUnauthorized, MaxTokenBytes)
	}
	var claims tokenClaims
	_, err := v.parser.ParseWithClaims(raw, &claims, v.key)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthorized, tokenProblem(err))
	}
	return &claims, nil
}

// key chooses the verification key for a token whose algorithm the parser has already checked
// against the configured ones. HS256 uses only the secret: never a public key's bytes (the
// algorithm-confusion attack). Public-key algorithms use the key named by kid, which must exist
// and be of the algorithm's type.
func (v *verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if v.secret == nil {
			return nil, errors.New("HS256 is not configured")
		}
		return v.secret, nil
	}
	var k crypto.PublicKey
	switch kid, ok := t.Header["kid"]; {
	case !ok:
		if v.only == nil {
			return nil, errors.New("the token names no kid")
		}
		k = v.only
	default:
		s, ok := kid.(string)
		if !ok {
			return nil, errors.New("kid is not a string")
		}
		if k, ok = v.keys[s]; !ok {
			return nil, errors.New("unknown kid")
		}
	}
	if algFor(k) != alg {
		return nil, errors.New("the key named by kid is not for " + alg)
	}
	return k, nil
}

// tokenProblem is a short, token-free description of a verification failure.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no key to verify the token: " + unwrapLast(err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "invalid claims"
	}
	return "invalid token"
}

// unwrapLast returns the message of the innermost error of a jwt error chain (the keyfunc's own,
// which never holds the token).
func unwrapLast(err error) string {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[len(es)-1]
			}
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		}
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// algFor is the JWT algorithm a public key verifies: RS256, ES256 or EdDSA.
func algFor(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return jwt.SigningMethodRS256.Alg()
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jwt.SigningMethodES256.Alg()
		}
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg()
	}
	return ""
}

// parseKeys reads public keys from a JWKS document ({"keys": [...]}, or one JWK) or from PEM
// blocks. A PEM block's kid is its "kid" header when it has one, else its RFC 7638 thumbprint.
func parseKeys(data []byte) (map[string]crypto.PublicKey, error) {
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "{") {
		return parseJWKS([]byte(t))
	}
	keys := map[string]crypto.PublicKey{}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		k, err := parsePEMKey(b)
		if err != nil {
			return nil, err
		}
		if err := addKey(keys, b.Headers["kid"], k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// addKey files k under kid, or under its thumbprint when kid is empty. A kid may name one key.
func addKey(keys map[string]crypto.PublicKey, kid string, k crypto.PublicKey) error {
	if kid == "" {
		kid = thumbprint(k)
	}
	if _, dup := keys[kid]; dup {
		return fmt.Errorf("two keys with kid %q", kid)
	}
	keys[kid] = k
	return nil
}

func parsePEMKey(b *pem.Block) (crypto.PublicKey, error) {
	var k any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", b.Type, err)
	}
	if algFor(k) == "" {
		return nil, fmt.Errorf("PEM block %q: unsupported key type %T (want RSA, EC P-256 or Ed25519)", b.Type, k)
	}
	if rk, ok := k.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("PEM block %q: RSA key of %d bits; at least 2048 needed", b.Type, rk.N.BitLen())
	}
	return k, nil
}

// jwk is one JSON Web Key (RFC 7517) of the kinds Statehub verifies with.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// parseJWKS reads a JWK Set with the standard library: RSA, EC P-256 and OKP Ed25519 keys. Keys
// marked for another use than "sig" are skipped; a key with private parts is refused.
func parseJWKS(data []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if set.Keys == nil {
		var one jwk
		if err := json.Unmarshal(data, &one); err != nil || one.Kty == "" {
			return nil, errors.New(`JWKS: want {"keys": [...]} or one JWK`)
		}
		set.Keys = []jwk{one}
	}
	keys := map[string]crypto.PublicKey{}
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		if j.D != "" {
			return nil, fmt.Errorf("JWKS key %d: holds a private key; publish only public keys", i)
		}
		k, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, j.Kid, err)
		}
		if j.Alg != "" && j.Alg != algFor(k) {
			return nil, fmt.Errorf("JWKS key %d (kid %q): alg %q does not fit a %s key", i, j.Kid, j.Alg, algFor(k))
		}
		if err := addKey(keys, j.Kid, k); err != nil {
			return nil, fmt.Errorf("JWKS: %w", err)
		}
	}
	return keys, nil
}

func (j jwk) publicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "RSA":
		n, err1 := b64int(j.N)
		e, err2 := b64int(j.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if n.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 needed", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("EC curve %q: only P-256 (ES256) is supported", j.Crv)
		}
		x, err1 := b64bytes(j.X, 32)
		y, err2 := b64bytes(j.Y, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		// Parsing the uncompressed point checks that it lies on the curve.
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return k, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q: only Ed25519 (EdDSA) is supported", j.Crv)
		}
		x, err := b64bytes(j.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("key type %q: want RSA, EC or OKP", j.Kty)
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64bytes(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("want %d base64url bytes", size)
	}
	return b, nil
}

// thumbprint is a key's RFC 7638 JWK thumbprint, the kid of a key that names none.
func thumbprint(k crypto.PublicKey) string {
	enc := base64.RawURLEncoding.EncodeToString
	var doc string
	switch k := k.(type) {
	case *rsa.PublicKey:
		doc = `{"e":"` + enc(big.NewInt(int64(k.E)).Bytes()) + `","kty":"RSA","n":"` + enc(k.N.Bytes()) + `"}`
	case *ecdsa.PublicKey:
		b, _ := k.Bytes() // uncompressed: 0x04 || x || y
		doc = `{"crv":"P-256","kty":"EC","x":"` + enc(b[1:33]) + `","y":"` + enc(b[33:]) + `"}`
	case ed25519.PublicKey:
		doc = `{"crv":"Ed25519","kty":"OKP","x":"` + enc(k) + `"}`
	}
	sum := sha256.Sum256([]byte(doc))
	return enc(sum[:])
}
