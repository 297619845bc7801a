package cli_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
)

// TestLockRunsTheCommand: the command gets the fence, its output and exit status come back, and
// the lock is released afterwards.
func TestLockRunsTheCommand(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	c := ts.client(t)
	for _, tc := range []struct {
		name   string
		script string
		code   int
	}{
		{"success", `echo "fence=$STATEHUB_FENCE"`, 0},
		{"failure", `echo "fence=$STATEHUB_FENCE"; exit 3`, 3},
		{"killed", `echo "fence=$STATEHUB_FENCE"; kill -KILL $$`, 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, e, "", "lock", "/deploy/prod", "-ttl", "1m", "--", "sh", "-c", tc.script)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tc.code, r.stderr)
			}
			fence, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(r.stdout), "fence="), 10, 64)
			if err != nil || fence == 0 {
				t.Fatalf("the command printed %q, want fence=N", r.stdout)
			}
			if _, err := c.Get(t.Context(), "/deploy/prod"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("after the command the lock is %v, want released", err)
			}
		})
	}
	if r := run(t, e, "", "lock", "/deploy/prod", "--", "/nonexistent/command"); r.code != 1 || !strings.Contains(r.stderr, "/nonexistent/command") {
		t.Errorf("a command that does not exist: %+v", r)
	}
}

// TestLockHeldWhileTheCommandRuns: during the command the lock is held (with its fence and
// owner) and renewed; another lock command finds it held and does not run its command.
func TestLockHeldWhileTheCommandRuns(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	c := ts.client(t)
	ctx := t.Context()
	stdin, input := io.Pipe()
	defer input.Close()
	job := startWithStdin(t, stdin, e, "lock", "-owner", "job 1", "-ttl", "300ms", "/deploy/prod", "--", "sh", "-c", `echo "fence=$STATEHUB_FENCE"; read line; echo "got $line"`)
	fence := strings.TrimPrefix(job.line(), "fence=")

	got, err := c.Get(ctx, "/deploy/prod")
	var v struct {
		Owner string `json:"owner"`
		Fence uint64 `json:"fence"`
	}
	if err != nil || json.Unmarshal(got.Value, &v) != nil || v.Owner != "job 1" || fmt.Sprint(v.Fence) != fence {
		t.Fatalf("the lock during the command: %s, %v; want owner job 1, fence %s", got.Value, err, fence)
	}
	r := run(t, e, "", "lock", "/deploy/prod", "--", "sh", "-c", "echo ran")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `held by "job 1"`) {
		t.Fatalf("a second lock: %+v", r)
	}
	// Renewed: a change of the lock's key with a later revision, well within two TTLs.
	for ev, err := range c.Watch(ctx, "/deploy/prod", client.WatchOptions{Since: fmt.Sprintf("/deploy/prod:0:%s", fence)}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == client.EventSet && ev.Revision >= 2 {
			break
		}
		if ev.Type == client.EventDelete {
			t.Fatalf("the lock was deleted while the command ran: %+v", ev)
		}
	}
	input.Write([]byte("go\n"))
	input.Close() // the command has exited once it has printed; exec copies stdin until EOF
	if line := job.line(); line != "got go" {
		t.Fatalf("the command printed %q", line)
	}
	if r := job.wait(); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, err := c.Get(ctx, "/deploy/prod"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after the command: %v, want released", err)
	}
}

// TestLockWaits: with -wait, lock waits for the holder's release.
func TestLockWaits(t *testing.T) {
	ts := newServer(t, hub.Config{})
	c := ts.client(t)
	ctx := t.Context()
	held, err := c.Lock(ctx, "/deploy/prod", client.LockOptions{Owner: "first"})
	if err != nil {
		t.Fatal(err)
	}
	job := start(t, env(ts.URL), "lock", "-wait", "1h", "/deploy/prod", "--", "sh", "-c", `echo "fence=$STATEHUB_FENCE"`)
	held.Release(ctx)
	line := job.line()
	if fence, err := strconv.ParseUint(strings.TrimPrefix(line, "fence="), 10, 64); err != nil || fence <= held.Fence {
		t.Fatalf("the waiting command printed %q, want a fence above %d", line, held.Fence)
	}
	if r := job.wait(); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// TestLockInterrupted: an interrupt reaches the command as SIGTERM; lock exits with its status
// and releases the lock.
func TestLockInterrupted(t *testing.T) {
	ts := newServer(t, hub.Config{})
	job := start(t, env(ts.URL), "lock", "/deploy/prod", "--", "sh", "-c", `echo started; exec sleep 60`)
	if l := job.line(); l != "started" {
		t.Fatalf("got %q", l)
	}
	job.stop()
	if r := job.wait(); r.code != 128+15 {
		t.Fatalf("exit %d, want 143 (SIGTERM): %s", r.code, r.stderr)
	}
	if _, err := ts.client(t).Get(t.Context(), "/deploy/prod"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after an interrupt: %v, want released", err)
	}
}

// TestLockLost: a lock lost while the command runs (its subtree deleted) stops the command and
// says so.
func TestLockLost(t *testing.T) {
	ts := newServer(t, hub.Config{})
	job := start(t, env(ts.URL), "lock", "-ttl", "300ms", "/deploy/prod", "--", "sh", "-c", `echo started; exec sleep 60`)
	if l := job.line(); l != "started" {
		t.Fatalf("got %q", l)
	}
	if _, _, err := ts.client(t).DeleteTree(t.Context(), "/deploy/"); err != nil {
		t.Fatal(err)
	}
	r := job.wait()
	if r.code != 128+15 || !strings.Contains(r.stderr, "lock lost") {
		t.Fatalf("exit %d, stderr %q; want 143 and the loss reported", r.code, r.stderr)
	}
}
