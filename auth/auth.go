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
	// minAdminToken and minSecret are the shortest admin (or metrics) token and HS256 secret
	// accepted.
	minAdminToken = 16
	minSecret     = 32
)

// Clock is what exp, nbf and iat are checked against. hub.Clock satisfies it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures New. With every field zero the server is protected (ModeProtected).
type Config struct {
	JWTSecret  string // HS256 secret, at least 32 bytes; "" accepts no HS256 token
	JWTKeys    string // file of public keys (PEM blocks or a JWK Set); "" for none
	JWKSURL    string // http(s) URL of a JWK Set, fetched at New and refreshed; "" for none
	Audience   string // required "aud" when set
	Issuer     string // required "iss" when set
	AdminToken string // a static token holding admin on "/", at least 16 bytes; "" for none
	// AdminTokenGenerated says the server made AdminToken itself because the operator configured
	// none (the binary's admin-token file): it then does not count as configured auth, so a
	// server with nothing else configured stays protected.
	AdminTokenGenerated bool
	// MetricsToken is a static token that may only read the metrics (for Prometheus), at least
	// 16 bytes; "" for none. It does not count as configured auth.
	MetricsToken string
	Anonymous    *Grants       // grants of requests without a token; nil: none (or protected, if nothing else is set)
	Open         bool          // every request holds every grant, admin included, from anywhere (ModeOpen); nothing else may be set
	Clock        Clock         // what exp, nbf and iat are checked against (default: the system clock)
	Leeway       time.Duration // clock skew allowed on exp, nbf and iat (default DefaultLeeway)

	JWKSRefresh      time.Duration // how often JWKSURL is fetched again (default DefaultJWKSRefresh)
	JWKSRefreshLimit time.Duration // least time between fetches that unknown kids trigger (default DefaultJWKSRefreshLimit)
	HTTPClient       *http.Client  // fetches JWKSURL (default: a client with DefaultJWKSTimeout)
	Logger           *slog.Logger  // where failed refreshes of JWKSURL are reported (default slog.Default())
}

// Mode is how an Authenticator treats requests, decided by New from what its Config sets.
type Mode int

const (
	// ModeProtected: no auth configured (no JWT keys, no operator's admin token, no anonymous
	// grants). A request without a token holds every grant but admin and metrics (the local
	// principal, Principal.Local), which the transports give only to clients on loopback; the
	// admin and metrics tokens, when set, hold their grants from anywhere. Any other token is
	// ignored, as an open server ignores tokens.
	ModeProtected Mode = iota
	// ModeAuth: auth configured. A request without a token holds the anonymous grants (none by
	// default), from anywhere.
	ModeAuth
	// ModeOpen: Config.Open. Every request holds every grant, admin included, from anywhere
	// (OpenPrincipal): AtomKV's behaviour, chosen deliberately.
	ModeOpen
)

// String names the mode for logs: "protected", "auth" or "open".
func (m Mode) String() string {
	switch m {
	case ModeProtected:
		return "protected"
	case ModeAuth:
		return "auth"
	case ModeOpen:
		return "open"
	}
	return "unknown"
}

// Authenticator resolves tokens to principals. Its configuration is fixed by New; it is safe for
// concurrent use.
type Authenticator struct {
	mode        Mode
	jwt         *verifier
	adminHash   *[sha256.Size]byte
	metricsHash *[sha256.Size]byte
	anon        *Principal         // the principal of a request without a token
	cancel      context.CancelFunc // ends the JWKS refresh; nil without a JWKS URL
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
	a := &Authenticator{mode: ModeAuth, anon: &Principal{kind: kindAnonymous}}
	jwtConfigured := cfg.JWTSecret != "" || cfg.JWTKeys != "" || cfg.JWKSURL != ""
	if cfg.Open {
		if jwtConfigured || cfg.AdminToken != "" || cfg.MetricsToken != "" || cfg.Anonymous != nil {
			return nil, errors.New("-open gives every request every grant: it takes no -jwt-secret, -jwt-keys, -jwt-jwks-url, -admin-token, -metrics-token or -anon")
		}
		a.mode = ModeOpen
		return a, nil
	}
	if !jwtConfigured && (cfg.AdminToken == "" || cfg.AdminTokenGenerated) && cfg.Anonymous == nil {
		a.mode, a.anon = ModeProtected, localPrincipal
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
	if cfg.MetricsToken != "" {
		if len(cfg.MetricsToken) < minAdminToken {
			return nil, fmt.Errorf("the metrics token must be at least %d bytes", minAdminToken)
		}
		if cfg.MetricsToken == cfg.AdminToken {
			return nil, errors.New("the metrics token must not be the admin token")
		}
		h := sha256.Sum256([]byte(cfg.MetricsToken))
		a.metricsHash = &h
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

// Mode reports how requests are treated (see Mode's values).
func (a *Authenticator) Mode() Mode { return a.mode }

// Open reports whether the server is open (ModeOpen): every request holds every grant.
func (a *Authenticator) Open() bool { return a.mode == ModeOpen }

// Describe says in a few words how requests are authorized, as slog attributes for the start-up
// log: the mode, then what is configured. It holds no secret.
func (a *Authenticator) Describe() []any {
	attrs := []any{"auth", a.mode.String()}
	if a.Open() {
		return attrs
	}
	if a.jwt != nil {
		attrs = append(attrs, "jwt_algs", a.jwt.methods)
		if a.jwt.keys != nil && a.jwt.keys.url != "" {
			attrs = append(attrs, "jwks_url", a.jwt.keys.url)
		}
	}
	return append(attrs, "admin_token", a.adminHash != nil, "metrics_token", a.metricsHash != nil, "anonymous", a.anon.String())
}

// Principal resolves a raw token ("" for none) to its principal: the open principal on an open
// server (which ignores tokens, well-formed or not); without a token the anonymous one (the local
// one on a protected server); else the admin token's, the metrics token's or the JWT's. A
// protected server, which verifies no JWT, takes any other token for none. Every failure wraps
// ErrUnauthorized and names the cause, never the token.
func (a *Authenticator) Principal(raw string) (*Principal, error) {
	if a.Open() {
		return openPrincipal, nil
	}
	if raw == "" {
		return a.anon, nil
	}
	if a.adminHash != nil || a.metricsHash != nil {
		h := sha256.Sum256([]byte(raw))
		if a.adminHash != nil && subtle.ConstantTimeCompare(h[:], a.adminHash[:]) == 1 {
			return adminPrincipal, nil
		}
		if a.metricsHash != nil && subtle.ConstantTimeCompare(h[:], a.metricsHash[:]) == 1 {
			return metricsPrincipal, nil
		}
	}
	if a.mode == ModeProtected {
		return a.anon, nil
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
