package web_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestFenceHTTP: If-Fence makes a write hold only while the named lock is held with that fence.
func TestFenceHTTP(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{})

	la := lockAnswer(t, ts.must(t, "POST", "/locks/deploy?lock&ttl=1m", ""))
	fence := strconv.FormatUint(la.Fence, 10) + "; lock=/locks/deploy"
	ts.must(t, "PUT", "/deploy/state", `"v1"`, "If-Fence", fence)
	ts.must(t, "POST", "/deploy/state", `"v2"`, "If-Fence", fence)
	for _, s := range []step{
		fail("PUT", "/deploy/state", `"x"`, http.StatusBadRequest, "invalid_fence", "If-Fence", "soon; lock=/locks/deploy"),
		fail("PUT", "/deploy/state", `"x"`, http.StatusBadRequest, "invalid_fence", "If-Fence", strconv.FormatUint(la.Fence, 10)),
		fail("DELETE", "/deploy/", "", http.StatusBadRequest, "invalid_fence", "If-Fence", fence),
		fail("POST", "/deploy/n?incr", "", http.StatusBadRequest, "invalid_fence", "If-Fence", fence),
		fail("POST", "/.tx", `{"ops":[{"op":"set","key":"/deploy/t","value":1}]}`, http.StatusBadRequest, "invalid_fence", "If-Fence", fence),
		fail("PUT", "/deploy/state", `"x"`, http.StatusConflict, "fence_stale", "If-Fence", strconv.FormatUint(la.Fence+1, 10)+"; lock=/locks/deploy"),
	} {
		s.run(t, ts)
	}
	ts.must(t, "DELETE", "/locks/deploy?lock", "", "X-Lock-Token", la.Token)
	r := ts.do(t, "PUT", "/deploy/state", `"late"`, "If-Fence", fence)
	if eb := errorBody(t, r); r.status != http.StatusConflict || eb.Code != "fence_stale" || eb.Key != "/locks/deploy" {
		t.Fatalf("a write after the release: %d %s, want 409 fence_stale naming the lock", r.status, r.body)
	}
	fail("DELETE", "/deploy/state", "", http.StatusConflict, "fence_stale", "If-Fence", fence).run(t, ts)
	if r := ts.must(t, "GET", "/deploy/state", ""); r.body != `"v2"` {
		t.Fatalf("/deploy/state = %s, want the last fenced write", r.body)
	}
	// Expired.
	la2 := lockAnswer(t, ts.must(t, "POST", "/locks/deploy?lock&ttl=1m", ""))
	fence2 := strconv.FormatUint(la2.Fence, 10) + "; lock=/locks/deploy"
	ts.must(t, "DELETE", "/deploy/state", "", "If-Fence", fence2)
	clock.Advance(time.Minute)
	fail("PUT", "/deploy/state", `"x"`, http.StatusConflict, "fence_stale", "If-Fence", fence2).run(t, ts)
}
