package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Authorization errors. The transports map ErrUnauthorized to 401 and ErrForbidden to 403.
var (
	ErrUnauthorized = errors.New("auth: unauthorized")
	ErrForbidden    = errors.New("auth: forbidden")
)

// Defaults and limits of token verification.
const (
	// DefaultLeeway is the clock skew allowed when checking exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxTokenBytes bounds a token before it is parsed at all.
	MaxTokenBytes = 8 << 10
	// DefaultJWKSRefresh is how often a JWKS URL is fetched again.
	DefaultJWKSRefresh = time.Hour
	// DefaultJWKSRefreshLimit is the least time between the fetches of a JWKS URL that tokens
	// naming an unknown kid trigger.
	DefaultJWKSRefreshLimit = 5 * time.Minute
	// DefaultJWKSTimeout bounds one fetch of a JWKS URL, and so the wait of a token that
	// triggers one.
	DefaultJWKSTimeout = 10 * time.Second
	// minAdminToken and minSecret are the shortest admin token and HS256 secret accepted.
	minAdminToken = 16
	minSecret     = 32
)

// Clock is what exp, nbf and iat are checked against. hub.Clock satisfies it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures New. With every field zero the server is open.
type Config struct {
	JWTSecret  string        // HS256 secret, at least 32 bytes; "" accepts no HS256 token
	JWTKeys    string        // file of public keys (PEM blocks or a JWK Set); "" for none
	JWKSURL    string        // http(s) URL of a JWK Set, fetched at New and refreshed; "" for none
	Audience   string        // required "aud" when set
	Issuer     string        // required "iss" when set
	AdminToken string        // a static token holding admin on "/", at least 16 bytes; "" for none
	Anonymous  *Grants       // grants of requests without a token; nil: none (or open, if nothing else is set)
	Clock      Clock         // what exp, nbf and iat are checked against (default: the system clock)
	Leeway     time.Duration // clock skew allowed on exp, nbf and iat (default DefaultLeeway)

	JWKSRefresh      time.Duration // how often JWKSURL is fetched again (default DefaultJWKSRefresh)
	JWKSRefreshLimit time.Duration // least time between fetches that unknown kids trigger (default DefaultJWKSRefreshLimit)
	HTTPClient       *http.Client  // fetches JWKSURL (default: a client with DefaultJWKSTimeout)
	Logger           *slog.Logger  // where failed refreshes of JWKSURL are reported (default slog.Default())
}

// Authenticator resolves tokens to principals. Its configuration is fixed by New; it is safe for
// concurrent use.
type Authenticator struct {
	open      bool
	jwt       *verifier
	adminHash *[sha256.Size]byte
	anon      *Principal
	cancel    context.CancelFunc // ends the JWKS refresh; nil without a JWKS URL
}

// New validates cfg, fills its defaults and loads its keys; with a JWKS URL it fetches the set
// once (an error if that fails or the set holds no usable key) and starts refreshing it: call
// Close to stop.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.JWKSRefresh <= 0 {
		cfg.JWKSRefresh = DefaultJWKSRefresh
	}
	if cfg.JWKSRefreshLimit <= 0 {
		cfg.JWKSRefreshLimit = DefaultJWKSRefreshLimit
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Authenticator{anon: &Principal{kind: kindAnonymous}}
	jwtConfigured := cfg.JWTSecret != "" || cfg.JWTKeys != "" || cfg.JWKSURL != ""
	if !jwtConfigured && cfg.AdminToken == "" && cfg.Anonymous == nil {
		a.open = true
		return a, nil
	}
	if (cfg.Audience != "" || cfg.Issuer != "") && !jwtConfigured {
		return nil, errors.New("-jwt-audience and -jwt-issuer need -jwt-secret, -jwt-keys or -jwt-jwks-url")
	}
	if cfg.AdminToken != "" {
		if len(cfg.AdminToken) < minAdminToken {
			return nil, fmt.Errorf("the admin token must be at least %d bytes", minAdminToken)
		}
		h := sha256.Sum256([]byte(cfg.AdminToken))
		a.adminHash = &h
	}
	if cfg.Anonymous != nil {
		a.anon = compileGrants(*cfg.Anonymous, "")
		a.anon.kind = kindAnonymous
	}
	v, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	a.jwt = v
	if v != nil && v.keys != nil {
		a.cancel = v.keys.stop
	}
	return a, nil
}

// Close stops refreshing the JWKS URL. Principal still works, with the keys last fetched. It is
// safe to call more than once, and on an Authenticator without a URL.
func (a *Authenticator) Close() {
	if a != nil && a.cancel != nil {
		a.cancel()
	}
}

// Open reports whether the server is open: no auth configured, every request holds every grant.
// A nil Authenticator is open.
func (a *Authenticator) Open() bool { return a == nil || a.open }

// Describe says in a few words how requests are authorized, as slog attributes for the start-up
// log. It holds no secret.
func (a *Authenticator) Describe() []any {
	if a.Open() {
		return []any{"auth", "open"}
	}
	attrs := []any{"auth", "on"}
	if a.jwt != nil {
		attrs = append(attrs, "jwt_algs", a.jwt.methods)
		if a.jwt.keys != nil && a.jwt.keys.url != "" {
			attrs = append(attrs, "jwks_url", a.jwt.keys.url)
		}
	}
	return append(attrs, "admin_token", a.adminHash != nil, "anonymous", a.anon.String())
}

// Principal resolves a raw token ("" for none) to its principal: the open principal on an open
// server (which ignores tokens, well-formed or not), the anonymous one without a token, else the
// admin token's or the JWT's. Every failure wraps ErrUnauthorized and names the cause, never the
// token.
func (a *Authenticator) Principal(raw string) (*Principal, error) {
	if a.Open() {
		return openPrincipal, nil
	}
	if raw == "" {
		return a.anon, nil
	}
	if a.adminHash != nil {
		h := sha256.Sum256([]byte(raw))
		if subtle.ConstantTimeCompare(h[:], a.adminHash[:]) == 1 {
			return adminPrincipal, nil
		}
	}
	if a.jwt == nil {
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	claims, err := a.jwt.verify(raw)
	if err != nil {
		return nil, err
	}
	p := compileGrants(claims.Grants, claims.Subject)
	if claims.ExpiresAt != nil {
		p.expires = claims.ExpiresAt.Add(a.jwt.leeway)
	}
	if claims.Subject != "" {
		p.rateKey = "sub:" + claims.Issuer + "\x00" + claims.Subject
	} else {
		sum := sha256.Sum256([]byte(raw))
		p.rateKey = "tok:" + hex.EncodeToString(sum[:12])
	}
	return p, nil
}
