package web_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

func TestRateLimitPerIP(t *testing.T) {
	t.Parallel()
	clock := hub.NewFakeClock(t0)
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
	ts, clock := authServer(t, "", &web.Grants{Read: []string{"/"}}, func(c *web.Config) {
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

// TestSlowHeadersCutOff connects a client that never finishes its headers: the server must hang
// up on it after ReadHeaderTimeout.
func TestSlowHeadersCutOff(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: quiet})
	t.Cleanup(h.Close)
	srv := web.New(h, web.Config{Logger: quiet, Limits: web.Limits{ReadHeaderTimeout: 50 * time.Millisecond}})
	hs := srv.HTTPServer("127.0.0.1:0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	if hs.ReadHeaderTimeout != 50*time.Millisecond || hs.WriteTimeout != 0 || hs.ReadTimeout != 0 {
		t.Fatalf("timeouts: header %v, write %v, read %v", hs.ReadHeaderTimeout, hs.WriteTimeout, hs.ReadTimeout)
	}
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /.health HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// A safety net only: the server closes the connection long before.
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a connection whose headers never ended")
	}
}
