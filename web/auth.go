package web

// Authorization glue. The auth package decides who a token is and what its grants allow (its
// doc.go holds the grant rules); this file only finds a request's token and asks it.
//
// A request carries at most one token: "Authorization: Bearer <token>", else a "token" query
// parameter (EventSource and <img> cannot set headers), or, on a WebSocket, the auth message or
// the upgrade request (ws.go's wsPrincipal). A missing or bad token where one is needed is 401,
// with WWW-Authenticate (handleError); a good token without the grant is 403 (classify). On a
// protected server a request without a token from a client not on loopback is 403
// protected_mode (protected.go).

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
)

// authorize checks an HTTP request that is not one of the key operations (badges, clicks,
// metrics, backups): it resolves the request's principal and asks permit, as the operations do.
func (s *Server) authorize(c echo.Context, op auth.Op, path string) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	return s.permit(p, op, path)
}

const principalKey = "statehub.principal"

type resolved struct {
	p   *auth.Principal
	err error
}

// principalOf resolves the request's token once and keeps the result on the request.
func (s *Server) principalOf(c echo.Context) (*auth.Principal, error) {
	if s.auth.Open() {
		return auth.OpenPrincipal(), nil // an open server ignores tokens, well-formed or not
	}
	if r, ok := c.Get(principalKey).(resolved); ok {
		return r.p, r.err
	}
	raw, err := tokenOf(c.Request().Header, c.QueryParams())
	p, err := s.resolve(raw, err, s.fromLoopback(c))
	c.Set(principalKey, resolved{p, err})
	return p, err
}

// requestToken finds a request's token: the Authorization header (Bearer only), else the
// "token" query parameter; "" when there is none.
func requestToken(r *http.Request) (string, error) { return tokenOf(r.Header, r.URL.Query()) }

// tokenOf is requestToken of a request's headers and its parsed query.
func tokenOf(h http.Header, q url.Values) (string, error) {
	if a := h.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", fmt.Errorf("%w: the Authorization header must be \"Bearer <token>\"", auth.ErrUnauthorized)
		}
		return tok, nil
	}
	return q.Get("token"), nil
}
