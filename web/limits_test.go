package web_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

func TestRateLimitPerIP(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(t0)
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{Clock: clock, Limits: web.Limits{Rate: 1, Burst: 2}})
	ts.must(t, "POST", "/a", `1`)
	ts.must(t, "GET", "/a", "")
	r := ts.do(t, "GET", "/a", "")
	if r.status != http.StatusTooManyRequests || errorBody(t, r).Code != "rate_limited" {
		t.Fatalf("third request: status %d %s, want 429", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want 1", got)
	}
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("a 429 must carry CORS headers, or browsers cannot read it")
	}
	ts.must(t, "GET", "/.health", "") // probes are never throttled
	clock.Advance(999 * time.Millisecond)
	if r := ts.do(t, "GET", "/a", ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("before the token is back: status %d", r.status)
	}
	clock.Advance(time.Millisecond)
	ts.must(t, "GET", "/a", "")
	clock.Advance(time.Hour) // refilled to the burst, not beyond
	ts.must(t, "GET", "/a", "")
	ts.must(t, "GET", "/a", "")
	if r := ts.do(t, "GET", "/a", ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("past the burst: status %d", r.status)
	}
}

func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	ts, clock := authServer(t, "", &auth.Grants{Read: []string{"/"}}, func(c *web.Config) {
		c.Limits = web.Limits{TokenRate: 0.5, TokenBurst: 1}
	})
	ann := bearer(hs(t, claims("ann", map[string][]string{"read": {"/"}})))
	bob := bearer(hs(t, claims("bob", map[string][]string{"read": {"/"}})))
	want := func(hdr []string, status int, retry string) {
		t.Helper()
		r := ts.do(t, "GET", "/k", "", hdr...)
		if r.status != status || r.header.Get("Retry-After") != retry {
			t.Fatalf("status %d Retry-After %q, want %d %q (%s)", r.status, r.header.Get("Retry-After"), status, retry, r.body)
		}
	}
	want(ann, http.StatusNotFound, "")
	want(ann, http.StatusTooManyRequests, "2")
	want(bob, http.StatusNotFound, "") // another subject has its own bucket
	want(nil, http.StatusNotFound, "") // anonymous requests are limited per IP only
	want(nil, http.StatusNotFound, "")
	clock.Advance(time.Second)
	want(ann, http.StatusTooManyRequests, "1")
	clock.Advance(time.Second)
	want(ann, http.StatusNotFound, "")
}

func TestMaxConnsPerClient(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{Limits: web.Limits{MaxConns: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(ctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.srv.URL+"/room/", nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := open(ctx)
	defer first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	// Reading the first event proves the stream holds its slot.
	if _, err := bufio.NewReader(first.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	second := open(context.Background())
	body, _ := io.ReadAll(second.Body)
	second.Body.Close()
	if second.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second stream: status %d %s, want 429", second.StatusCode, body)
	}
	ts.must(t, "GET", "/.health", "") // plain requests are not connections
}

// TestConnectionTimeouts serves real connections with HTTPServer: a client that never finishes
// its headers is cut off after the header timeout, an idle keep-alive connection after the idle
// timeout, and a stream, however long, never. net/http times connections on the real clock, so
// the timeouts are short, and a cut is checked to come no earlier than its timeout, and to come.
func TestConnectionTimeouts(t *testing.T) {
	t.Parallel()
	const header, idle = 200 * time.Millisecond, 500 * time.Millisecond
	h := hub.New(hub.Config{Logger: quiet})
	t.Cleanup(func() { h.Close() })
	srv := web.New(h, web.Config{Logger: quiet, Limits: web.Limits{ReadHeaderTimeout: header, IdleTimeout: idle}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	if hs.WriteTimeout != 0 || hs.ReadTimeout != 0 {
		t.Fatalf("timeouts: write %v, read %v; streams would be cut", hs.WriteTimeout, hs.ReadTimeout)
	}
	dial := func(t *testing.T) net.Conn {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// cutAfter reads conn until the server hangs up and returns how long that took from start;
	// -1 if conn is still open after wait.
	cutAfter := func(t *testing.T, conn net.Conn, r io.Reader, start time.Time, wait time.Duration) time.Duration {
		t.Helper()
		conn.SetReadDeadline(start.Add(wait))
		_, err := io.Copy(io.Discard, r)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return -1
		}
		return time.Since(start)
	}
	const enough = 10 * time.Second // for a cut to come on a busy machine
	t.Run("unfinished headers", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /.health HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		if got := cutAfter(t, conn, conn, start, enough); got < header {
			t.Fatalf("cut after %v (-1: not in %v), want the header timeout %v", got, enough, header)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		start := time.Now()
		if _, err := io.WriteString(conn, "GET /.health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("health: %v %v", res, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		// The idle timeout starts once the answer is written, after start.
		if got := cutAfter(t, conn, br, start, enough); got < idle {
			t.Fatalf("cut after %v (-1: not in %v), want the idle timeout %v", got, enough, idle)
		}
	})
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /s/ HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", res, err)
		}
		if got := cutAfter(t, conn, br, time.Now(), 3*(header+idle)); got != -1 {
			t.Fatalf("a stream was cut after %v", got)
		}
		// Still served: a change reaches it.
		if _, err := h.Set("/s/a", []byte("1"), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(enough))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			if strings.Contains(line, `"/s/a"`) || strings.HasPrefix(line, "id: /s/a") {
				return
			}
		}
	})
}
