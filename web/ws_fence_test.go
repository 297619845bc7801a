package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
)

// TestWSFence: set, cas and delete take fence and fence_lock, as If-Fence over HTTP.
func TestWSFence(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	lk, err := ts.h.Lock(context.Background(), "/locks/job", hub.LockOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t)
	if a := c.call(m{"op": "set", "key": "/job/s", "value": 1, "fence": lk.Fence, "fence_lock": "/locks/job"}); !a.OK {
		t.Fatalf("fenced set: %s", a.raw)
	}
	if a := c.call(m{"op": "cas", "key": "/job/s", "value": 2, "revision": 1, "fence": lk.Fence, "fence_lock": "/locks/job"}); !a.OK {
		t.Fatalf("fenced cas: %s", a.raw)
	}
	if a := c.call(m{"op": "set", "key": "/job/s", "value": 3, "fence": lk.Fence + 1, "fence_lock": "/locks/job"}); a.OK || a.Status != http.StatusConflict || a.Code != "fence_stale" {
		t.Fatalf("a stale fence: %s, want 409 fence_stale", a.raw)
	}
	for _, req := range []m{
		{"op": "set", "key": "/job/s", "value": 3, "fence": lk.Fence},
		{"op": "incr", "key": "/job/n", "fence": lk.Fence, "fence_lock": "/locks/job"},
		{"op": "delete", "path": "/job/", "fence": lk.Fence, "fence_lock": "/locks/job"},
		{"op": "tx", "ops": []m{{"op": "set", "key": "/job/t", "value": 1}}, "fence": lk.Fence, "fence_lock": "/locks/job"},
		{"op": "tx", "ops": []m{{"op": "set", "key": "/job/t", "value": 1}}, "fence_lock": "/locks/job"},
	} {
		if a := c.call(req); a.OK || a.Code != "invalid_fence" {
			t.Fatalf("%v: %s, want invalid_fence", req, a.raw)
		}
	}
	if _, err := ts.h.Unlock("/locks/job", lk.Token); err != nil {
		t.Fatal(err)
	}
	if a := c.call(m{"op": "delete", "key": "/job/s", "fence": lk.Fence, "fence_lock": "/locks/job"}); a.OK || a.Code != "fence_stale" {
		t.Fatalf("a delete after the release: %s, want fence_stale", a.raw)
	}
	if a := c.call(m{"op": "get", "key": "/job/s"}); !a.OK || string(a.Value) != "2" {
		t.Fatalf("get: %s, want 2", a.raw)
	}
}
