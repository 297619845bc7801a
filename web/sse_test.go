package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// event is one parsed Server-Sent Event; retry and comments arrive as their own "events".
type event struct {
	event, id, data string
	retry           string
	comment         string
	hasID           bool
}

// sseStream is a live event stream read by hand.
type sseStream struct {
	res    *http.Response
	rd     *bufio.Reader
	cancel context.CancelFunc
}

// openStream subscribes to path over HTTP; hdr is pairs of header name and value. It returns the
// answer instead when it is not a stream, and the error when the request failed.
func (ts *testServer) openStream(ctx context.Context, path string, hdr ...string) (*sseStream, *response, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.srv.URL+path, nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.client.Transport.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		return nil, &response{status: res.StatusCode, header: res.Header, body: string(b)}, err
	}
	return &sseStream{res: res, rd: bufio.NewReader(res.Body), cancel: cancel}, nil, nil
}

// subscribe opens a stream that must succeed and checks its headers and the retry hint that comes
// first. The stream is closed at the end of the test.
func (ts *testServer) subscribe(t testing.TB, path, lastEventID string, hdr ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if lastEventID != "" {
		hdr = append(hdr, "Last-Event-ID", lastEventID)
	}
	s, r, err := ts.openStream(ctx, path, hdr...)
	if err != nil {
		t.Fatalf("GET %s as a stream: %v", path, err)
	}
	if r != nil {
		t.Fatalf("GET %s as a stream: %d %s", path, r.status, r.body)
	}
	t.Cleanup(s.close)
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"} {
		if got := s.res.Header.Get(k); got != v {
			t.Errorf("stream header %s = %q, want %q", k, got, v)
		}
	}
	first, err := s.read()
	if err != nil {
		t.Fatalf("stream %s: %v", path, err)
	}
	if first.retry != "2000" || first.event != "" || first.data != "" {
		t.Fatalf("stream %s starts with %+v, want retry: 2000", path, first)
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.res.Body.Close()
}

// read parses the next event, retry hint or comment (the text/event-stream format, with "\n"
// line ends, which is all the server writes).
func (s *sseStream) read() (event, error) {
	var ev event
	var data []string
	seen := false
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && !seen {
				return ev, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if !seen {
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		}
		seen = true
		if c, ok := strings.CutPrefix(line, ":"); ok {
			ev.comment = strings.TrimPrefix(c, " ")
			// A comment is followed by a blank line in this server's output; report it alone.
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.event = value
		case "id":
			ev.id, ev.hasID = value, true
		case "data":
			data = append(data, value)
		case "retry":
			ev.retry = value
		default:
			return ev, fmt.Errorf("unknown field in line %q", line)
		}
	}
}

// next returns the next real event, skipping comments and retry hints.
func (s *sseStream) next(t testing.TB) event {
	t.Helper()
	for {
		ev, err := s.read()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if ev.comment != "" || ev.retry != "" && ev.event == "" && ev.data == "" {
			continue
		}
		return ev
	}
}

// expect reads len(want) events and compares them with want, each written as
// "event id data" with "-" for an absent event type.
func (s *sseStream) expect(t testing.TB, want ...string) {
	t.Helper()
	for i, w := range want {
		ev := s.next(t)
		kind := ev.event
		if kind == "" {
			kind = "-"
		}
		if got := kind + " " + ev.id + " " + ev.data; got != w {
			t.Fatalf("event %d: %q, want %q", i, got, w)
		}
	}
}

func TestSSEEvents(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ts.must(t, "POST", "/other", `0`) // seq 1

	prefix := ts.subscribe(t, "/r/", "")
	key := ts.subscribe(t, "/r/a", "")
	prefix.expect(t, `ready 1 {"seq":1}`)
	key.expect(t, `ready 1 {"seq":1}`)

	ts.must(t, "POST", "/r/a", "{\n  \"x\": 1,\n  \"big\": 12345678901234567890\n}") // 2
	ts.must(t, "POST", "/r/b/c?incr=5", "")                                          // 3
	ts.must(t, "POST", "/elsewhere", `1`)                                            // 4
	ts.must(t, "DELETE", "/r/a", "")                                                 // 5
	ts.must(t, "PUT", "/r/a", `"again"`, "X-Revision", "0")                          // 6
	ts.must(t, "DELETE", "/r/", "")                                                  // 7

	prefix.expect(t,
		`- /r/a:0:2 {"x":1,"big":12345678901234567890}`,
		`- /r/b/c:0:3 5`,
		`delete /r/a:1:5 null`,
		`- /r/a:0:6 "again"`,
		`delete /r/a:1:7 null`,
		`delete /r/b/c:1:7 null`,
	)
	key.expect(t,
		`- /r/a:0:2 {"x":1,"big":12345678901234567890}`,
		`delete /r/a:1:5 null`,
		`- /r/a:0:6 "again"`,
		`delete /r/a:1:7 null`,
	)
}

func TestSSESnapshot(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ts.must(t, "POST", "/s/a", `{"a":1}`) // 1
	ts.must(t, "POST", "/s/b/c", `2`)     // 2
	ts.must(t, "POST", "/t", `3`)         // 3
	ts.must(t, "POST", "/s/a", `4`)       // 4

	tests := []struct {
		name, path string
		want       []string
	}{
		{"prefix", "/s/?snapshot", []string{`- /s/a:1:4:s 4`, `- /s/b/c:0:2:s 2`, `ready 4 {"seq":4}`}},
		{"key", "/s/a?snapshot", []string{`- /s/a:1:4:s 4`, `ready 4 {"seq":4}`}},
		{"empty", "/u/?snapshot=1", []string{`ready 4 {"seq":4}`}},
		{"absent key", "/s/b?snapshot", []string{`ready 4 {"seq":4}`}},
	}
	streams := make([]*sseStream, len(tests))
	for i, tc := range tests {
		streams[i] = ts.subscribe(t, tc.path, "")
		streams[i].expect(t, tc.want...)
	}
	ts.must(t, "POST", "/s/a", `5`) // 5
	ts.must(t, "POST", "/u/v", `6`) // 6
	ts.must(t, "POST", "/s/b", `7`) // 7
	streams[0].expect(t, `- /s/a:2:5 5`, `- /s/b:0:7 7`)
	streams[1].expect(t, `- /s/a:2:5 5`)
	streams[2].expect(t, `- /u/v:0:6 6`)
	streams[3].expect(t, `- /s/b:0:7 7`)
}

func TestSSEResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// resume builds the request options from the last id seen.
		resume func(last string) (query string, hdr []string)
	}{
		{"last-event-id", func(last string) (string, []string) { return "", []string{"Last-Event-ID", last} }},
		{"since", func(last string) (string, []string) { return "?since=" + last, nil }},
		{"last-event-id wins over since", func(last string) (string, []string) {
			return "?since=1", []string{"Last-Event-ID", last}
		}},
	}
	for _, tc := range tests {
		for _, at := range []string{"change", "ready"} {
			t.Run(tc.name+" from "+at, func(t *testing.T) {
				t.Parallel()
				ts := newServer(t, hub.Config{}, web.Config{})
				ts.must(t, "POST", "/r/a", `1`) // 1
				s := ts.subscribe(t, "/r/", "")
				ready := s.next(t)
				last := ready.id
				if at == "ready" {
					s.close()
				}
				ts.must(t, "POST", "/r/a", `2`) // 2
				ts.must(t, "POST", "/r/b", `3`) // 3
				if at == "change" {
					s.expect(t, `- /r/a:1:2 2`)
					last = "/r/a:1:2"
					s.close()
				}
				ts.must(t, "POST", "/x", `4`)       // 4
				ts.must(t, "POST", "/r/c", `5`)     // 5
				ts.must(t, "DELETE", "/r/", ``)     // 6
				ts.must(t, "POST", "/r/a?incr", ``) // 7

				query, hdr := tc.resume(last)
				r := ts.subscribe(t, "/r/"+query, "", hdr...)
				var want []string
				if at == "ready" {
					want = append(want, `- /r/a:1:2 2`, `- /r/b:0:3 3`)
				} else {
					want = append(want, `- /r/b:0:3 3`)
				}
				want = append(want, `- /r/c:0:5 5`, `delete /r/a:2:6 null`, `delete /r/b:1:6 null`,
					`delete /r/c:1:6 null`, `- /r/a:0:7 1`, `ready 7 {"seq":7}`)
				r.expect(t, want...)
				ts.must(t, "POST", "/r/d", `8`)
				r.expect(t, `- /r/d:0:8 8`)
			})
		}
	}

	t.Run("mid-commit", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, hub.Config{}, web.Config{})
		ts.must(t, "POST", "/p/a", `1`)
		ts.must(t, "POST", "/p/b", `2`)
		ts.must(t, "POST", "/p/c", `3`)
		ts.must(t, "DELETE", "/p/", ``) // 4: three events
		r := ts.subscribe(t, "/p/", "/p/b:1:4")
		r.expect(t, `delete /p/c:1:4 null`, `ready 4 {"seq":4}`)
	})
}

func TestSSEReset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, since string
	}{
		{"older than history", "1"},
		{"older change id", "/r/a:0:1"},
		{"snapshot entry", "/r/c:0:3:s"},
		{"from the future", "99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, hub.Config{HistorySize: 2}, web.Config{})
			ts.must(t, "POST", "/r/a", `1`) // 1
			ts.must(t, "POST", "/r/b", `2`) // 2
			ts.must(t, "POST", "/r/c", `3`) // 3
			ts.must(t, "POST", "/r/a", `4`) // 4
			ts.must(t, "POST", "/z", `5`)   // 5
			s := ts.subscribe(t, "/r/", tc.since)
			s.expect(t, `reset  {"seq":5}`, `- /r/a:1:4:s 4`, `- /r/b:0:2:s 2`, `- /r/c:0:3:s 3`, `ready 5 {"seq":5}`)
			ts.must(t, "POST", "/r/d", `6`)
			s.expect(t, `- /r/d:0:6 6`)
		})
	}
	t.Run("within history", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, hub.Config{HistorySize: 2}, web.Config{})
		ts.must(t, "POST", "/r/a", `1`)
		ts.must(t, "POST", "/r/b", `2`)
		ts.must(t, "POST", "/r/c", `3`)
		s := ts.subscribe(t, "/r/", "2")
		s.expect(t, `- /r/c:0:3 3`, `ready 3 {"seq":3}`)
	})
}

func TestSSEBadRequests(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	tests := []struct {
		name, path string
		hdr        []string
		code       string
	}{
		{"bad last-event-id", "/r/", []string{"Last-Event-ID", "nonsense"}, "invalid_position"},
		{"bad since", "/r/?since=/r/a:x:1", nil, "invalid_position"},
		{"bad fourth field", "/r/?since=/r/a:1:1:x", nil, "invalid_position"},
		{"bad path", "/r//", nil, "invalid_key"},
		{"dotted path", "/r.x/", nil, "invalid_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, r, err := ts.openStream(context.Background(), tc.path, tc.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			if s != nil {
				s.close()
				t.Fatal("got a stream")
			}
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if eb := errorBody(t, *r); eb.Code != tc.code {
				t.Errorf("code %q, want %q", eb.Code, tc.code)
			}
		})
	}
}

func TestSSEKeepAlive(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{KeepAlive: 5 * time.Millisecond})
	s := ts.subscribe(t, "/k/", "")
	s.expect(t, `ready 0 {"seq":0}`)
	for {
		ev, err := s.read()
		if err != nil {
			t.Fatal(err)
		}
		if ev.comment == "keep-alive" {
			break
		}
		t.Fatalf("unexpected %+v before a keep-alive", ev)
	}
	ts.must(t, "POST", "/k/a", `1`)
	s.expect(t, `- /k/a:0:1 1`)
}

func TestSSEDrain(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	streams := []*sseStream{ts.subscribe(t, "/d/", ""), ts.subscribe(t, "/d/k", ""), ts.subscribe(t, "/", "", bearer(testAdminToken)...)}
	for _, s := range streams {
		s.next(t)
	}
	ts.must(t, "POST", "/d/k", `1`)
	ts.hub.Drain()
	for i, s := range streams {
		s.expect(t, `- /d/k:0:1 1`)
		var close event
		for {
			ev, err := s.read()
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if ev.retry != "" && ev.event == "" {
				continue // a shorter reconnect hint may come first
			}
			close = ev
			break
		}
		if close.event != "close" || close.data != `{"reason":"shutdown"}` || close.hasID {
			t.Errorf("stream %d ends with %+v, want close shutdown", i, close)
		}
		if _, err := s.read(); err != io.EOF {
			t.Errorf("stream %d after close: %v, want EOF", i, err)
		}
	}
	r := ts.do(t, "GET", "/d/", "", "Accept", "text/event-stream")
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("subscribing while draining: %d %s", r.status, r.body)
	}
	errorBody(t, r)
}

// TestSSESlowConsumer lets a client stop reading while writers keep writing: the writers are never
// blocked, the stream ends with close "slow" after every event it took, and the client resumes
// from its last id without a gap.
func TestSSESlowConsumer(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{QueueSize: 4}, web.Config{WriteTimeout: time.Minute})
	s := ts.subscribe(t, "/slow/", "")
	s.expect(t, `ready 0 {"seq":0}`)

	big := `"` + strings.Repeat("x", 64<<10) + `"`
	n := 0
	for ts.hub.Subscribers() > 0 {
		if n == 10_000 {
			t.Fatal("the subscriber was never closed as slow")
		}
		n++
		ts.must(t, "POST", fmt.Sprintf("/slow/k%d", n), big)
	}
	for range 3 { // writers keep going
		n++
		ts.must(t, "POST", fmt.Sprintf("/slow/k%d", n), big)
	}

	seen := 0
	last := ""
	for {
		ev := s.next(t)
		if ev.event == "close" {
			if ev.data != `{"reason":"slow"}` {
				t.Fatalf("close %+v, want reason slow", ev)
			}
			break
		}
		seen++
		if want := fmt.Sprintf("/slow/k%d:0:%d", seen, seen); ev.id != want || ev.data != big {
			t.Fatalf("event %q (%d bytes), want %q", ev.id, len(ev.data), want)
		}
		last = ev.id
	}
	if _, err := s.read(); err != io.EOF {
		t.Fatalf("after close: %v, want EOF", err)
	}
	if seen == n {
		t.Fatalf("saw all %d events before the close", n)
	}
	t.Logf("closed as slow after %d of %d events", seen, n)

	r := ts.subscribe(t, "/slow/", last)
	for seen < n {
		ev := r.next(t)
		seen++
		if want := fmt.Sprintf("/slow/k%d:0:%d", seen, seen); ev.id != want {
			t.Fatalf("replayed %q, want %q", ev.id, want)
		}
	}
	r.expect(t, fmt.Sprintf(`ready %d {"seq":%d}`, n, n))
}

// TestSSESlowConsumerBytes: a client that stops reading while 1 MiB values are written is closed
// as slow once its queue holds QueueBytes, far below QueueSize events, and resumes without a gap.
func TestSSESlowConsumerBytes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{QueueBytes: 4 << 20}, web.Config{WriteTimeout: time.Minute})
	s := ts.subscribe(t, "/big/", "")
	s.expect(t, `ready 0 {"seq":0}`)

	big := `"` + strings.Repeat("x", 1<<20-2) + `"` // the largest JSON value
	n := 0
	for ts.hub.Subscribers() > 0 {
		if n == 200 {
			t.Fatal("the subscriber was never closed as slow")
		}
		n++
		ts.must(t, "POST", fmt.Sprintf("/big/k%d", n), big)
	}
	seen, last := 0, ""
	for {
		ev := s.next(t)
		if ev.event == "close" {
			if ev.data != `{"reason":"slow"}` {
				t.Fatalf("close %+v, want reason slow", ev)
			}
			break
		}
		seen++
		if want := fmt.Sprintf("/big/k%d:0:%d", seen, seen); ev.id != want || ev.data != big {
			t.Fatalf("event %q (%d bytes), want %q", ev.id, len(ev.data), want)
		}
		last = ev.id
	}
	if seen == n {
		t.Fatalf("saw all %d events before the close", n)
	}
	t.Logf("closed as slow after %d of %d events", seen, n)
	r := ts.subscribe(t, "/big/", last)
	for seen < n {
		ev := r.next(t)
		seen++
		if want := fmt.Sprintf("/big/k%d:0:%d", seen, seen); ev.id != want {
			t.Fatalf("replayed %q, want %q", ev.id, want)
		}
	}
	r.expect(t, fmt.Sprintf(`ready %d {"seq":%d}`, n, n))
}

// TestSSEClientGone checks that a stream whose client went away releases its subscription and
// its place among the open streams. No goroutine reads an idle stream's connection: on Linux one
// epoll watch sees the client leave at once (closewatch_linux.go); elsewhere the keep-alives find
// it gone (the first draws the peer's reset, the next fails), so the clock moves on there.
func TestSSEClientGone(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := newServer(t, hub.Config{}, web.Config{Clock: clock})
	s := ts.subscribe(t, "/g/", "")
	s.next(t)
	if ts.hub.Subscribers() != 1 {
		t.Fatalf("%d subscribers, want 1", ts.hub.Subscribers())
	}
	if n := openStreams(t, ts); n != 1 {
		t.Fatalf("statehub_open_streams{transport=sse} = %v, want 1", n)
	}
	s.close()
	waitFor(t, "the subscription to close", func() bool {
		if runtime.GOOS != "linux" {
			clock.Advance(web.DefaultKeepAlive)
		}
		return ts.hub.Subscribers() == 0
	})
	waitFor(t, "the open streams gauge to drop", func() bool { return openStreams(t, ts) == 0 })
}

// openStreams reads statehub_open_streams{transport="sse"} from /.metrics.
func openStreams(t *testing.T, ts *testServer) float64 {
	t.Helper()
	return value(t, scrape(t, ts), "statehub_open_streams", "transport", "sse")
}

// TestSSEIdleStreamsHaveNoGoroutine checks that a live stream with nothing to send has no
// goroutine: not the handler's, not one of its own. Not parallel: it counts the process's
// goroutines that run the server's stream code.
func TestSSEIdleStreamsHaveNoGoroutine(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	const n = 20
	conns := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", ts.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /idle/ HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n", testAdminToken)
		conns[i] = bufio.NewReader(c)
		readUntil(t, conns[i], "event: ready\n")
	}
	waitFor(t, "no goroutine in the stream code", func() bool { return streamGoroutines() == 0 })
	ts.must(t, "PUT", "/idle/k", `1`)
	for _, r := range conns {
		readUntil(t, r, "data: 1\n")
	}
	waitFor(t, "no goroutine in the stream code after a change", func() bool { return streamGoroutines() == 0 })
	if got := ts.hub.Subscribers(); got != n {
		t.Fatalf("%d subscribers, want %d", got, n)
	}
}

// streamGoroutines counts the goroutines whose stack is in the SSE stream code.
func streamGoroutines() int {
	return web.GoroutinesIn(`web\.\(\*sseStream\)|web\.\(\*Server\)\.stream\+`)
}

// readUntil reads lines from r until one equals line (with its newline).
func readUntil(t testing.TB, r *bufio.Reader, line string) {
	t.Helper()
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading until %q: %v", line, err)
		}
		if l == line {
			return
		}
	}
}

// TestSSEOverTLS checks streams over HTTP/2, which keep their handler, and over HTTP/1.1 on TLS,
// which are taken over from net/http like plain ones: events arrive, and a client that goes
// away releases the subscription at once.
func TestSSEOverTLS(t *testing.T) {
	t.Parallel()
	for _, proto := range []int{2, 1} {
		t.Run(fmt.Sprintf("HTTP/%d", proto), func(t *testing.T) {
			t.Parallel()
			h := hub.New(hub.Config{Logger: quiet})
			t.Cleanup(func() { h.Close() })
			srv := httptest.NewUnstartedServer(web.New(h, web.Config{Logger: quiet, Auth: protectedAuth(t)}).Handler())
			srv.EnableHTTP2 = proto == 2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/tls/", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+testAdminToken)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != proto || res.StatusCode != 200 {
				t.Fatalf("%s %d, want HTTP/%d 200", res.Proto, res.StatusCode, proto)
			}
			r := bufio.NewReader(res.Body)
			readUntil(t, r, "event: ready\n")
			if _, err := h.Set("/tls/k", []byte(`"v"`), hub.Cond{}, hub.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			readUntil(t, r, `data: "v"`+"\n")
			cancel()
			waitFor(t, "the subscription to close", func() bool { return h.Subscribers() == 0 })
		})
	}
}

// TestSSEWaitStreams checks that at shutdown (hub.Drain) the streams taken over from net/http
// send their close event and end, and WaitStreams returns then.
func TestSSEWaitStreams(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: quiet})
	t.Cleanup(func() { h.Close() })
	s := web.New(h, web.Config{Logger: quiet, Auth: protectedAuth(t)})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ts := &testServer{hub: h, srv: srv, client: srv.Client()}
	st := ts.subscribe(t, "/w/", "")
	st.expect(t, `ready 0 {"seq":0}`)
	h.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitStreams(ctx); err != nil {
		t.Fatalf("WaitStreams: %v", err)
	}
	st.expect(t, `close  {"reason":"shutdown"}`)
}

// TestSSEHead checks that a HEAD of a stream answers a GET's headers and no stream, and leaves
// no subscription behind; a HEAD the GET of which is refused is refused too.
func TestSSEHead(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	r := ts.do(t, "HEAD", "/h/", "", "Accept", "text/event-stream", "Authorization", "Bearer "+testAdminToken)
	if r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" || r.body != "" {
		t.Fatalf("HEAD: %d %q %q, want 200 text/event-stream and no body", r.status, r.header.Get("Content-Type"), r.body)
	}
	if n := ts.hub.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after a HEAD", n)
	}
	if r := ts.do(t, "HEAD", "/h/?since=x", "", "Accept", "text/event-stream", "Authorization", "Bearer "+testAdminToken); r.status != 400 {
		t.Fatalf("HEAD with a bad position: %d, want 400 as for a GET", r.status)
	}
}
