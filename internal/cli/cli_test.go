package cli_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/cli"
	"github.com/statehub/statehub/web"
)

// The commands run in process (cli.Run) against a real server in process: a hub behind web's
// handler on an httptest server, with an admin token.

const adminToken = "cli-test-admin-token-0123456789"

var quiet = slog.New(slog.DiscardHandler)

type testServer struct {
	URL  string
	hub  *hub.Hub
	srv  *httptest.Server
	once sync.Once
}

func newServer(t *testing.T, hcfg hub.Config) *testServer {
	t.Helper()
	hcfg.Logger = quiet
	return serveHub(t, hub.New(hcfg))
}

func serveHub(t *testing.T, h *hub.Hub) *testServer {
	t.Helper()
	return serveHubWith(t, h, web.Config{})
}

// serveHubWith serves h with wcfg, its logger quiet and the admin token accepted.
func serveHubWith(t *testing.T, h *hub.Hub, wcfg web.Config) *testServer {
	t.Helper()
	a, err := auth.New(auth.Config{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	wcfg.Logger, wcfg.Auth = quiet, a
	srv := httptest.NewServer(web.New(h, wcfg).Handler())
	ts := &testServer{URL: srv.URL, hub: h, srv: srv}
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) Close() {
	ts.once.Do(func() {
		ts.hub.Close()
		ts.srv.Close()
	})
}

// client is a Go client of ts with the admin token, to set up and check what commands do.
func (ts *testServer) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(ts.URL, client.WithToken(client.StaticToken(adminToken)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// env is the environment of a command run against url with the admin token.
func env(url string) []string {
	return []string{"STATEHUB_URL=" + url, "STATEHUB_TOKEN=" + adminToken, "PATH=" + os.Getenv("PATH")}
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs statehub args... with stdin and environ, to completion.
func run(t *testing.T, environ []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Environ: environ}, args)
	return result{out.String(), errOut.String(), code}
}

// must runs a command that must exit 0 and returns its stdout.
func must(t *testing.T, environ []string, args ...string) string {
	t.Helper()
	r := run(t, environ, "", args...)
	if r.code != 0 {
		t.Fatalf("statehub %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// started is a command running in the background, its stdout read line by line.
type started struct {
	t     *testing.T
	lines chan string
	done  chan result
	stop  context.CancelFunc
}

// start runs statehub args... in the background, without stdin; stop cancels it as a signal
// would.
func start(t *testing.T, environ []string, args ...string) *started {
	t.Helper()
	return startWithStdin(t, nil, environ, args...)
}

// startWithStdin is start with stdin read from in.
func startWithStdin(t *testing.T, in io.Reader, environ []string, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	outR, outW := io.Pipe()
	s := &started{t: t, lines: make(chan string, 1000), done: make(chan result, 1), stop: cancel}
	var errOut lockedBuffer
	go func() {
		code := cli.Run(ctx, cli.Env{Stdin: in, Stdout: outW, Stderr: &errOut, Environ: environ}, args)
		outW.Close()
		s.done <- result{stderr: errOut.String(), code: code}
	}()
	go func() {
		defer close(s.lines)
		b := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := outR.Read(buf)
			b = append(b, buf[:n]...)
			for {
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					break
				}
				s.lines <- string(b[:i])
				b = b[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

// line returns the next line of stdout.
func (s *started) line() string {
	s.t.Helper()
	l, ok := <-s.lines
	if !ok {
		r := <-s.done
		s.done <- r
		s.t.Fatalf("stdout ended: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	return l
}

// wait returns the command's result once it has exited.
func (s *started) wait() result {
	r := <-s.done
	s.done <- r
	return r
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHelp(t *testing.T) {
	out := must(t, nil, "help")
	for _, name := range []string{"get", "set", "del", "incr", "ls", "watch", "lock", "backup", "restore", "help", "STATEHUB_URL", "STATEHUB_TOKEN"} {
		if !strings.Contains(out, name) {
			t.Errorf("statehub help does not mention %s:\n%s", name, out)
		}
		if name == strings.ToLower(name) && !cli.IsCommand(name) {
			t.Errorf("IsCommand(%q) is false", name)
		}
	}
	for _, name := range []string{"-h", "-data", "serve", ""} {
		if cli.IsCommand(name) {
			t.Errorf("IsCommand(%q) is true: main would not serve", name)
		}
	}
	if out := must(t, nil, "help", "lock"); !strings.Contains(out, "STATEHUB_FENCE") || !strings.Contains(out, "-wait") {
		t.Errorf("statehub help lock:\n%s", out)
	}
	if out := must(t, nil, "watch", "-h"); !strings.Contains(out, "-since") {
		t.Errorf("statehub watch -h:\n%s", out)
	}
	for _, args := range [][]string{{"get"}, {"get", "/a", "/b"}, {"incr", "-nope", "/a"}, {"help", "nope"}, {"lock", "/k"}, {"lock", "/k", "--"}} {
		if r := run(t, nil, "", args...); r.code != 2 || !strings.Contains(r.stderr, "Usage: statehub") {
			t.Errorf("statehub %v: exit %d, stderr %q; want 2 and the usage", args, r.code, r.stderr)
		}
	}
}

func TestConfiguration(t *testing.T) {
	ts := newServer(t, hub.Config{})
	if r := run(t, []string{"STATEHUB_URL=" + ts.URL}, "", "get", "/a"); r.code != 1 || !strings.Contains(r.stderr, "unauthorized") || !strings.Contains(r.stderr, "STATEHUB_TOKEN") {
		t.Errorf("without a token: %+v", r)
	}
	if r := run(t, []string{"STATEHUB_URL=127.0.0.1:8000"}, "", "get", "/a"); r.code != 1 || !strings.Contains(r.stderr, "STATEHUB_URL") {
		t.Errorf("a URL without a scheme: %+v", r)
	}
	ts.Close()
	if r := run(t, env(ts.URL), "", "get", "/a"); r.code != 1 || !strings.Contains(r.stderr, "is a server running at "+ts.URL) {
		t.Errorf("no server: %+v", r)
	}
}
