package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// DefaultLockTTL is the server's lock TTL when none is asked for.
const DefaultLockTTL = 60 * time.Minute

// releaseTimeout bounds WithLock's release once the function has returned (its context may be
// done by then).
const releaseTimeout = 30 * time.Second

// minLockRetry is the least time between two requests of a waiting Lock.
const minLockRetry = 100 * time.Millisecond

// LockOptions shape a lock acquisition.
type LockOptions struct {
	TTL   time.Duration // how long the lock lasts unless renewed; 0: DefaultLockTTL
	Owner string        // a label for whoever finds the lock held (a job URL, user@host); at most 256 bytes
	// Wait is how long to wait for a held lock; 0 fails at once with ErrLocked. The server caps
	// one request's wait (-max-lock-wait, 60 s by default): a longer Wait asks again until it runs
	// out.
	Wait time.Duration
}

// Lock is a held lock. Its methods are not safe for concurrent use.
type Lock struct {
	Key     string
	Token   string    // the secret that renews and releases it
	Fence   uint64    // the acquisition's seq: larger for every later holder of any lock
	Expires time.Time // the server's expiry, as of the last acquisition or renewal
	Owner   string

	c *Client
	// deadline is the expiry by this machine's clock: the TTL from when the request that set it
	// was sent, so never later than the server's.
	deadline time.Time
}

type lockAnswer struct {
	Key     string `json:"key"`
	Token   string `json:"token"`
	Fence   uint64 `json:"fence"`
	Expires string `json:"expires"`
	Owner   string `json:"owner"`
}

func (l *Lock) set(a lockAnswer, sent time.Time, ttl time.Duration) {
	l.Key, l.Token, l.Fence, l.Owner = a.Key, a.Token, a.Fence, a.Owner
	l.Expires, _ = time.Parse(time.RFC3339Nano, a.Expires)
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	l.deadline = sent.Add(ttl)
}

// Lock acquires the lock on key, waiting up to opts.Wait for a holder to release it. A lock still
// held when the wait runs out is ErrLocked, whose *Error names the holder (Owner) and its expiry.
// A key holding a plain value is ErrNotLock.
func (c *Client) Lock(ctx context.Context, key string, opts LockOptions) (*Lock, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		q := query{}.flag("lock")
		if opts.TTL > 0 {
			q = q.add("ttl", opts.TTL.String())
		}
		if opts.Owner != "" {
			q = q.add("owner", opts.Owner)
		}
		wait := time.Until(deadline)
		if opts.Wait > 0 && wait > 0 {
			q = q.add("wait", wait.Round(time.Millisecond).String())
		}
		sent := time.Now()
		var a lockAnswer
		_, err := c.doJSON(ctx, request{method: http.MethodPost, path: key, query: q}, &a)
		if err == nil {
			l := &Lock{c: c}
			l.set(a, sent, opts.TTL)
			return l, nil
		}
		if !errors.Is(err, ErrLocked) || opts.Wait <= 0 || time.Until(deadline) <= 0 {
			return nil, err
		}
		// A server that waited much less than asked (a -max-lock-wait near 0) is not asked in a
		// busy loop.
		if pause := minLockRetry - time.Since(sent); pause > 0 {
			if err := sleep(ctx, pause); err != nil {
				return nil, err
			}
		}
	}
}

// Renew extends the lock to ttl from now (0: DefaultLockTTL). A lock that is gone (released,
// expired, or its key deleted) is ErrNotFound; one taken over since is ErrLockToken.
func (l *Lock) Renew(ctx context.Context, ttl time.Duration) error {
	q := query{}.flag("lock").flag("renew")
	if ttl > 0 {
		q = q.add("ttl", ttl.String())
	}
	sent := time.Now()
	var a lockAnswer
	_, err := l.c.doJSON(ctx, request{method: http.MethodPost, path: l.Key, query: q, header: http.Header{"X-Lock-Token": {l.Token}}}, &a)
	if err != nil {
		return err
	}
	l.set(a, sent, ttl)
	return nil
}

// Release releases the lock: its key is deleted, with a delete event. Errors as Renew.
func (l *Lock) Release(ctx context.Context) error {
	_, err := l.c.do(ctx, request{method: http.MethodDelete, path: l.Key, query: query{}.flag("lock"), header: http.Header{"X-Lock-Token": {l.Token}}})
	return err
}

// WithLock runs fn while holding the lock on key: it acquires it as Lock does, renews it every
// third of its TTL while fn runs, and releases it when fn returns, whatever fn returns. fn gets
// the lock's fence, to pass on to whatever it writes to (which can refuse a fence smaller than
// one it has seen). If the lock is lost while fn runs (a renewal finds it gone or taken over, or
// fails until the TTL has passed), fn's context is cancelled with a cause that wraps ErrLockLost,
// and WithLock's error wraps it too. Otherwise WithLock returns fn's error, joined with a
// release's failure.
func (c *Client) WithLock(ctx context.Context, key string, opts LockOptions, fn func(ctx context.Context, fence uint64) error) error {
	l, err := c.Lock(ctx, key, opts)
	if err != nil {
		return err
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	fctx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	kctx, stop := context.WithCancel(fctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		l.keepAlive(kctx, ttl, lose)
	}()
	err = fn(fctx, l.Fence)
	cause := context.Cause(fctx) // read before the renewals stop: a loss after fn returned is none
	stop()
	<-kept
	if errors.Is(cause, ErrLockLost) {
		if errors.Is(err, ErrLockLost) {
			return err
		}
		return errors.Join(err, cause)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if rerr := l.Release(rctx); rerr != nil && !errors.Is(rerr, ErrNotFound) {
		err = errors.Join(err, fmt.Errorf("client: releasing the lock on %s: %w", l.Key, rerr))
	}
	return err
}

// keepAlive renews l every third of ttl until ctx ends. A renewal that finds the lock gone or
// taken over, or failures until the lock's deadline has passed, call lost with ErrLockLost.
func (l *Lock) keepAlive(ctx context.Context, ttl time.Duration, lost context.CancelCauseFunc) {
	every := ttl / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.Renew(ctx, ttl)
		switch {
		case err == nil:
			t.Reset(every)
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrLockToken), errors.Is(err, ErrNotLock):
			lost(fmt.Errorf("%w: %s: %w", ErrLockLost, l.Key, err))
			return
		default: // the server or the network failed: try again while the lock lasts
			left := time.Until(l.deadline)
			if left <= 0 {
				lost(fmt.Errorf("%w: %s: not renewed before it expired: %w", ErrLockLost, l.Key, err))
				return
			}
			l.c.log.Info("statehub: renewing a lock failed; trying again", "key", l.Key, "err", err)
			t.Reset(min(time.Second, left))
		}
	}
}
