package auth

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/statehub/statehub/hub"
)

// Op is an operation a request performs on a path, for authorization.
type Op string

// The operations grants are given for (see the grant rules in the package comment).
const (
	Read  Op = "read"
	Write Op = "write"
	Incr  Op = "incr"
	Lock  Op = "lock"
	Admin Op = "admin"
	// Broadcast is sending a message to a path's subscribers (never stored); write implies it.
	Broadcast Op = "broadcast"
	// Metrics is reading GET /.metrics. It is granted on "/" only, and admin implies it.
	Metrics Op = "metrics"
)

// implies reports whether a grant of have allows need.
func implies(have, need Op) bool {
	switch have {
	case need, Admin:
		return true
	case Write:
		return need == Read || need == Incr || need == Lock || need == Broadcast
	}
	return false
}

// Grants lists, per operation, the paths a principal may use it on. A path is a key, or a prefix
// ending in "/" naming a subtree; "{sub}" in a path stands for the token's subject. It is the
// shape of a JWT's "grants" claim and of the anonymous grants.
type Grants struct {
	Read      []string `json:"read,omitempty"`
	Write     []string `json:"write,omitempty"`
	Incr      []string `json:"incr,omitempty"`
	Lock      []string `json:"lock,omitempty"`
	Broadcast []string `json:"broadcast,omitempty"`
	Admin     []string `json:"admin,omitempty"`
	Metrics   []string `json:"metrics,omitempty"` // ["/"] or nothing: metrics are not per path
}

func (g *Grants) byOp() map[Op][]string {
	return map[Op][]string{Read: g.Read, Write: g.Write, Incr: g.Incr, Lock: g.Lock, Broadcast: g.Broadcast, Admin: g.Admin, Metrics: g.Metrics}
}

// ParseGrants reads a grants JSON object such as {"read": ["/public/"]}, for the anonymous grants.
// Unknown operations, invalid paths and "{sub}" (an anonymous request has no subject) are errors
// here, where the operator can fix them; a token's grants are never refused, only dropped.
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
			if op == Metrics && p != "/" {
				return nil, fmt.Errorf("grants: metrics path %q: metrics are granted on \"/\" only", p)
			}
		}
	}
	return &g, nil
}

// compileGrants makes the principal of a token with subject sub and grants g: it substitutes
// {sub} and drops paths that are not valid or whose subject is unfit.
func compileGrants(g Grants, sub string) *Principal {
	p := &Principal{subject: sub, kind: kindToken, grants: map[Op][]string{}}
	subOK := sub != "" && !strings.Contains(sub, "/") && hub.Limits{}.CheckKey("/"+sub) == nil
	for op, paths := range g.byOp() {
		for _, path := range paths {
			if strings.Contains(path, "{sub}") {
				if !subOK {
					continue
				}
				path = strings.ReplaceAll(path, "{sub}", sub)
			}
			if validGrantPath(path) && (op != Metrics || path == "/") {
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
