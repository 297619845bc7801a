package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

func lockState(t *testing.T, h *hub.Hub, key string) hub.LockState {
	t.Helper()
	e, err := h.Get(key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	if !e.Locked() {
		t.Fatalf("%s is not a lock: %s", key, e.Value)
	}
	var st hub.LockState
	if err := json.Unmarshal(e.Value, &st); err != nil {
		t.Fatalf("lock value %s: %v", e.Value, err)
	}
	return st
}

func TestLockLifecycle(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		clock := fakeclock.New(t0)
		h := mk(hub.Config{Clock: clock})
		ctx := context.Background()
		set(t, h, "/plain", `1`)
		if _, err := h.Lock(ctx, "/plain", hub.LockOptions{}); !errors.Is(err, hub.ErrNotLock) {
			t.Fatalf("locking a plain value: %v, want ErrNotLock", err)
		}
		lk, err := h.Lock(ctx, "/deploy", hub.LockOptions{TTL: 30 * time.Second, Owner: "ci-1"})
		if err != nil {
			t.Fatal(err)
		}
		if lk.Token == "" || lk.Fence != h.Seq() || lk.Owner != "ci-1" || !lk.Expires.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("lock %+v at seq %d", lk, h.Seq())
		}
		e, _ := h.Get("/deploy")
		if strings.Contains(string(e.Value), lk.Token) || strings.Contains(string(e.Value), "token") {
			t.Fatalf("the lock's value %s shows its token", e.Value)
		}
		if st := lockState(t, h, "/deploy"); st.Owner != "ci-1" || st.Fence != lk.Fence || !st.Expires.Equal(lk.Expires) {
			t.Fatalf("state %+v, lock %+v", st, lk)
		}

		_, err = h.Lock(ctx, "/deploy", hub.LockOptions{Owner: "ci-2"})
		var le *hub.LockedError
		if !errors.As(err, &le) || le.Owner != "ci-1" || !le.Expires.Equal(lk.Expires) {
			t.Fatalf("second Lock: %v, want LockedError by ci-1", err)
		}
		for name, write := range map[string]func() error{
			"set":    func() error { _, err := h.Set("/deploy", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); return err },
			"incr":   func() error { _, err := h.Incr("/deploy", 1, hub.WriteOptions{}); return err },
			"delete": func() error { _, err := h.Delete("/deploy", hub.Cond{}, hub.WriteOptions{}); return err },
		} {
			if err := write(); !errors.Is(err, hub.ErrLocked) {
				t.Errorf("%s of a held lock: %v, want ErrLocked", name, err)
			}
		}

		if _, err := h.RenewLock("/deploy", "wrong", time.Minute); !errors.Is(err, hub.ErrLockToken) {
			t.Fatalf("renew with a wrong token: %v", err)
		}
		clock.Advance(20 * time.Second)
		rn, err := h.RenewLock("/deploy", lk.Token, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if rn.Fence != lk.Fence || rn.Revision != 1 || !rn.Expires.Equal(t0.Add(80*time.Second)) {
			t.Fatalf("renewed %+v", rn)
		}
		clock.Advance(30 * time.Second) // past the first TTL, within the renewed one
		if st := lockState(t, h, "/deploy"); st.Fence != lk.Fence {
			t.Fatalf("renewed lock lost: %+v", st)
		}
		if _, err := h.Unlock("/deploy", "wrong"); !errors.Is(err, hub.ErrLockToken) {
			t.Fatalf("unlock with a wrong token: %v", err)
		}
		if _, err := h.Unlock("/deploy", lk.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Unlock("/deploy", lk.Token); !errors.Is(err, hub.ErrNotFound) {
			t.Fatalf("second unlock: %v, want ErrNotFound", err)
		}
		lk2, err := h.Lock(ctx, "/deploy", hub.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if lk2.Fence <= lk.Fence || !lk2.Expires.Equal(clock.Now().Add(hub.DefaultLockTTL)) {
			t.Fatalf("re-acquired %+v after %+v", lk2, lk)
		}
	})
}

func TestLockExpiresWithDeleteEvent(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(t0)
	h := newHub(t, hub.Config{Clock: clock})
	lk := must(h.Lock(context.Background(), "/l", hub.LockOptions{TTL: 30 * time.Second}))
	sub := must(h.Subscribe("/l", hub.SubscribeOptions{}))
	clock.Advance(29 * time.Second)
	lockState(t, h, "/l")
	clock.Advance(time.Second)
	if _, err := h.Get("/l"); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("expired lock still there: %v", err)
	}
	if ev, _ := sub.Next(); !ev.Deleted || ev.Key != "/l" {
		t.Fatalf("event %+v, want the delete of /l", ev)
	}
	if _, err := h.RenewLock("/l", lk.Token, 0); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("renewing an expired lock: %v", err)
	}
}

// TestLockMutualExclusion: many clients contend; at most one holds the lock at a time and the
// fences of successive holders strictly increase.
func TestLockMutualExclusion(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{Clock: fakeclock.New(t0)}) // waits never time out
		const clients, rounds = 16, 20
		var holders atomic.Int32
		var mu sync.Mutex
		var fences []uint64
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range rounds {
					lk, err := h.Lock(context.Background(), "/mutex", hub.LockOptions{Wait: time.Hour})
					if err != nil {
						t.Error(err)
						return
					}
					if n := holders.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					mu.Lock()
					fences = append(fences, lk.Fence)
					mu.Unlock()
					holders.Add(-1)
					if _, err := h.Unlock("/mutex", lk.Token); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if len(fences) != clients*rounds {
			t.Fatalf("%d acquisitions, want %d", len(fences), clients*rounds)
		}
		for i := 1; i < len(fences); i++ {
			if fences[i] <= fences[i-1] {
				t.Fatalf("fence %d after %d", fences[i], fences[i-1])
			}
		}
	})
}

// signalClock is a fake clock that reports each timer being armed, so a test knows a waiter has
// started waiting before it moves time.
type signalClock struct {
	*fakeclock.Clock
	armed chan time.Duration
}

func (c signalClock) AfterFunc(d time.Duration, f func()) func() bool {
	stop := c.Clock.AfterFunc(d, f)
	c.armed <- d // buffered far beyond what a test arms
	return stop
}

// awaitArmed returns once a timer of d has been armed.
func (c signalClock) awaitArmed(d time.Duration) {
	for got := range c.armed {
		if got == d {
			return
		}
	}
}

func TestLockWait(t *testing.T) {
	t.Parallel()
	clock := signalClock{fakeclock.New(t0), make(chan time.Duration, 1024)}
	h := newHub(t, hub.Config{Clock: clock})
	lk := must(h.Lock(context.Background(), "/w", hub.LockOptions{TTL: time.Hour, Owner: "a"}))

	// A wait that ends before the lock is free fails with the holder.
	done := make(chan error, 1)
	go func() {
		_, err := h.Lock(context.Background(), "/w", hub.LockOptions{Wait: 10 * time.Second})
		done <- err
	}()
	clock.awaitArmed(10 * time.Second)
	clock.Advance(10 * time.Second)
	var le *hub.LockedError
	if err := <-done; !errors.As(err, &le) || le.Owner != "a" {
		t.Fatalf("timed-out wait: %v", err)
	}

	// A waiter gets the lock when it is released...
	got := make(chan hub.Lock, 1)
	go func() {
		lk, err := h.Lock(context.Background(), "/w", hub.LockOptions{Wait: time.Minute, Owner: "b"})
		if err != nil {
			t.Error(err)
		}
		got <- lk
	}()
	clock.awaitArmed(time.Minute)
	must(h.Unlock("/w", lk.Token))
	lkB := <-got
	if lkB.Owner != "b" || lkB.Fence <= lk.Fence {
		t.Fatalf("waiter got %+v", lkB)
	}

	// ...or when it expires.
	go func() {
		lk, err := h.Lock(context.Background(), "/w", hub.LockOptions{Wait: 2 * time.Hour, Owner: "c"})
		if err != nil {
			t.Error(err)
		}
		got <- lk
	}()
	clock.awaitArmed(2 * time.Hour)
	clock.Advance(time.Hour) // b's lock, taken 10 s in, expires
	if lkC := <-got; lkC.Owner != "c" || lkC.Fence <= lkB.Fence {
		t.Fatalf("waiter got %+v", lkC)
	}

	// A cancelled context ends a wait.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := h.Lock(ctx, "/w", hub.LockOptions{Wait: 3 * time.Hour})
		done <- err
	}()
	clock.awaitArmed(3 * time.Hour)
	cancel()
	if err := <-done; !errors.Is(err, hub.ErrLocked) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// TestLockWaitEndsAtDrain: Drain ends a pending wait with ErrShutdown at once, long before its
// wait runs out, and a wait asked for once the hub drains fails at once.
func TestLockWaitEndsAtDrain(t *testing.T) {
	t.Parallel()
	clock := signalClock{fakeclock.New(t0), make(chan time.Duration, 1024)}
	h := newHub(t, hub.Config{Clock: clock})
	must(h.Lock(context.Background(), "/w", hub.LockOptions{TTL: time.Hour, Owner: "a"}))

	done := make(chan error, 1)
	go func() {
		_, err := h.Lock(context.Background(), "/w", hub.LockOptions{Wait: 30 * time.Minute})
		done <- err
	}()
	clock.awaitArmed(30 * time.Minute)
	h.Drain() // the clock does not move: only the drain can end the wait
	if err := <-done; !errors.Is(err, hub.ErrShutdown) {
		t.Fatalf("wait at drain: %v, want ErrShutdown", err)
	}
	if _, err := h.Lock(context.Background(), "/w", hub.LockOptions{Wait: time.Minute}); !errors.Is(err, hub.ErrShutdown) {
		t.Fatalf("wait after drain: %v, want ErrShutdown", err)
	}
	// A try without a wait still answers who holds the lock.
	if _, err := h.Lock(context.Background(), "/w", hub.LockOptions{}); !errors.Is(err, hub.ErrLocked) {
		t.Fatalf("try after drain: %v, want ErrLocked", err)
	}
}

// TestLockSurvivesRestart: the lock, its fence and its token work after a reopen, with and
// without a snapshot in between.
func TestLockSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, every := range []int{1, 1000} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock := fakeclock.New(t0)
			cfg := hub.Config{Clock: clock, Logger: slog.New(slog.DiscardHandler)}
			sc := hub.StoreConfig{Dir: dir, SnapshotRecords: every}
			h := must(hub.Open(cfg, sc))
			set(t, h, "/other", `1`)
			lk := must(h.Lock(context.Background(), "/l", hub.LockOptions{TTL: time.Hour, Owner: "ci"}))
			set(t, h, "/other", `2`)
			h.Close()

			h = must(hub.Open(cfg, sc))
			defer h.Close()
			if st := lockState(t, h, "/l"); st.Owner != "ci" || st.Fence != lk.Fence {
				t.Fatalf("after restart %+v, want %+v", st, lk)
			}
			if _, err := h.Lock(context.Background(), "/l", hub.LockOptions{}); !errors.Is(err, hub.ErrLocked) {
				t.Fatalf("lock after restart: %v", err)
			}
			if _, err := h.RenewLock("/l", "wrong", 0); !errors.Is(err, hub.ErrLockToken) {
				t.Fatalf("wrong token after restart: %v", err)
			}
			if _, err := h.RenewLock("/l", lk.Token, time.Hour); err != nil {
				t.Fatalf("renew after restart: %v", err)
			}
			if _, err := h.Unlock("/l", lk.Token); err != nil {
				t.Fatalf("unlock after restart: %v", err)
			}
			lk2 := must(h.Lock(context.Background(), "/l", hub.LockOptions{}))
			if lk2.Fence <= lk.Fence {
				t.Fatalf("fence %d after restart, was %d", lk2.Fence, lk.Fence)
			}
			sub := must(h.Subscribe("/l", hub.SubscribeOptions{Snapshot: true}))
			defer sub.Close()
			for _, e := range sub.TestInitial() {
				if strings.Contains(string(e.Value), lk2.Token) {
					t.Fatalf("snapshot event shows the token: %s", e.Value)
				}
			}
		})
	}
}
