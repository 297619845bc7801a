package web

import (
	"errors"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// A disconnect says why the server ends a stream, a WebSocket subscription or a whole WebSocket
// connection. It is the one catalogue of reasons (PROTOCOL.md, "Disconnect reasons"): SSE sends
// the reason in `event: close`, a WebSocket subscription in {"type":"close"}, a WebSocket
// connection in its close frame with the code beside it. In every case the client may reconnect
// and resume from its last position; only after unauthorized or token_expired does it need a
// (fresh) token first.
type disconnect struct {
	reason string
	code   websocket.StatusCode // the WebSocket close code when the whole connection ends
}

// StatusSlow closes a connection whose client does not read its messages fast enough.
const StatusSlow websocket.StatusCode = 4000

var (
	// disconnectSlow: the subscriber's queue overflowed, or the client does not read.
	disconnectSlow = disconnect{"slow", StatusSlow}
	// disconnectShutdown: the server is shutting down; reconnect (here once it is back, or to
	// another node).
	disconnectShutdown = disconnect{"shutdown", websocket.StatusGoingAway}
	// disconnectUnauthorized: the token was refused, or a re-authentication's grants no longer
	// cover the subscription's path.
	disconnectUnauthorized = disconnect{"unauthorized", websocket.StatusPolicyViolation}
	// disconnectTokenExpired: the token's exp (plus the leeway) passed.
	disconnectTokenExpired = disconnect{"token_expired", websocket.StatusPolicyViolation}
	// disconnectUnavailable: the store stopped delivering changes for a while (a cluster node lost
	// etcd); resume once it is back, here or at another node.
	disconnectUnavailable = disconnect{"unavailable", websocket.StatusTryAgainLater}
	// disconnectClosed: the subscription ended for another reason (its connection is closing).
	disconnectClosed = disconnect{"closed", websocket.StatusNormalClosure}
)

// disconnectFor returns the disconnect for the error that ended a subscription.
func disconnectFor(err error) disconnect {
	switch {
	case errors.Is(err, hub.ErrSlowConsumer):
		return disconnectSlow
	case errors.Is(err, hub.ErrShutdown):
		return disconnectShutdown
	case errors.Is(err, errTokenExpired):
		return disconnectTokenExpired
	case errors.Is(err, hub.ErrUnavailable):
		return disconnectUnavailable
	case errors.Is(err, auth.ErrUnauthorized), errors.Is(err, auth.ErrForbidden), errors.Is(err, ErrProtected):
		return disconnectUnauthorized
	}
	return disconnectClosed
}

// closeEvent is the JSON of a close event: {"reason":"..."}.
func (d disconnect) closeEvent() []byte { return []byte(`{"reason":"` + d.reason + `"}`) }
