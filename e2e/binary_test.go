// Package e2e runs the statehub binary as a user would: built once, started as a process, talked
// to over the network, stopped by a signal.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

	"github.com/coder/websocket"
)

// binary is the statehub executable that TestMain builds.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "statehub-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "statehub")
	build := exec.Command("go", "build", "-o", binary, "github.com/statehub/statehub")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building statehub:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestHelpFlag(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("statehub -h: %v\n%s", err, out)
	}
	for _, want := range []string{"-addr", "-data", "-sync", "STATEHUB_"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("statehub -h does not mention %s:\n%s", want, out)
		}
	}
}

func TestBadFlagExitsNonZero(t *testing.T) {
	t.Parallel()
	err := exec.Command(binary, "-sync", "sometimes", "-data", "").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("statehub -sync sometimes: %v, want a non-zero exit", err)
	}
}

// proc is a started process: done is closed when it has exited, with err from Wait.
type proc struct {
	done chan struct{}
	err  error
}

// exitsAfterSIGTERM fails the test unless the process exits with status 0 within 5 s.
func (p *proc) exitsAfterSIGTERM(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("statehub exited with %v after SIGTERM, want status 0", p.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("statehub did not exit within 5 s of SIGTERM")
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// start runs the binary memory-only on a free port and waits until /.health answers.
func start(t *testing.T) (base string, cmd *exec.Cmd, p *proc) {
	t.Helper()
	return startWith(t, "-data", "")
}

// startWith runs the binary with args on a free port and waits until /.health answers. The process
// is killed (by its PID) at the end of the test if it is still running.
func startWith(t *testing.T, args ...string) (base string, cmd *exec.Cmd, p *proc) {
	t.Helper()
	addr := freeAddr(t)
	cmd = exec.Command(binary, append([]string{"-addr", addr}, args...)...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p = &proc{done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill() // only this test's own process, by its PID
			<-p.done
		}
		if t.Failed() {
			t.Logf("statehub output:\n%s", logs.String())
		}
	})
	base = "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(base + "/.health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base, cmd, p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("statehub exited before serving: %v\n%s", p.err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("statehub did not answer /.health: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGTERM stops a server with an open stream: the stream hears why it ends (close, reason
// shutdown) and the process exits with status 0 within 5 s.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	base, cmd, p := start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/e2e/", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream answered %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := bufio.NewReader(res.Body)
	if ev := readEvent(t, events); ev["retry"] == "" {
		t.Fatalf("stream starts with %v, want retry", ev)
	}
	if ev := readEvent(t, events); ev["event"] != "ready" {
		t.Fatalf("got %v, want ready", ev)
	}
	w, err := http.Post(base+"/e2e/k", "application/json", strings.NewReader(`{"n": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	w.Body.Close()
	if ev := readEvent(t, events); ev["data"] != `{"n":1}` || !strings.HasPrefix(ev["id"], "/e2e/k:0:") {
		t.Fatalf("got %v, want the change of /e2e/k", ev)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		ev := readEvent(t, events)
		if ev["event"] == "" && ev["data"] == "" {
			continue // a reconnect hint or a comment
		}
		if ev["event"] != "close" || ev["data"] != `{"reason":"shutdown"}` {
			t.Fatalf("after SIGTERM the stream got %v, want close shutdown", ev)
		}
		break
	}
	p.exitsAfterSIGTERM(t)
}

// TestSIGTERMWebSocket: at SIGTERM a WebSocket's subscription gets its close event with reason
// shutdown, the socket closes with 1001 (going away), and the process exits with status 0.
func TestSIGTERMWebSocket(t *testing.T) {
	t.Parallel()
	base, cmd, p := start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/.ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"op":"sub","id":1,"path":"/e2e/"}`)); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("reading the socket: %v", err)
		}
		return string(b)
	}
	for m := read(); !strings.Contains(m, `"type":"ready"`); m = read() {
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m := read(); m != `{"sub":1,"type":"close","reason":"shutdown"}` {
		t.Fatalf("after SIGTERM the socket got %s, want the subscription's close, reason shutdown", m)
	}
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("then the socket ended with %v, want close status 1001", err)
	}
	p.exitsAfterSIGTERM(t)
}

// readEvent reads one block of an event stream into its fields; comments go under ":".
func readEvent(t *testing.T, r *bufio.Reader) map[string]string {
	t.Helper()
	ev := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (partial %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if len(ev) == 0 {
				continue
			}
			return ev
		}
		k, v, _ := strings.Cut(line, ":")
		ev[k] = strings.TrimPrefix(v, " ")
	}
}

// lockedBuffer collects a process's output; the os/exec copying goroutine writes while the test
// may read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSSEClientsLeave: the binary releases the streams whose clients close their connections at
// once, though no goroutine reads an idle stream's connection: its open streams and subscribers go
// back to zero, and -max-conns counts them no more, round after round.
func TestSSEClientsLeave(t *testing.T) {
	t.Parallel()
	const max, admin = 8, "e2e-admin-token-0123456789"
	base, _, _ := startWith(t, "-data", "", "-max-conns", strconv.Itoa(max), "-admin-token", admin)
	open := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, base+"/leave/", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+admin)
		return http.DefaultClient.Do(req)
	}
	for round := range 3 {
		var streams []*http.Response
		for range max {
			res, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("round %d: a stream answered %d", round, res.StatusCode)
			}
			events := bufio.NewReader(res.Body)
			for ev := readEvent(t, events); ev["event"] != "ready"; ev = readEvent(t, events) {
			}
			streams = append(streams, res)
		}
		res, err := open()
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("round %d: stream %d answered %d, want 429 (-max-conns %d)", round, max+1, res.StatusCode, max)
		}
		for _, res := range streams {
			res.Body.Close() // the client leaves
		}
		deadline := time.Now().Add(10 * time.Second)
		for metric(t, base, admin, `statehub_open_streams{transport="sse"}`) != 0 || metric(t, base, admin, "statehub_subscribers") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: streams still open 10 s after their clients left", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// metric reads one sample of the binary's /.metrics with the admin token.
func metric(t *testing.T, base, admin, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/.metrics", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /.metrics (%d)", name, res.StatusCode)
	return 0
}
