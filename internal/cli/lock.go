package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/statehub/statehub/client"
)

// DefaultLockTTL is lock's -ttl: short, since the lock is renewed while the command runs, so a
// runner that dies outright holds it only this long.
const DefaultLockTTL = 5 * time.Minute

// lockHeldStatus is lock's exit status when the lock is still held after -wait (flock's default).
const lockHeldStatus = 1

var cmdLock = &command{
	name:     "lock",
	synopsis: "[-ttl D] [-wait D] [-owner S] KEY -- COMMAND [ARG...]",
	summary:  "run a command while holding a lock, renewed while it runs",
	about: `Lock takes the lock on KEY, waiting up to -wait for its holder to release it, runs COMMAND with
the lock's fence in $STATEHUB_FENCE and its key in $STATEHUB_LOCK, renews the lock every third of -ttl while COMMAND runs,
releases it when COMMAND ends, and exits with COMMAND's status:

  statehub lock /deploy/prod -ttl 10m -wait 5m -- ./deploy.sh

The fence grows with every acquisition: pass it on, so a target can refuse a deploy older than
one it has seen, and write with it (statehub set -fence "$STATEHUB_FENCE" KEY VALUE), so a write
of a COMMAND that outlived its lock is refused. SIGINT and SIGTERM are passed on to COMMAND as SIGTERM; the lock is released
once it has exited. If the lock is lost while COMMAND runs (deleted, or not renewed in time),
COMMAND gets SIGTERM and lock exits with its status, or 1. A lock still held after -wait exits 1
without running COMMAND; so does a lock that cannot be asked for.`,
	run: func(r *runner) error {
		ttl := r.fs.Duration("ttl", DefaultLockTTL, "how long the lock lasts unless renewed")
		wait := r.fs.Duration("wait", 0, "how long to wait for a held lock (e.g. 5m); 0: fail at once")
		owner := r.fs.String("owner", defaultOwner(), "who holds the lock, shown to whoever finds it held (a job URL is a good one)")
		before, command, found := cutArgs(r.args, "--")
		args, err := r.parse(before, 1, 1)
		if err != nil {
			return err
		}
		if !found || len(command) == 0 {
			return r.usageError("no command: statehub lock KEY -- COMMAND [ARG...]")
		}
		if *ttl <= 0 {
			return r.usageError("-ttl must be positive")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		key := args[0]
		status := -1 // the command's, once it has run
		err = c.WithLock(r.ctx, key, client.LockOptions{TTL: *ttl, Wait: *wait, Owner: *owner}, func(ctx context.Context, fence uint64) error {
			cmd := exec.CommandContext(ctx, command[0], command[1:]...)
			cmd.Env = append(append([]string{}, r.env.Environ...), "STATEHUB_FENCE="+strconv.FormatUint(fence, 10), "STATEHUB_LOCK="+key)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = r.env.Stdin, r.env.Stdout, r.env.Stderr
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			if err := cmd.Run(); cmd.ProcessState == nil {
				return err // it never started
			}
			status = exitStatus(cmd.ProcessState)
			return nil
		})
		switch {
		case err == nil:
			return &exitError{status}
		case status < 0 && errors.Is(err, client.ErrLocked):
			fmt.Fprintf(r.env.Stderr, "statehub lock: %s\n", describe(err, r.env))
			return &exitError{lockHeldStatus}
		case status < 0:
			return err
		}
		// The command ran, but the lock was lost meanwhile or not released.
		if errors.Is(err, client.ErrLockLost) {
			fmt.Fprintf(r.env.Stderr, "statehub lock: lock lost while the command ran, which got SIGTERM: %s\n", describe(err, r.env))
		} else {
			fmt.Fprintf(r.env.Stderr, "statehub lock: %s\n", describe(err, r.env))
		}
		if status == 0 {
			status = 1
		}
		return &exitError{status}
	},
}

// exitStatus is a shell's $? for a finished process: its exit code, or 128+N after signal N.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// cutArgs splits args at the first sep.
func cutArgs(args []string, sep string) (before, after []string, found bool) {
	for i, a := range args {
		if a == sep {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// defaultOwner is user@host.
func defaultOwner() string {
	name := "statehub"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
