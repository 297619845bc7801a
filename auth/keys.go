package auth

import (
	"context"
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
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// keySet finds the public key that verifies a token. Its keys live in a jwkset storage: the key
// file's, fixed at load, and a JWKS URL's, which keyfunc refreshes until stop. Only the keys
// signingKey accepts are ever seen (signingKeys). Safe for concurrent use.
type keySet struct {
	kf    keyfunc.Keyfunc // kid lookups, with a refresh of the URL's set for an unknown kid
	store jwkset.Storage  // the same keys, for tokens without a kid
	algs  []string        // the public-key algorithms accepted
	url   string          // the JWKS URL, without user info; "" for none
	ctx   context.Context // ends the refresh goroutine and the fetches it makes
	stop  context.CancelFunc
}

// loadKeys loads cfg's key file and/or JWKS URL; it returns nil when neither is configured.
func loadKeys(cfg Config) (*keySet, error) {
	if cfg.JWTKeys == "" && cfg.JWKSURL == "" {
		return nil, nil
	}
	ks := &keySet{}
	ks.ctx, ks.stop = context.WithCancel(context.Background())
	var store jwkset.Storage
	algs := map[string]bool{}
	if cfg.JWTKeys != "" {
		data, err := os.ReadFile(cfg.JWTKeys)
		if err != nil {
			ks.stop()
			return nil, fmt.Errorf("reading JWT keys: %w", err)
		}
		file, err := parseKeyFile(data)
		if err != nil {
			ks.stop()
			return nil, fmt.Errorf("JWT keys in %s: %w", cfg.JWTKeys, err)
		}
		keys, _ := file.KeyReadAll(ks.ctx)
		if len(keys) == 0 {
			ks.stop()
			return nil, fmt.Errorf("JWT keys in %s: no public key found", cfg.JWTKeys)
		}
		for _, k := range keys {
			algs[algFor(k.Key())] = true
		}
		store = file
	}
	if cfg.JWKSURL != "" {
		remote, err := fetchJWKS(ks.ctx, cfg, store)
		if err != nil {
			ks.stop()
			return nil, err
		}
		store = remote
		ks.url = redactURL(cfg.JWKSURL)
		// The URL's keys change: every public-key algorithm is accepted, and each token's key
		// must still be of its algorithm's type.
		for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
			algs[alg] = true
		}
	}
	ks.store = signingKeys{store}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ks.ctx, Storage: ks.store})
	if err != nil {
		ks.stop()
		return nil, err
	}
	ks.kf = kf
	for alg := range algs {
		ks.algs = append(ks.algs, alg)
	}
	slices.Sort(ks.algs)
	return ks, nil
}

// fetchJWKS fetches cfg.JWKSURL (given holds the key file's keys, which win over the URL's on a
// kid both use) and starts its refresh, which ctx ends. The first fetch must succeed and yield at
// least one usable key, so that a wrong URL fails at start rather than every token later.
func fetchJWKS(ctx context.Context, cfg Config, given jwkset.Storage) (jwkset.Storage, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the JWKS URL %q is not an http(s) URL", redactURL(cfg.JWKSURL))
	}
	shown := u.Redacted()
	failFirst := false
	log := cfg.Logger
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:                    cfg.HTTPClient,
		Given:                     given,
		HTTPTimeout:               DefaultJWKSTimeout,
		NoErrorReturnFirstHTTPReq: &failFirst,
		RateLimitWaitMax:          DefaultJWKSTimeout, // bounds the wait for the limiter and the fetch
		RefreshInterval:           cfg.JWKSRefresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(cfg.JWKSRefreshLimit), 1),
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
					log.Warn("refreshing the JWKS failed; the keys fetched before stay in use", "url", shown, "err", err)
				}
			}
		},
	})
	if err != nil {
		// keyfunc joins its errors with newlines; a start-up error is one line.
		return nil, fmt.Errorf("fetching the JWKS at %s: %s", shown, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	store := kf.Storage()
	keys, err := signingKeys{store}.KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("the JWKS at %s: %w", shown, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the JWKS at %s holds no RS256, ES256 or EdDSA signing key", shown)
	}
	return store, nil
}

// redactURL is u without a password, for logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// find returns the key for a token signed with a public-key algorithm: the key its kid names,
// which must be of the algorithm's type, or, for a token without a kid, the only key there is.
func (ks *keySet) find(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var k any
	if kid, named := t.Header["kid"]; !named {
		keys, err := ks.store.KeyReadAll(ks.ctx)
		if err != nil || len(keys) != 1 {
			return nil, keyError("the token names no kid")
		}
		k = keys[0].Key()
	} else {
		if _, ok := kid.(string); !ok {
			return nil, keyError("kid is not a string")
		}
		var err error
		if k, err = ks.kf.KeyfuncCtx(ks.ctx)(t); err != nil {
			if errors.Is(err, jwkset.ErrKeyNotFound) {
				return nil, keyError("unknown kid")
			}
			return nil, keyError("the key named by kid cannot verify " + alg)
		}
	}
	if algFor(k) != alg {
		return nil, keyError("the token's key is not for " + alg)
	}
	return k, nil
}

// signingKeys shows only the keys of a storage that signingKey accepts: the others are not found.
type signingKeys struct{ jwkset.Storage }

// KeyRead returns the key kid names, if it is a usable signing key.
func (s signingKeys) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	j, err := s.Storage.KeyRead(ctx, kid)
	if err != nil {
		return j, err
	}
	if _, err := signingKey(j); err != nil {
		return jwkset.JWK{}, fmt.Errorf("kid %q: %w", kid, err)
	}
	return j, nil
}

// KeyReadAll returns every usable signing key.
func (s signingKeys) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	all, err := s.Storage.KeyReadAll(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(j jwkset.JWK) bool {
		_, err := signingKey(j)
		return err != nil
	}), nil
}

// errNotForSigning marks a key published for another use than signatures: skipped, not refused.
var errNotForSigning = errors.New(`its "use" is not "sig"`)

// signingKey returns the public key of j if Statehub verifies with it: RSA of 2048 bits or more,
// EC P-256 or Ed25519, for signatures, with an "alg" (when it has one) that fits the key, and no
// private or symmetric part.
func signingKey(j jwkset.JWK) (crypto.PublicKey, error) {
	m := j.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, errNotForSigning
	}
	k, err := publicKey(j.Key())
	if err != nil {
		return nil, err
	}
	if m.D != "" || m.K != "" {
		return nil, errors.New("holds a private key; publish only public keys")
	}
	if m.ALG != "" && m.ALG.String() != algFor(k) {
		return nil, fmt.Errorf("alg %q does not fit a %s key", m.ALG, algFor(k))
	}
	return k, nil
}

// publicKey checks that k is a public key Statehub verifies with.
func publicKey(k any) (crypto.PublicKey, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 needed", k.N.BitLen())
		}
		if k.E < 3 || k.E > 1<<31-1 || k.E%2 == 0 {
			return nil, errors.New("bad RSA exponent")
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC curve %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return k, nil
	case ed25519.PublicKey:
		return k, nil
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, []byte:
		return nil, errors.New("holds a private or secret key; publish only public keys")
	}
	return nil, fmt.Errorf("unsupported key type %T (want RSA, EC P-256 or Ed25519)", k)
}

// algFor is the JWT algorithm a public key verifies: RS256, ES256 or EdDSA; "" for none.
func algFor(k any) string {
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

// parseKeyFile reads a key file: a JWK Set ({"keys": [...]}, or one JWK), parsed by keyfunc, or
// PEM blocks. Each key is filed under its kid: the JWK's "kid" or the PEM block's "kid" header,
// else its RFC 7638 thumbprint. A key that signingKey refuses fails the whole file, except keys
// for another use than "sig", which are skipped.
func parseKeyFile(data []byte) (*jwkset.MemoryJWKSet, error) {
	out := jwkset.NewMemoryStorage()
	kids := map[string]bool{}
	add := func(kid string, k crypto.PublicKey) error {
		if kid == "" {
			kid = thumbprint(k)
		}
		if kids[kid] {
			return fmt.Errorf("two keys with kid %q", kid)
		}
		kids[kid] = true
		j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: kid, ALG: jwkset.ALG(algFor(k)), USE: jwkset.UseSig,
		}})
		if err != nil {
			return fmt.Errorf("kid %q: %w", kid, err)
		}
		return out.KeyWrite(context.Background(), j)
	}
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "{") {
		keys, err := parseJWKS([]byte(t))
		if err != nil {
			return nil, err
		}
		for i, j := range keys {
			k, err := signingKey(j)
			if errors.Is(err, errNotForSigning) {
				continue
			}
			if err == nil {
				err = add(j.Marshal().KID, k)
			}
			if err != nil {
				return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, j.Marshal().KID, err)
			}
		}
		return out, nil
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out, nil
		}
		k, err := parsePEMKey(b)
		if err != nil {
			return nil, err
		}
		if err := add(b.Headers["kid"], k); err != nil {
			return nil, err
		}
	}
}

// parseJWKS parses a JWK Set, or a single JWK, with keyfunc's constructors.
func parseJWKS(data []byte) ([]jwkset.JWK, error) {
	var shape struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var kf keyfunc.Keyfunc
	var err error
	if shape.Keys == nil {
		kf, err = keyfunc.NewJWKJSON(data)
	} else {
		kf, err = keyfunc.NewJWKSetJSON(data)
	}
	if err != nil {
		return nil, fmt.Errorf("JWKS: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return kf.Storage().KeyReadAll(context.Background())
}

// parsePEMKey reads one PEM block of a public key or certificate; a private key is refused.
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
	if k, err = publicKey(k); err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", b.Type, err)
	}
	return k, nil
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
