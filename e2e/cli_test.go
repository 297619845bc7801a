package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The CLI (internal/cli) as a user runs it: the statehub binary with a command as its first
// argument, against the binary serving, configured by STATEHUB_URL and STATEHUB_TOKEN.

// statehubCLI runs the binary with args and env (added to the test's environment) and returns its
// stdout, stderr and exit status.
func statehubCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("statehub %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func TestCLI(t *testing.T) {
	t.Parallel()
	const token = "cli-e2e-admin-token-0123456789"
	base, _, _ := startWith(t, "-data", t.TempDir(), "-admin-token", token)
	env := []string{"STATEHUB_URL=" + base, "STATEHUB_TOKEN=" + token}

	if out, _, code := statehubCLI(t, nil, "help"); code != 0 || !strings.Contains(out, "lock") || !strings.Contains(out, "STATEHUB_URL") {
		t.Fatalf("statehub help: exit %d\n%s", code, out)
	}
	for want := 1; want <= 2; want++ {
		if out, errOut, code := statehubCLI(t, env, "incr", "/ci/app/main/build"); code != 0 || out != strconv.Itoa(want)+"\n" {
			t.Fatalf("statehub incr: exit %d, %q %s; want %d", code, out, errOut, want)
		}
	}
	out, errOut, code := statehubCLI(t, env, "lock", "/deploy/prod", "-ttl", "1m", "--", "sh", "-c", `echo "fence=$STATEHUB_FENCE"; exit 4`)
	if code != 4 {
		t.Fatalf("statehub lock: exit %d, want the command's 4\n%s", code, errOut)
	}
	if fence, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(out), "fence="), 10, 64); err != nil || fence != 3 {
		t.Fatalf("the command under the lock printed %q, want fence=3 (the third commit)", out)
	}
	if _, errOut, code := statehubCLI(t, env, "get", "/deploy/prod"); code != 1 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("the lock after the command: exit %d, %s; want released", code, errOut)
	}
	out, _, code = statehubCLI(t, env, "watch", "-since", "0", "-count", "2", "/ci/")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[1], `"value":2`) {
		t.Fatalf("statehub watch -since 0 -count 2: exit %d\n%s", code, out)
	}
	// A server command line is still a server command line.
	if _, errOut, code := statehubCLI(t, nil, "-sync", "sometimes"); code == 0 || !strings.Contains(errOut, "-sync") {
		t.Fatalf("statehub -sync sometimes: exit %d, %s", code, errOut)
	}
}

// cliCookbook is the cookbook with the binary on the PATH as statehub.
func cliCookbook(t *testing.T) *cookbook {
	t.Helper()
	cb := newCookbook(t)
	cb.env = append(cb.env, "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cb
}

// TestCookbookDeployCLI: README's deploy lock with the CLI runs the deploy under the lock with
// its fence, returns its exit status and releases the lock, after success and failure.
func TestCookbookDeployCLI(t *testing.T) {
	t.Parallel()
	cb := cliCookbook(t)
	during := filepath.Join(t.TempDir(), "during.json")
	deploy := `curl -fsS -H "Authorization: Bearer $TOKEN" "$STATEHUB/ci/$REPO/deploy" > ` + during + ` && echo "deployed=$STATEHUB_FENCE"`
	var last int64
	for run := 1; run <= 2; run++ {
		out := cb.mustRun([]string{"DEPLOY=" + deploy, "OWNER=job 1 & co"}, "deploy-cli")
		fence := intField(t, out, "deployed")
		var st struct {
			Owner string `json:"owner"`
			Fence int64  `json:"fence"`
		}
		b, _ := os.ReadFile(during)
		if err := json.Unmarshal(b, &st); err != nil || st.Owner != "job 1 & co" || st.Fence != fence || fence <= last {
			t.Fatalf("run %d: during the deploy the lock held %s, the deploy saw fence %d (the last run's %d)", run, b, fence, last)
		}
		last = fence
		cb.lockReleased("after a deploy with the CLI")
	}
	out, code := cb.run([]string{"DEPLOY=echo deploying; exit 3"}, "deploy-cli")
	if code != 3 || !strings.Contains(out, "deploying") {
		t.Fatalf("a failing deploy: exit %d, want its 3\n%s", code, out)
	}
	cb.lockReleased("after a failed deploy with the CLI")
}

// TestCookbookDeployCLIWaits: while another holds the lock, the CLI recipe waits (here until the
// holder's 1 s TTL runs out) and then deploys with a larger fence.
func TestCookbookDeployCLIWaits(t *testing.T) {
	t.Parallel()
	cb := cliCookbook(t)
	req, _ := http.NewRequest(http.MethodPost, cb.base+"/ci/demo/deploy?lock&ttl=1s&owner=crashed-job", nil)
	req.Header.Set("Authorization", "Bearer "+cookbookToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var held struct {
		Fence int64 `json:"fence"`
	}
	err = json.NewDecoder(res.Body).Decode(&held)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("taking the lock: %d %v", res.StatusCode, err)
	}
	out := cb.mustRun([]string{"DEPLOY=echo deployed=$STATEHUB_FENCE"}, "deploy-cli")
	if fence := intField(t, out, "deployed"); fence <= held.Fence {
		t.Fatalf("fence %d after waiting, not above the expired holder's %d", fence, held.Fence)
	}
	cb.lockReleased("after a deploy that waited")
}

// signalWriter collects output and closes seen once it holds want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
	}
	return len(p), nil
}

// TestCookbookDeployCLICancelled: SIGTERM to the job's process group, as a CI runner sends when a
// job is cancelled, stops the deploy and releases the lock.
func TestCookbookDeployCLICancelled(t *testing.T) {
	t.Parallel()
	cb := cliCookbook(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, _, errOut := cb.command(ctx, []string{"DEPLOY=echo started; exec sleep 60"}, "deploy-cli")
	out := &signalWriter{want: "started\n", seen: make(chan struct{})}
	cmd.Stdout = out // not a file: Wait also waits until every process holding it (statehub too) is gone
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("the recipe ended before the deploy started: %v\n%s", err, errOut)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Errorf("a cancelled deploy exited 0")
	}
	cb.lockReleased("after a cancelled deploy with the CLI")
}
