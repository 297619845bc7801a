package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

func TestLock(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)

	l, err := c.Lock(ctx, "/deploy/prod", client.LockOptions{TTL: 10 * time.Minute, Owner: "ann@ci"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Key != "/deploy/prod" || l.Token == "" || l.Fence == 0 || l.Owner != "ann@ci" || time.Until(l.Expires) <= 0 {
		t.Fatalf("Lock: %+v", l)
	}
	// Held: the error names the holder.
	_, err = c.Lock(ctx, "/deploy/prod", client.LockOptions{Owner: "bob"})
	var e *client.Error
	if !errors.Is(err, client.ErrLocked) || !errors.As(err, &e) || e.Owner != "ann@ci" || !e.Expires.Equal(l.Expires) || e.Key != "/deploy/prod" {
		t.Fatalf("a held lock: %#v", err)
	}
	// The lock's key is visible, and refuses other writes.
	if got, err := c.Get(ctx, "/deploy/prod"); err != nil || !strings.Contains(string(got.Value), `"owner":"ann@ci"`) {
		t.Fatalf("the lock's value: %s, %v", got.Value, err)
	}
	if _, err := c.Set(ctx, "/deploy/prod", 1); !errors.Is(err, client.ErrLocked) {
		t.Fatalf("a set of a held lock: %v", err)
	}

	before := l.Expires
	fence := l.Fence
	if err := l.Renew(ctx, 20*time.Minute); err != nil || !l.Expires.After(before) || l.Fence != fence {
		t.Fatalf("Renew: %+v, %v", l, err)
	}
	wrong := *l
	wrong.Token = "AAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := wrong.Renew(ctx, 0); !errors.Is(err, client.ErrLockToken) {
		t.Fatalf("a renewal with another token: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a second release: %v", err)
	}
	l2, err := c.Lock(ctx, "/deploy/prod", client.LockOptions{})
	if err != nil || l2.Fence <= fence {
		t.Fatalf("the next lock: %+v, %v; want a fence above %d", l2, err, fence)
	}
	c.Set(ctx, "/plain", 1)
	if _, err := c.Lock(ctx, "/plain", client.LockOptions{}); !errors.Is(err, client.ErrNotLock) {
		t.Fatalf("a lock on a plain value: %v", err)
	}
}

// TestLockWaitsPastTheServersCap: a Wait longer than the server's -max-lock-wait asks again; here
// the holder releases once the waiter has asked twice.
func TestLockWaitsPastTheServersCap(t *testing.T) {
	h := hub.New(hub.Config{Logger: quiet})
	asked := make(chan struct{}, 100)
	ts := serveWrapped(t, h, web.Config{MaxLockWait: 50 * time.Millisecond}, func(r *http.Request) {
		if r.URL.Query().Has("lock") && r.URL.Query().Has("wait") {
			asked <- struct{}{}
		}
	})
	c := newClient(t, ts)
	ctx := testContext(t)
	held, err := c.Lock(ctx, "/deploy/prod", client.LockOptions{Owner: "first"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   *client.Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := c.Lock(ctx, "/deploy/prod", client.LockOptions{Owner: "second", Wait: time.Hour})
		got <- result{l, err}
	}()
	<-asked
	<-asked
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.l.Owner != "second" || r.l.Fence <= held.Fence {
		t.Fatalf("the waiter: %+v, %v", r.l, r.err)
	}
}

// TestLockWaitRunsOut: a Wait that runs out is ErrLocked.
func TestLockWaitRunsOut(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{MaxLockWait: 10 * time.Millisecond})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	if _, err := c.Lock(ctx, "/k", client.LockOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(ctx, "/k", client.LockOptions{Wait: 30 * time.Millisecond}); !errors.Is(err, client.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
}

// TestWithLockRenews: while the function runs, the lock is renewed (each renewal is a change of
// its key, seen here by a watch); afterwards it is released.
func TestWithLockRenews(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	var sawFence uint64
	err := c.WithLock(ctx, "/deploy/prod", client.LockOptions{TTL: 300 * time.Millisecond, Owner: "job"}, func(ctx context.Context, fence uint64) error {
		sawFence = fence
		for ev, err := range c.Watch(ctx, "/deploy/prod", client.WatchOptions{}) {
			if err != nil {
				return err
			}
			if ev.Type == client.EventSet && ev.Revision >= 2 { // renewed twice
				return nil
			}
		}
		return nil
	})
	if err != nil || sawFence == 0 {
		t.Fatalf("WithLock: %v (fence %d)", err, sawFence)
	}
	if _, err := c.Get(ctx, "/deploy/prod"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after WithLock the lock is %v, want released", err)
	}
}

// TestWithLockLost: a lock taken away while the function runs (here its subtree is deleted)
// cancels the function's context with ErrLockLost, and WithLock says so.
func TestWithLockLost(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	err := c.WithLock(ctx, "/deploy/prod", client.LockOptions{TTL: 300 * time.Millisecond}, func(ctx context.Context, fence uint64) error {
		if _, _, err := c.DeleteTree(ctx, "/deploy/"); err != nil {
			return err
		}
		<-ctx.Done()
		if cause := context.Cause(ctx); !errors.Is(cause, client.ErrLockLost) {
			t.Errorf("the function's context ended with %v, want ErrLockLost", cause)
		}
		return ctx.Err()
	})
	if !errors.Is(err, client.ErrLockLost) || !errors.Is(err, context.Canceled) {
		t.Fatalf("WithLock: %v, want ErrLockLost and the function's error", err)
	}
}

// TestWithLockReleasesAfterAnError: the function's error comes back, and the lock is free.
func TestWithLockReleasesAfterAnError(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	failed := errors.New("deploy failed")
	if err := c.WithLock(ctx, "/deploy/prod", client.LockOptions{}, func(context.Context, uint64) error { return failed }); err != failed {
		t.Fatalf("WithLock: %v, want the function's error", err)
	}
	if _, err := c.Get(ctx, "/deploy/prod"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the lock after a failed function: %v, want released", err)
	}

	// A held lock: the function does not run.
	held, _ := c.Lock(ctx, "/deploy/prod", client.LockOptions{})
	var ran atomic.Bool
	err := c.WithLock(ctx, "/deploy/prod", client.LockOptions{}, func(context.Context, uint64) error { ran.Store(true); return nil })
	if !errors.Is(err, client.ErrLocked) || ran.Load() {
		t.Fatalf("WithLock of a held lock: %v (ran: %v)", err, ran.Load())
	}
	held.Release(ctx)
}
