package cli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
)

// TestFencedWrites: set and del with -fence hold while the lock is held with that fence and are
// refused (fence_stale, exit 1) once it was taken again; -fence-lock defaults to $STATEHUB_LOCK,
// which lock sets for its command with $STATEHUB_FENCE.
func TestFencedWrites(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	c := ts.client(t)
	ctx := t.Context()
	const lockKey = "/locks/release"

	out := must(t, e, "lock", lockKey, "--", "sh", "-c", `echo "$STATEHUB_LOCK $STATEHUB_FENCE"`)
	lockFromEnv, fenceFromEnv, _ := strings.Cut(strings.TrimSpace(out), " ")
	if lockFromEnv != lockKey || fenceFromEnv == "" {
		t.Fatalf("lock's command saw STATEHUB_LOCK STATEHUB_FENCE = %q", out)
	}

	l, err := c.Lock(ctx, lockKey, client.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	fence := strconv.FormatUint(l.Fence, 10)
	must(t, e, "set", "-fence", fence, "-fence-lock", lockKey, "/release/current", `"v1"`)
	must(t, append(e, "STATEHUB_LOCK="+lockKey), "set", "/release/notes", "-fence", fence, `"notes"`)
	must(t, e, "del", "-fence", fence, "-fence-lock", lockKey, "/release/notes")

	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(ctx, lockKey, client.LockOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"set", "-fence", fence, "-fence-lock", lockKey, "/release/current", `"late"`},
		{"del", "-fence", fence, "-fence-lock", lockKey, "/release/current"},
	} {
		if r := run(t, e, "", args...); r.code != 1 || !strings.Contains(r.stderr, "fence_stale") {
			t.Errorf("statehub %v after the lock moved on: %+v, want exit 1 and fence_stale", args, r)
		}
	}
	if got, err := c.Get(ctx, "/release/current"); err != nil || string(got.Value) != `"v1"` {
		t.Fatalf("after the stale writes: %s, %v", got.Value, err)
	}

	for _, args := range [][]string{
		{"set", "-fence", fence, "/k", "1"},        // no lock key, no $STATEHUB_LOCK
		{"set", "-fence-lock", lockKey, "/k", "1"}, // a lock without a fence
		{"set", "-fence", "0", "-fence-lock", lockKey, "/k", "1"},
		{"set", "-fence", "x", "-fence-lock", lockKey, "/k", "1"},
		{"del", "-r", "-fence", fence, "-fence-lock", lockKey, "/release/"},
	} {
		if r := run(t, e, "", args...); r.code != 2 || !strings.Contains(r.stderr, "Usage: statehub") {
			t.Errorf("statehub %v: %+v, want exit 2 and the usage", args, r)
		}
	}
}
