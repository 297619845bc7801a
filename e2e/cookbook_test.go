package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The CI cookbook of README.md lives in cookbook.sh; these tests run that script with bash and
// curl against the real binary, started with an admin token and the anonymous grants the README
// tells a CI server to set, and check what each recipe left behind.

const cookbookToken = "cookbook-admin-token-0123456789"

// cookbookAnon are the anonymous grants of the README's CI cookbook: badges are <img> tags, which
// send no token.
const cookbookAnon = `{"read":["/ci/","/views/"],"incr":["/views/"]}`

// requireTools fails, never skips, when a tool the cookbook needs is missing.
func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "sed", "tr", "mktemp", "seq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the CI cookbook test runs README.md's recipes (e2e/cookbook.sh) with it; install it (Debian: apt-get install %s)", tool, tool)
		}
	}
}

// cookbook runs e2e/cookbook.sh against one server.
type cookbook struct {
	t    *testing.T
	base string
	env  []string // the environment every run gets
}

func newCookbook(t *testing.T) *cookbook {
	t.Helper()
	requireTools(t)
	base, _, _ := startWith(t, "-data", t.TempDir(), "-admin-token", cookbookToken, "-anon", cookbookAnon)
	env := append(os.Environ(), "STATEHUB="+base, "TOKEN="+cookbookToken, "REPO=demo")
	return &cookbook{t: t, base: base, env: env}
}

// command prepares bash cookbook.sh with extra environment (NAME=value) and recipes.
func (cb *cookbook) command(ctx context.Context, env []string, recipes ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{"cookbook.sh"}, recipes...)...)
	cmd.Env = append(append([]string{}, cb.env...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// run runs the script and returns its output and exit status.
func (cb *cookbook) run(env []string, recipes ...string) (stdout string, code int) {
	cb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, out, errOut := cb.command(ctx, env, recipes...)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		cb.t.Fatalf("bash cookbook.sh %v: %v\nstderr:\n%s", recipes, err, errOut)
	}
	cb.t.Logf("bash cookbook.sh %v %v: exit %d\nstdout:\n%sstderr:\n%s", env, recipes, code, out, errOut)
	return out.String(), code
}

// mustRun runs the script and fails the test unless it exits 0.
func (cb *cookbook) mustRun(env []string, recipes ...string) string {
	cb.t.Helper()
	out, code := cb.run(env, recipes...)
	if code != 0 {
		cb.t.Fatalf("bash cookbook.sh %v exited %d, want 0", recipes, code)
	}
	return out
}

// get fetches path, with the admin token when auth is set, and returns status, headers and body.
func (cb *cookbook) get(path string, auth bool) (int, http.Header, []byte) {
	cb.t.Helper()
	req, err := http.NewRequest(http.MethodGet, cb.base+path, nil)
	if err != nil {
		cb.t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+cookbookToken)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cb.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		cb.t.Fatal(err)
	}
	return res.StatusCode, res.Header, body
}

// lockReleased fails the test unless the deploy lock of REPO demo is free.
func (cb *cookbook) lockReleased(when string) {
	cb.t.Helper()
	if status, _, body := cb.get("/ci/demo/deploy", true); status != http.StatusNotFound {
		cb.t.Fatalf("%s: GET /ci/demo/deploy answered %d %s, want 404 (the lock released)", when, status, body)
	}
}

// field returns the value of the first line "name=value" of out.
func field(t *testing.T, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `=(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the output has no line %s=...:\n%s", name, out)
	}
	return m[1]
}

func intField(t *testing.T, out, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(field(t, out, name), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return n
}

// TestCookbook runs the whole CI job twice on main: build numbers 1 then 2, the coverage SVG
// stored and served back byte for byte, the view badge counting, and the deploy run under the
// lock, which is free again afterwards.
func TestCookbook(t *testing.T) {
	t.Parallel()
	cb := newCookbook(t)
	dir := t.TempDir()
	// Not valid JSON, not ASCII, CRLF and no final newline: any rewriting of the bytes shows.
	svg := []byte("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"99\" height=\"20\">\r\n<text x=\"5\" y=\"14\">coverage 87.5 % — ✓</text></svg>")
	svgPath := filepath.Join(dir, "coverage.svg")
	if err := os.WriteFile(svgPath, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	// The deploy step records what the lock looked like while it ran.
	during := filepath.Join(dir, "during.json")
	deploy := `curl -fsS "$STATEHUB/ci/$REPO/deploy" > ` + during + ` && echo "deployed=$LOCK_FENCE"`
	env := []string{"BRANCH=main", "COVERAGE_SVG=" + svgPath, "DEPLOY=" + deploy, "OWNER=job 1 & co"}

	var lastFence, lastViews int64
	for run := int64(1); run <= 2; run++ {
		out := cb.mustRun(env)
		if got := intField(t, out, "build"); got != run {
			t.Errorf("run %d: build=%d, want %d", run, got, run)
		}
		fence := intField(t, out, "lock fence")
		if got := intField(t, out, "deployed"); got != fence {
			t.Errorf("run %d: the deploy saw LOCK_FENCE=%d, the lock answered fence %d", run, got, fence)
		}
		if fence <= lastFence {
			t.Errorf("run %d: fence %d, not above the previous run's %d", run, fence, lastFence)
		}
		lastFence = fence
		b, err := os.ReadFile(during)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Owner   string `json:"owner"`
			Fence   int64  `json:"fence"`
			Expires string `json:"expires"`
		}
		if err := json.Unmarshal(b, &st); err != nil || st.Owner != "job 1 & co" || st.Fence != fence || st.Expires == "" {
			t.Errorf("run %d: during the deploy the lock key held %s (%v), want owner %q and fence %d", run, b, err, "job 1 & co", fence)
		}
		cb.lockReleased("after a successful deploy")

		views := intField(t, out, "views")
		if views <= lastViews {
			t.Errorf("run %d: views=%d, not above the previous run's %d", run, views, lastViews)
		}
		lastViews = views

		// The coverage badge, fetched as an <img> would: no token.
		status, h, body := cb.get("/ci/demo/coverage", false)
		if status != http.StatusOK || h.Get("Content-Type") != "image/svg+xml" || !bytes.Equal(body, svg) {
			t.Errorf("run %d: GET /ci/demo/coverage: %d %q %q, want 200 image/svg+xml and the uploaded bytes %q", run, status, h.Get("Content-Type"), body, svg)
		}
		if !strings.Contains(out, "![coverage]("+cb.base+"/ci/demo/coverage)") {
			t.Errorf("run %d: the output lacks the coverage badge's markdown:\n%s", run, out)
		}
	}
	// The key's value is the file's description.
	status, _, body := cb.get("/ci/demo/?keys=false", true)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"value":{"type":"image/svg+xml","size":`+strconv.Itoa(len(svg))+`,"sha256":"`)) {
		t.Errorf("listing /ci/demo/: %d %s, want the coverage key's file description", status, body)
	}
}

// TestCookbookBuildNumbersPerBranch: each branch counts on its own, and a branch name with
// characters a key cannot hold still gets a key.
func TestCookbookBuildNumbersPerBranch(t *testing.T) {
	t.Parallel()
	cb := newCookbook(t)
	for _, branch := range []string{"main", "feature/login-1.2", "main", "feature/login-1.2"} {
		cb.mustRun([]string{"BRANCH=" + branch}, "build")
	}
	for key, want := range map[string]string{"main": "2", "feature_login-1_2": "2"} {
		status, _, body := cb.get("/ci/demo/builds/"+key, true)
		if status != http.StatusOK || string(body) != want {
			t.Errorf("GET /ci/demo/builds/%s: %d %s, want %s", key, status, body, want)
		}
	}
	out := cb.mustRun([]string{"BRANCH=release"}, "build", "build")
	if got := regexp.MustCompile(`(?m)^build=\d+$`).FindAllString(out, -1); strings.Join(got, " ") != "build=1 build=2" {
		t.Errorf("two builds of a new branch printed %v, want build=1 build=2", got)
	}
}

// TestCookbookDeployFails: a deploy command that exits 1 fails the job with its status, and the
// trap releases the lock all the same.
func TestCookbookDeployFails(t *testing.T) {
	t.Parallel()
	cb := newCookbook(t)
	out, code := cb.run([]string{"DEPLOY=echo deploying; exit 1"}, "build", "deploy")
	if code != 1 {
		t.Errorf("a failing deploy: the script exited %d, want 1", code)
	}
	if !strings.Contains(out, "deploying") || !strings.Contains(out, "lock fence=") {
		t.Errorf("the deploy step did not run under the lock:\n%s", out)
	}
	cb.lockReleased("after a failed deploy")
	// And the next deploy takes it at once.
	cb.mustRun([]string{"LOCK_TRIES=1"}, "deploy")
	cb.lockReleased("after the next deploy")
}

// TestCookbookDeployCancelled: SIGTERM to the job's process group (what a CI runner sends when a
// job is cancelled) releases the lock too.
func TestCookbookDeployCancelled(t *testing.T) {
	t.Parallel()
	cb := newCookbook(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, out, errOut := cb.command(ctx, []string{"DEPLOY=sleep 60"}, "deploy")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when the script has exited, with waitErr
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	defer func() {
		select {
		case <-done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // this test's own process group
			<-done
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if status, _, _ := cb.get("/ci/demo/deploy", true); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deploy lock was never taken\nstdout:\n%s\nstderr:\n%s", out, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the script reach the deploy command
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if waitErr == nil {
			t.Errorf("a cancelled deploy exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the script did not end within 30 s of SIGTERM")
	}
	cb.lockReleased("after a cancelled deploy")
}

// TestCookbookDeployWaits: while someone else holds the deploy lock, the recipe waits for it (here
// until the holder's 2 s TTL runs out) instead of failing, and then takes a larger fence.
func TestCookbookDeployWaits(t *testing.T) {
	t.Parallel()
	cb := newCookbook(t)
	req, _ := http.NewRequest(http.MethodPost, cb.base+"/ci/demo/deploy?lock&ttl=2s&owner=crashed-job", nil)
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
	start := time.Now()
	out := cb.mustRun(nil, "deploy")
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("the deploy did not wait for the held lock (took %v)", waited)
	}
	if fence := intField(t, out, "lock fence"); fence <= held.Fence {
		t.Errorf("fence %d after waiting, not above the expired holder's %d", fence, held.Fence)
	}
	cb.lockReleased("after a deploy that waited")
}

// TestCookbookViewBadge fetches the README view badge as a browser's <img> would: an SVG, never
// cached, whose count goes up by one per view.
func TestCookbookViewBadge(t *testing.T) {
	t.Parallel()
	cb := newCookbook(t)
	count := regexp.MustCompile(`aria-label="views: (\d+)"`)
	for want := 1; want <= 3; want++ {
		status, h, body := cb.get("/views/demo?badge&incr&label=views", false)
		if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "image/svg+xml") || !bytes.HasPrefix(body, []byte("<svg")) {
			t.Fatalf("view %d: %d %q %.80s, want an SVG", want, status, h.Get("Content-Type"), body)
		}
		if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("view %d: Cache-Control %q, want no-store (image proxies must not cache it)", want, cc)
		}
		m := count.FindSubmatch(body)
		if m == nil || string(m[1]) != strconv.Itoa(want) {
			t.Errorf("view %d: the badge shows %q, want %d:\n%s", want, m, want, body)
		}
	}
	out := cb.mustRun(nil, "views")
	if got := intField(t, out, "views"); got != 4 {
		t.Errorf("the recipe's view: views=%d, want 4", got)
	}
}
