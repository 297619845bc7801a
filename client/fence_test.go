package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// TestFenced: a write made with a lock's fence holds while that lock is held with it, and fails
// with ErrFenceStale, changing nothing, once the lock was released or taken again.
func TestFenced(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	const lockKey, key = "/locks/release", "/release/current"

	l, err := c.Lock(ctx, lockKey, client.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, key, "v1", l.Fenced()); err != nil {
		t.Fatalf("Set with the held lock's fence: %v", err)
	}
	if _, err := c.Update(ctx, key, func(json.RawMessage) (any, error) { return "v2", nil }, client.Fenced(lockKey, l.Fence)); err != nil {
		t.Fatalf("Update with the held lock's fence: %v", err)
	}
	if _, err := c.PutFile(ctx, "/release/notes", "application/octet-stream", strings.NewReader("notes"), l.Fenced()); err != nil {
		t.Fatalf("PutFile with the held lock's fence: %v", err)
	}
	if _, err := c.Delete(ctx, "/release/notes", l.Fenced()); err != nil {
		t.Fatalf("Delete with the held lock's fence: %v", err)
	}
	// A fence other than the lock's.
	if _, err := c.Set(ctx, key, "wrong", client.Fenced(lockKey, l.Fence+1)); !errors.Is(err, client.ErrFenceStale) {
		t.Fatalf("Set with another fence: %v, want ErrFenceStale", err)
	}

	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	next, err := c.Lock(ctx, lockKey, client.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stale := func(what string, err error) {
		t.Helper()
		var e *client.Error
		if !errors.Is(err, client.ErrFenceStale) || !errors.As(err, &e) || e.Status != 409 || e.Key != lockKey {
			t.Fatalf("%s after the lock moved on: %#v, want a 409 ErrFenceStale naming %s", what, err, lockKey)
		}
	}
	_, err = c.Set(ctx, key, "late", l.Fenced())
	stale("Set", err)
	_, err = c.Update(ctx, key, func(json.RawMessage) (any, error) { return "late", nil }, l.Fenced())
	stale("Update", err)
	_, err = c.Delete(ctx, key, l.Fenced())
	stale("Delete", err)
	_, err = c.PutFile(ctx, key, "application/octet-stream", strings.NewReader("late"), l.Fenced())
	stale("PutFile", err)
	if e, err := c.Get(ctx, key); err != nil || string(e.Value) != `"v2"` {
		t.Fatalf("after the stale writes: %s, %v; want \"v2\"", e.Value, err)
	}
	if _, err := c.Set(ctx, key, "v3", next.Fenced()); err != nil {
		t.Fatalf("Set with the next holder's fence: %v", err)
	}
}

// TestFencedOptionErrors: Fenced is refused by writes that take no fence, and needs a fence and
// a lock key; nothing is sent.
func TestFencedOptionErrors(t *testing.T) {
	seen := 0
	url := serveWrapped(t, hub.New(hub.Config{Logger: quiet}), web.Config{}, func(*http.Request) { seen++ })
	c := newClient(t, url)
	ctx := testContext(t)
	if _, err := c.Incr(ctx, "/n", 1, client.Fenced("/locks/a", 3)); err == nil || !strings.Contains(err.Error(), "Incr takes no Fenced") {
		t.Fatalf("Incr with Fenced: %v", err)
	}
	if _, _, err := c.DeleteTree(ctx, "/d/", client.Fenced("/locks/a", 3)); err == nil || !strings.Contains(err.Error(), "DeleteTree takes no Fenced") {
		t.Fatalf("DeleteTree with Fenced: %v", err)
	}
	if _, err := c.Set(ctx, "/k", 1, client.Fenced("/locks/a", 0)); err == nil || !strings.Contains(err.Error(), "fence") {
		t.Fatalf("Fenced with fence 0: %v", err)
	}
	if _, err := c.Set(ctx, "/k", 1, client.Fenced("/locks/", 3)); !errors.Is(err, client.ErrNotKey) {
		t.Fatalf("Fenced with a prefix: %v", err)
	}
	if seen != 0 {
		t.Fatalf("%d requests sent", seen)
	}
}
