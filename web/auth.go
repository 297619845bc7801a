package web

// Authorization: who a request is (a Principal, from a token) and what it may do (grants).
//
// # Tokens
//
// A request carries at most one token: "Authorization: Bearer <token>", else a "token" query
// parameter (EventSource and <img> cannot set headers), or, on a WebSocket, the first message
// (ws.go calls Server.authenticate). A token is the admin token (compared in constant time), or a
// JWT: HS256 with the -jwt-secret, or RS256, ES256 or EdDSA with the public key its "kid" names
// (from -jwt-keys). Only the algorithms of configured keys are accepted; exp, nbf and iat are
// checked with DefaultLeeway of skew, aud and iss when configured. A missing or bad token where
// one is needed is 401; a good token without the grant is 403.
//
// # Grants
//
// A JWT's "grants" claim maps operations to paths:
//
//	{"grants": {"read": ["/public/"], "write": ["/users/{sub}/"], "incr": ["/views/"],
//	            "lock": ["/ci/deploy"], "admin": []}}
//
// A path is a key ("/a/b": that key only) or a prefix ending in "/" ("/a/b/": every key and
// subtree below it, never "/a/bc" nor the key "/a/b" itself). "{sub}" is replaced by the token's
// subject, which must then be a single key component (letters, digits, "-", "_"); otherwise that
// grant is dropped, so a subject cannot widen or redirect it. Grant paths that are not valid
// paths are dropped too.
//
// Which operations imply which (the decision):
//
//   - admin implies every operation (read, write, incr, lock, admin) on its paths. Admin on "/" is
//     needed for the root "/" itself (listing, streaming or deleting everything), GET /.snapshot
//     and GET /.metrics. The admin token holds admin on "/".
//   - write implies read, incr and lock: a writer can already replace or delete the value, so
//     reading it, adding to it or fencing it gives nothing more; and compare-and-swap (the
//     client's update) needs the read.
//   - read, incr and lock imply nothing else. In particular incr does not imply read: a page
//     may count views without reading other keys; grant both for a live counter.
//   - Streams (SSE, WebSocket subscriptions) need read on their path.
//
// With no auth configured at all (no secret, no keys, no admin token, no -anon) the server is
// open, as AtomKV is: every request holds every grant, admin included, and the server says so at
// start. Once anything is configured, requests without a token hold only the -anon grants (none
// by default).

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// Op is an operation a request performs on a path, for authorization.
type Op string

// The operations grants are given for.
const (
	OpRead  Op = "read"
	OpWrite Op = "write"
	OpIncr  Op = "incr"
	OpLock  Op = "lock"
	OpAdmin Op = "admin"
)

// Authorization errors; classify maps them to 401 and 403.
var (
	ErrUnauthorized = errors.New("web: unauthorized")
	ErrForbidden    = errors.New("web: forbidden")
)

// implies reports whether a grant of have allows need (see the package's grant rules above).
func implies(have, need Op) bool {
	switch have {
	case need, OpAdmin:
		return true
	case OpWrite:
		return need == OpRead || need == OpIncr || need == OpLock
	}
	return false
}

// AuthConfig configures NewAuth. With every field zero the server is open.
type AuthConfig struct {
	JWTSecret  string        // HS256 secret, at least 32 bytes; "" accepts no HS256 token
	JWTKeys    string        // file of public keys (PEM blocks or a JWKS); "" accepts no public-key token
	Audience   string        // required "aud" when set
	Issuer     string        // required "iss" when set
	Leeway     time.Duration // clock skew allowed on exp, nbf and iat (default DefaultLeeway)
	AdminToken string        // a static token holding admin on "/"; "" for none
	Anonymous  *Grants       // grants of requests without a token; nil: none (or open, if nothing else is set)
	Clock      hub.Clock     // what exp and nbf are checked against (default hub.SystemClock)
}

// ParseGrants reads a grants JSON object such as {"read": ["/public/"]}, for -anon. Unknown
// operations and invalid paths are errors here, where the operator can fix them.
func ParseGrants(s string) (*Grants, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var g Grants
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("grants %q: %w", s, err)
	}
	for op, paths := range g.byOp() {
		for _, p := range paths {
			if strings.Contains(p, "{sub}") {
				return nil, fmt.Errorf("grants: %s path %q: anonymous requests have no subject", op, p)
			}
			if !validGrantPath(p) {
				return nil, fmt.Errorf("grants: %s path %q is not a key or a prefix ending in /", op, p)
			}
		}
	}
	return &g, nil
}

func (g *Grants) byOp() map[Op][]string {
	return map[Op][]string{OpRead: g.Read, OpWrite: g.Write, OpIncr: g.Incr, OpLock: g.Lock, OpAdmin: g.Admin}
}

// Auth resolves tokens to principals. It is immutable after NewAuth and safe for concurrent use.
type Auth struct {
	open      bool
	jwt       *verifier
	adminHash *[sha256.Size]byte
	anon      *Principal
}

// NewAuth validates cfg and loads its keys.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Clock == nil {
		cfg.Clock = hub.SystemClock{}
	}
	a := &Auth{anon: &Principal{kind: "anonymous"}}
	if cfg.JWTSecret == "" && cfg.JWTKeys == "" && cfg.AdminToken == "" && cfg.Anonymous == nil {
		a.open = true
		return a, nil
	}
	if (cfg.Audience != "" || cfg.Issuer != "") && cfg.JWTSecret == "" && cfg.JWTKeys == "" {
		return nil, errors.New("-jwt-audience and -jwt-issuer need -jwt-secret or -jwt-keys")
	}
	v, err := newVerifier(cfg.JWTSecret, cfg.JWTKeys, cfg.Audience, cfg.Issuer, cfg.Leeway, cfg.Clock)
	if err != nil {
		return nil, err
	}
	a.jwt = v
	if cfg.AdminToken != "" {
		if len(cfg.AdminToken) < 16 {
			return nil, errors.New("the admin token must be at least 16 bytes")
		}
		h := sha256.Sum256([]byte(cfg.AdminToken))
		a.adminHash = &h
	}
	if cfg.Anonymous != nil {
		a.anon = compileGrants(*cfg.Anonymous, "")
		a.anon.kind = "anonymous"
	}
	return a, nil
}

// Open reports whether the server is open: no auth configured, every request holds every grant.
func (a *Auth) Open() bool { return a == nil || a.open }

// Describe says in a few words how requests are authorized, for the start-up log. It holds no secret.
func (a *Auth) Describe() []any {
	if a.Open() {
		return []any{"auth", "open"}
	}
	var methods []string
	if a.jwt != nil {
		methods = a.jwt.methods
	}
	return []any{"auth", "on", "jwt_algs", methods, "admin_token", a.adminHash != nil, "anonymous", a.anon.String()}
}

// Principal is who a request acts as, with the grants it holds. Its zero value holds nothing.
type Principal struct {
	Subject string // the token's "sub"; "" for anonymous and admin-token requests
	kind    string // open, anonymous, admin or token
	grants  map[Op][]string
	all     bool      // holds every grant (open server, admin token)
	rateKey string    // the per-token rate limit bucket; "" for none
	expires time.Time // when a token principal stops being valid (its exp plus the leeway); zero: never
}

// String describes the principal for logs: never its token.
func (p *Principal) String() string {
	if p.Subject != "" {
		return p.kind + ":" + p.Subject
	}
	if p.kind == "anonymous" && !p.all && len(p.grants) > 0 {
		ops := make([]string, 0, len(p.grants))
		for op := range p.grants {
			ops = append(ops, string(op))
		}
		return "anonymous(" + strings.Join(ops, ",") + ")"
	}
	return p.kind
}

var (
	openPrincipal  = &Principal{kind: "open", all: true}
	adminPrincipal = &Principal{kind: "admin", all: true}
)

// compileGrants substitutes {sub} and drops paths that are not valid or whose subject is unfit.
func compileGrants(g Grants, sub string) *Principal {
	p := &Principal{Subject: sub, kind: "token", grants: map[Op][]string{}}
	subOK := sub != "" && !strings.Contains(sub, "/") && hub.Limits{}.CheckKey("/"+sub) == nil
	for op, paths := range g.byOp() {
		for _, path := range paths {
			if strings.Contains(path, "{sub}") {
				if !subOK {
					continue
				}
				path = strings.ReplaceAll(path, "{sub}", sub)
			}
			if validGrantPath(path) {
				p.grants[op] = append(p.grants[op], path)
			}
		}
	}
	return p
}

// validGrantPath: "/", a key, or a prefix ending in "/" (within the default key limits).
func validGrantPath(p string) bool {
	return hub.Limits{}.CheckPath(p) == nil
}

// covers reports whether grant path g covers path (a key or a prefix): a key grant only that
// key; a prefix grant every path that starts with it (so "/a/b/" covers "/a/b/c" and "/a/b/" but
// neither "/a/bc" nor the key "/a/b").
func covers(g, path string) bool { return hub.Covers(g, path) }

// may reports whether p holds op on path. The root "/" needs admin whatever the op.
func (p *Principal) may(op Op, path string) bool {
	if p.all {
		return true
	}
	if path == "/" {
		op = OpAdmin
	}
	for have, paths := range p.grants {
		if !implies(have, op) {
			continue
		}
		for _, g := range paths {
			if covers(g, path) {
				return true
			}
		}
	}
	return false
}

// principal resolves a raw token ("" for none). Every failure wraps ErrUnauthorized.
func (a *Auth) principal(raw string) (*Principal, error) {
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

// allow returns nil when p may do op on path; else an error wrapping ErrUnauthorized (p is
// anonymous: a token would help) or ErrForbidden (p's token does not grant it).
func allow(p *Principal, op Op, path string) error {
	if p.may(op, path) {
		return nil
	}
	if path == "/" {
		op = OpAdmin
	}
	if p.kind == "anonymous" {
		return fmt.Errorf("%w: a token granting %s on %s is needed", ErrUnauthorized, op, path)
	}
	return fmt.Errorf("%w: the token does not grant %s on %s", ErrForbidden, op, path)
}

// authenticate resolves a raw token ("" for none) to its principal, for transports that carry
// the token themselves (the WebSocket's first message). Every failure wraps ErrUnauthorized.
func (s *Server) authenticate(raw string) (*Principal, error) { return s.auth.principal(raw) }

// allow is the check behind authorize, for transports that resolved their principal with
// authenticate: nil, or an error wrapping ErrUnauthorized or ErrForbidden.
func (s *Server) allow(p *Principal, op Op, path string) error { return allow(p, op, path) }

// authorize checks an HTTP request that is not one of the key operations (badges, clicks,
// metrics, backups): it resolves the request's principal and asks permit, as the operations do.
func (s *Server) authorize(c echo.Context, op Op, path string) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	return s.permit(p, op, path)
}

const principalKey = "statehub.principal"

type resolved struct {
	p   *Principal
	err error
}

// principalOf resolves the request's token once and keeps the result on the request.
func (s *Server) principalOf(c echo.Context) (*Principal, error) {
	if s.auth.Open() {
		return openPrincipal, nil // an open server ignores tokens, well-formed or not
	}
	if r, ok := c.Get(principalKey).(resolved); ok {
		return r.p, r.err
	}
	raw, err := requestToken(c.Request())
	var p *Principal
	if err == nil {
		p, err = s.auth.principal(raw)
	}
	c.Set(principalKey, resolved{p, err})
	return p, err
}

// requestToken finds a request's token: the Authorization header (Bearer only), else the
// "token" query parameter; "" when there is none.
func requestToken(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", fmt.Errorf("%w: the Authorization header must be \"Bearer <token>\"", ErrUnauthorized)
		}
		return tok, nil
	}
	return r.URL.Query().Get("token"), nil
}
