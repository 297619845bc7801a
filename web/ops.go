package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// The operation layer: every operation of the key API exists once, here, for HTTP and the
// WebSocket alike. Each takes the caller's resolved principal and a typed request, authorizes it
// (permit, the one place), validates it, calls the hub and returns the hub's answer. The
// transports only decode their requests into these types and encode the answers; errors reach
// both through classify.

// setRequest is a set, a compare-and-swap (Cond.NextRevision) or a conditional write (the
// other Cond fields). An ephemeral write carries its connection's session in Options.Session.
type setRequest struct {
	Key     string
	Value   io.Reader // the JSON as sent, read only once the write is authorized
	Cond    hub.Cond
	Options hub.WriteOptions
}

// lockRequest acquires a lock; Wait is capped at Config.MaxLockWait.
type lockRequest struct {
	Key     string
	Options hub.LockOptions
}

// permit checks that p may do op on path: the path is valid, p's token has not expired, and its
// grants allow it. Every operation calls it before it touches the hub.
func (s *Server) permit(p *auth.Principal, op auth.Op, path string) error {
	if err := s.hub.Limits().CheckPath(path); err != nil {
		return err
	}
	if !p.Expires().IsZero() && s.cfg.Clock.Now().After(p.Expires()) {
		return fmt.Errorf("%w: the token has expired; reconnect with a fresh one", auth.ErrUnauthorized)
	}
	return p.Allow(op, path)
}

func (s *Server) opGet(p *auth.Principal, key string) (hub.Entry, error) {
	if err := s.permit(p, auth.Read, key); err != nil {
		return hub.Entry{}, err
	}
	return s.hub.Get(key)
}

func (s *Server) opSet(p *auth.Principal, r setRequest) (hub.Result, error) {
	if err := s.permit(p, auth.Write, r.Key); err != nil {
		return hub.Result{}, err
	}
	value, err := s.readValue(r.Value)
	if err != nil {
		return hub.Result{}, err
	}
	return s.hub.Set(r.Key, value, r.Cond, r.Options)
}

// readValue reads one JSON value within the limits and compacts it.
func (s *Server) readValue(r io.Reader) ([]byte, error) {
	limit := s.hub.Limits().MaxValueBytes
	body, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	var tooBig *http.MaxBytesError
	switch {
	case len(body) > limit || errors.As(err, &tooBig):
		return nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", "the value is larger than " + strconv.Itoa(limit) + " bytes"}
	case err != nil:
		return nil, badRequest("bad_body", "reading the body: "+err.Error())
	case len(body) == 0:
		return nil, badRequest("invalid_json", "a write needs a value")
	}
	return s.hub.Limits().CompactJSON(body)
}

// opSetFile stores body as a file of content type ct (HTTP only: a WebSocket carries JSON).
func (s *Server) opSetFile(p *auth.Principal, key, ct string, body io.Reader, cond hub.Cond, opt hub.WriteOptions) (hub.Result, error) {
	if err := s.permit(p, auth.Write, key); err != nil {
		return hub.Result{}, err
	}
	return s.hub.SetFile(key, ct, body, cond, opt)
}

func (s *Server) opIncr(p *auth.Principal, key string, by int64, opt hub.WriteOptions) (hub.Result, error) {
	if err := s.permit(p, auth.Incr, key); err != nil {
		return hub.Result{}, err
	}
	return s.hub.Incr(key, by, opt)
}

// opDelete deletes a key (if cond holds) or, for a path ending in "/", a whole subtree.
func (s *Server) opDelete(p *auth.Principal, path string, cond hub.Cond, opt hub.WriteOptions) (hub.Result, error) {
	if err := s.permit(p, auth.Write, path); err != nil {
		return hub.Result{}, err
	}
	if hub.IsPrefix(path) {
		return s.hub.DeletePrefix(path, opt)
	}
	return s.hub.Delete(path, cond, opt)
}

func (s *Server) opList(p *auth.Principal, prefix string, opt hub.ListOptions) (hub.Page, error) {
	if err := s.permit(p, auth.Read, prefix); err != nil {
		return hub.Page{}, err
	}
	if opt.Limit < 0 {
		return hub.Page{}, badRequest("invalid_limit", "limit must be a positive integer")
	}
	return s.hub.List(prefix, opt)
}

// opLock acquires a lock, waiting at most r.Options.Wait (capped) for it; ctx ends the wait.
func (s *Server) opLock(ctx context.Context, p *auth.Principal, r lockRequest) (hub.Lock, error) {
	if err := s.permit(p, auth.Lock, r.Key); err != nil {
		return hub.Lock{}, err
	}
	r.Options.Wait = min(r.Options.Wait, s.cfg.MaxLockWait)
	return s.hub.Lock(ctx, r.Key, r.Options)
}

func (s *Server) opRenew(p *auth.Principal, key, token string, ttl time.Duration) (hub.Lock, error) {
	if err := s.permit(p, auth.Lock, key); err != nil {
		return hub.Lock{}, err
	}
	if token == "" {
		return hub.Lock{}, errLockTokenRequired
	}
	return s.hub.RenewLock(key, token, ttl)
}

func (s *Server) opUnlock(p *auth.Principal, key, token string) (hub.Result, error) {
	if err := s.permit(p, auth.Lock, key); err != nil {
		return hub.Result{}, err
	}
	if token == "" {
		return hub.Result{}, errLockTokenRequired
	}
	return s.hub.Unlock(key, token)
}

// opTx runs a transaction: read on every checked key, write (incr for an increment) on every
// key it changes. A transaction takes no TTL.
func (s *Server) opTx(p *auth.Principal, req TxRequest, opt hub.WriteOptions) (hub.TxResult, error) {
	checks, ops, err := req.compile(s.hub.Limits())
	if err != nil {
		return hub.TxResult{}, err
	}
	for _, ch := range checks {
		if err := s.permit(p, auth.Read, ch.Key); err != nil {
			return hub.TxResult{}, err
		}
	}
	for _, op := range ops {
		need := auth.Write
		if op.Op == hub.TxIncr {
			need = auth.Incr
		}
		if err := s.permit(p, need, op.Key); err != nil {
			return hub.TxResult{}, err
		}
	}
	if opt.TTL != 0 {
		return hub.TxResult{}, badRequest("invalid_tx", "a transaction takes no ttl")
	}
	return s.hub.Tx(checks, ops, opt)
}

// opHistory reads a page of key's retained past values, newest first: changes below the seq
// cursor names ("": from the newest), at most limit (0: the default).
func (s *Server) opHistory(p *auth.Principal, key, cursor string, limit int) (hub.HistoryPage, error) {
	if err := s.permit(p, auth.Read, key); err != nil {
		return hub.HistoryPage{}, err
	}
	if hub.IsPrefix(key) {
		return hub.HistoryPage{}, badRequest("invalid_key", "a history read needs a key, not a prefix")
	}
	var before uint64
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil || n == 0 {
			return hub.HistoryPage{}, hub.ErrInvalidCursor
		}
		before = n
	}
	return s.hub.History(key, before, limit)
}

// broadcastRequest sends Msg, a JSON document, to the current subscribers of Path (a key or a
// prefix). Allow spends one of the sender's broadcast tokens (Limits.BroadcastRate): its
// connection's over the WebSocket, its token's or address's over HTTP; nil when unlimited.
type broadcastRequest struct {
	Path  string
	Msg   io.Reader
	Allow func(now time.Time) (wait time.Duration, ok bool)
}

// opBroadcast authorizes (broadcast, which write implies), spends a token of the sender's rate,
// reads the message within Limits.MaxBroadcastBytes and hands it to the hub, which checks it as a
// value and delivers it, never storing it.
func (s *Server) opBroadcast(p *auth.Principal, r broadcastRequest) error {
	if err := s.permit(p, auth.Broadcast, r.Path); err != nil {
		return err
	}
	if r.Allow != nil {
		if wait, ok := r.Allow(s.cfg.Clock.Now()); !ok {
			s.metrics.limited.WithLabelValues("broadcast").Inc()
			return errBroadcastRate(wait)
		}
	}
	limit := s.hub.Limits().MaxBroadcastBytes
	msg, err := io.ReadAll(io.LimitReader(r.Msg, int64(limit)+1))
	var tooBig *http.MaxBytesError
	switch {
	case len(msg) > limit || errors.As(err, &tooBig):
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", "a broadcast message is at most " + strconv.Itoa(limit) + " bytes"}
	case err != nil:
		return badRequest("bad_body", "reading the body: "+err.Error())
	case len(msg) == 0:
		return badRequest("invalid_json", "a broadcast needs a message: a JSON document")
	}
	if err := s.hub.Broadcast(r.Path, msg); err != nil {
		return err
	}
	s.metrics.broadcasts.Inc()
	return nil
}

// opSubscribe starts a subscription of path (SSE streams and WebSocket subs).
func (s *Server) opSubscribe(p *auth.Principal, path string, opt hub.SubscribeOptions) (*hub.Subscription, error) {
	if err := s.permit(p, auth.Read, path); err != nil {
		return nil, err
	}
	return s.hub.Subscribe(path, opt)
}

// Shared decoding of option values, the same words over HTTP and the WebSocket.

// MaxTTL bounds a ttl: longer than this is almost certainly a mistake in units.
const MaxTTL = 100 * 365 * 24 * time.Hour

func parseTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > MaxTTL {
		return 0, badRequest("invalid_ttl", "ttl must be a positive duration such as 30s, 15m or 24h, got "+strconv.Quote(v))
	}
	return d, nil
}

// parseWait reads a lock request's wait.
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, badRequest("invalid_wait", "wait must be a duration such as 10s, got "+strconv.Quote(v))
	}
	return d, nil
}

// checkIdempotencyKey bounds an Idempotency-Key (the WebSocket's idem).
func checkIdempotencyKey(k string) error {
	if len(k) > 255 {
		return badRequest("invalid_idempotency_key", "Idempotency-Key is longer than 255 bytes")
	}
	return nil
}

var errLockTokenRequired = badRequest("lock_token_required", "renewing or releasing a lock needs its token (the header "+hdrLockToken+", or token on the WebSocket)")
