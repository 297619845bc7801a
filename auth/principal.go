package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/statehub/statehub/hub"
)

// The kinds of principal, for String and for Allow's choice of error.
const (
	kindOpen      = "open"
	kindAnonymous = "anonymous"
	kindLocal     = "local"
	kindAdmin     = "admin"
	kindMetrics   = "metrics"
	kindToken     = "token"
)

// Principal is who a request acts as, with the grants it holds. It is immutable and may be shared
// between goroutines. Its zero value holds nothing.
type Principal struct {
	subject string // the token's "sub"; "" for anonymous and admin-token principals
	kind    string // kindOpen, kindAnonymous, kindLocal, kindAdmin, kindMetrics or kindToken
	grants  map[Op][]string
	all     bool      // holds every grant (open server, admin token)
	rateKey string    // the per-token rate limit bucket; "" for none
	expires time.Time // when a token principal stops being valid (its exp plus the leeway); zero: never
}

var (
	openPrincipal  = &Principal{kind: kindOpen, all: true}
	adminPrincipal = &Principal{kind: kindAdmin, all: true}
	// localPrincipal holds write, and so read, incr and lock, on every key and subtree; not the
	// root "/" itself, which needs admin, nor metrics.
	localPrincipal   = &Principal{kind: kindLocal, grants: map[Op][]string{Write: {"/"}}}
	metricsPrincipal = &Principal{kind: kindMetrics, grants: map[Op][]string{Metrics: {"/"}}}
)

// OpenPrincipal is the principal of every request to an open server (no auth configured): it
// holds every grant, admin on "/" included, and never expires.
func OpenPrincipal() *Principal { return openPrincipal }

// Local reports whether p is the principal of a request without a token (or with a token it does
// not know) to a protected server (ModeProtected): every grant but admin and metrics. A transport
// gives it only to clients on loopback and refuses it to any other address.
func (p *Principal) Local() bool { return p.kind == kindLocal }

// Subject is the token's "sub" claim; "" for anonymous, admin-token and open principals.
func (p *Principal) Subject() string { return p.subject }

// Expires is when the token p was made from stops being accepted: its exp plus the leeway. It is
// zero for a principal that never expires (anonymous, the admin token, a JWT without exp, an
// open server); transports that outlive a request (streams, sockets) end at it.
func (p *Principal) Expires() time.Time { return p.expires }

// RateKey names p's per-token rate limit bucket: the issuer and subject of a JWT with a subject,
// else a hash of the token. It is "" for principals without a token of their own (anonymous, the
// admin token, an open server), which only the per-IP limit applies to. It never holds the token.
func (p *Principal) RateKey() string { return p.rateKey }

// String describes the principal for logs: never its token.
func (p *Principal) String() string {
	if p.subject != "" {
		return p.kind + ":" + p.subject
	}
	if p.kind == kindAnonymous && !p.all && len(p.grants) > 0 {
		ops := make([]string, 0, len(p.grants))
		for op := range p.grants {
			ops = append(ops, string(op))
		}
		slices.Sort(ops)
		return "anonymous(" + strings.Join(ops, ",") + ")"
	}
	return p.kind
}

// may reports whether p holds op on path. The root "/" needs admin whatever the op, except
// metrics, which are granted on "/" alone.
func (p *Principal) may(op Op, path string) bool {
	if p.all {
		return true
	}
	if path == "/" && op != Metrics {
		op = Admin
	}
	for have, paths := range p.grants {
		if !implies(have, op) {
			continue
		}
		for _, g := range paths {
			// A key grant covers that key only; a prefix grant every path that starts with it
			// (so "/a/b/" covers "/a/b/c" and "/a/b/" but neither "/a/bc" nor the key "/a/b").
			if hub.Covers(g, path) {
				return true
			}
		}
	}
	return false
}

// Allow returns nil when p may do op on path (a key or a prefix, already validated by the
// caller); else an error wrapping ErrUnauthorized (p is anonymous or local: a token would help)
// or ErrForbidden (p's token does not grant it). It does not look at Expires: a transport that
// keeps a principal checks that itself.
func (p *Principal) Allow(op Op, path string) error {
	if p.may(op, path) {
		return nil
	}
	if path == "/" && op != Metrics {
		op = Admin
	}
	if p.kind == kindAnonymous || p.kind == kindLocal {
		return fmt.Errorf("%w: a token granting %s on %s is needed", ErrUnauthorized, op, path)
	}
	return fmt.Errorf("%w: the token does not grant %s on %s", ErrForbidden, op, path)
}
