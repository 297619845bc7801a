package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifier checks JWTs: the signature with a configured key, then exp, nbf, iat, aud and iss.
// Its fields are fixed by newVerifier; keys may refresh themselves. Safe for concurrent use.
type verifier struct {
	secret  []byte   // HS256; nil when not configured
	keys    *keySet  // public keys; nil when neither a key file nor a JWKS URL is configured
	methods []string // the algorithms accepted: only those a configured key can verify
	leeway  time.Duration
	parser  *jwt.Parser
}

// tokenClaims is the claim set Statehub reads. Grants is decoded with encoding/json into typed
// fields: a claim of the wrong shape fails the token instead of being type-asserted later.
type tokenClaims struct {
	jwt.RegisteredClaims
	Grants Grants `json:"grants"`
}

// newVerifier builds the verifier for cfg's secret, key file and JWKS URL; it returns nil when
// none is configured.
func newVerifier(cfg Config) (*verifier, error) {
	if cfg.JWTSecret == "" && cfg.JWTKeys == "" && cfg.JWKSURL == "" {
		return nil, nil
	}
	v := &verifier{leeway: cfg.Leeway}
	if cfg.JWTSecret != "" {
		if len(cfg.JWTSecret) < minSecret {
			return nil, fmt.Errorf("the JWT secret must be at least %d bytes (HS256 needs a 256-bit key)", minSecret)
		}
		v.secret = []byte(cfg.JWTSecret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	if keys != nil {
		v.keys = keys
		v.methods = append(v.methods, keys.algs...)
	}
	slices.Sort(v.methods)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Clock.Now),
		jwt.WithIssuedAt(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
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
	if _, err := v.parser.ParseWithClaims(raw, &claims, v.key); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthorized, tokenProblem(err))
	}
	return &claims, nil
}

// keyError is why no key verifies a token: a short text that never holds the token.
type keyError string

func (e keyError) Error() string { return string(e) }

// key chooses the verification key for a token whose algorithm the parser has already checked
// against the configured ones. HS256 uses only the secret: never a public key's bytes (the
// algorithm-confusion attack). Public-key algorithms use the key set.
func (v *verifier) key(t *jwt.Token) (any, error) {
	if t.Method.Alg() == jwt.SigningMethodHS256.Alg() {
		if v.secret == nil {
			return nil, keyError("HS256 is not configured")
		}
		return v.secret, nil
	}
	if v.keys == nil {
		return nil, keyError("no public keys are configured")
	}
	return v.keys.find(t)
}

// tokenProblem is a short, token-free description of a verification failure.
func tokenProblem(err error) string {
	var ke keyError
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
	case errors.As(err, &ke):
		return "no key to verify the token: " + string(ke)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no key to verify the token"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "invalid claims"
	}
	return "invalid token"
}
