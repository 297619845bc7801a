package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// Broadcast (PROTOCOL.md, "Broadcast"): POST /path?broadcast and the WebSocket's broadcast op send
// a JSON message to the current subscribers of path and of the prefixes above it, never stored.
// The operation is opBroadcast (ops.go); this file holds its HTTP face, its rate limit's error and
// the encoding of a broadcast in a stream: an SSE event "broadcast" without an id, so it never
// moves Last-Event-ID, and a WebSocket event of type "broadcast" without a seq.

// broadcastAnswer is the answer to an accepted broadcast: it has reached this node's subscribers'
// queues; in a cluster, other nodes' subscribers get it through etcd a moment later.
var broadcastAnswer = []byte(`{"ok":true}`)

// broadcast serves POST /path?broadcast. The rate limit counts per token (issuer and subject),
// else per client IP.
func (s *Server) broadcast(c echo.Context, path string) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	sender := "ip " + c.RealIP()
	if k := p.RateKey(); k != "" {
		sender = "token " + k
	}
	err = s.opBroadcast(p, broadcastRequest{Path: path, Msg: c.Request().Body, Allow: func(now time.Time) (time.Duration, bool) {
		return s.limits.broadcast.take(sender, now)
	}})
	var re *retryError
	if errors.As(err, &re) {
		c.Response().Header().Set("Retry-After", strconv.FormatInt(re.seconds(), 10))
	}
	if err != nil {
		return err
	}
	return writeStoredJSON(c, http.StatusAccepted, broadcastAnswer)
}

// retryError is a refusal by a rate limit (ErrRateLimited, 429) that the client may retry after
// wait: Retry-After over HTTP, the message over the WebSocket.
type retryError struct {
	err  error
	wait time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// seconds is the wait in whole seconds, at least 1.
func (e *retryError) seconds() int64 { return max(1, int64(math.Ceil(e.wait.Seconds()))) }

// errBroadcastRate refuses a broadcast over the sender's rate.
func errBroadcastRate(wait time.Duration) error {
	re := &retryError{wait: wait}
	re.err = fmt.Errorf("%w: over the broadcast rate limit; retry after %d s", ErrRateLimited, re.seconds())
	return re
}

// appendBroadcastData encodes a broadcast as {"path","msg"}: the data of its SSE event.
func appendBroadcastData(b []byte, e *hub.Event) []byte {
	b = append(b, `{"path":`...)
	b = appendJSONString(b, e.Key)
	b = append(b, `,"msg":`...)
	b = append(b, e.Value...)
	return append(b, '}')
}

// appendWSBroadcast encodes a broadcast after the "sub" field of a subscription's event.
func appendWSBroadcast(b []byte, e *hub.Event) []byte {
	b = append(b, `,"type":"broadcast","path":`...)
	b = appendJSONString(b, e.Key)
	b = append(b, `,"msg":`...)
	b = append(b, e.Value...)
	return append(b, '}')
}
