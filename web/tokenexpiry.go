package web

import (
	"encoding/json"
	"fmt"

	"github.com/statehub/statehub/auth"
)

// Streams and sockets end when their token does (PROTOCOL.md). A request is checked once, but an
// SSE stream or a WebSocket lives on; a token with an exp must not keep delivering past it:
//
//   - An SSE stream ends with `event: close`, reason "token_expired", when the exp (plus the
//     leeway, when a request with the token starts getting 401) passes; nothing committed after it
//     is sent. EventSource reconnects, and the client comes back with a fresh token.
//   - A WebSocket closes then with 1008 and reason "token_expired", after the messages already
//     queued; its subscriptions are closed first, so nothing committed after it is sent. Before
//     that the client may send {"op":"auth","token":...} again with a fresh token: the connection
//     keeps its subscriptions, the new token's grants apply from then on (a subscription they do
//     not cover ends with {"type":"close","reason":"unauthorized"}), and its exp replaces the
//     old one. A refused token changes nothing: the old token stays in force until its exp.
//
// Each stream or socket arms one timer on the server's Clock (again at a re-authentication), not
// one per message; a principal without exp (anonymous, the admin token, a JWT without exp, an open
// server) arms none.

// errTokenExpired ends a stream or socket whose token has expired.
var errTokenExpired = fmt.Errorf("%w: the token has expired; reconnect with a fresh one", auth.ErrUnauthorized)

// tokenTimer calls f in its own goroutine when p's token expires, unless stop is called first;
// stop reports whether it came first (f will not run). For a principal without exp it arms
// nothing, and stop does nothing and reports true: f never runs.
func (s *Server) tokenTimer(p *auth.Principal, f func()) (stop func() bool) {
	if p == nil || p.Expires().IsZero() {
		return func() bool { return true }
	}
	clock := s.cfg.Clock
	return clock.AfterFunc(p.Expires().Sub(clock.Now()), f)
}

// armExpiry arms the connection's one expiry timer for its principal, once caller has
// resolved it. Only the reader goroutine calls it.
func (c *wsConn) armExpiry() {
	if c.expiry != nil {
		c.expiry()
	}
	c.expiry = c.s.tokenTimer(c.principal, c.expire)
}

// expire closes the connection when its token expires: the hub subscriptions first, so that no
// change committed from now on is queued (the writer ends them without a close event), then the
// socket, after what is queued already.
func (c *wsConn) expire() {
	c.mu.Lock()
	subs := make([]*wsSub, 0, len(c.subs))
	for _, sb := range c.subs {
		subs = append(subs, sb)
	}
	c.mu.Unlock()
	for _, sb := range subs {
		sb.hs.Close()
	}
	c.end(disconnectTokenExpired, true)
}

// reauth serves an auth message after the first one: the connection goes on, its subscriptions
// included, with the principal of token, whose exp replaces the old one. A refused token is
// answered with its error and changes nothing. Only the reader goroutine calls it.
func (c *wsConn) reauth(id json.RawMessage, token string) error {
	if token == "" {
		return badRequest("bad_request", "auth needs a token")
	}
	if c.s.auth.Open() {
		c.answer(wsAnswer{ID: id, OK: true}) // an open server ignores tokens, as on the first message
		return nil
	}
	p, err := c.s.resolve(token, nil, c.loopback)
	if err != nil {
		return err
	}
	if c.expiry != nil && !c.expiry() {
		return errTokenExpired // the old token's timer has fired: the connection is closing
	}
	c.principal, c.authErr, c.authed = p, nil, true
	c.token, c.authToken = token, token
	c.expiry = c.s.tokenTimer(p, c.expire)
	// Subscriptions the new grants do not cover end, each after the events it has queued.
	c.mu.Lock()
	var gone []*wsSub
	for key, sb := range c.subs {
		if p.Allow(auth.Read, sb.hs.Path) != nil {
			sb.ended = disconnectUnauthorized
			delete(c.subs, key)
			gone = append(gone, sb)
		}
	}
	c.mu.Unlock()
	for _, sb := range gone {
		sb.hs.Close()
	}
	c.answer(wsAnswer{ID: id, OK: true})
	return nil
}
