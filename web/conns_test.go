package web

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
)

// reapedServer is a server from Listen on a fake clock, so the tests step through the reaper's
// limits without waiting for them.
type reapedServer struct {
	clock *hub.FakeClock
	ln    *reapedListener
	h     *hub.Hub
}

const (
	testHeaderTimeout = 10 * time.Second
	testIdleTimeout   = 60 * time.Second
)

func newReapedServer(t *testing.T) *reapedServer {
	t.Helper()
	clock := hub.NewFakeClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	h := hub.New(hub.Config{Logger: wsQuiet, Clock: clock})
	srv := New(h, Config{Logger: wsQuiet, Clock: clock, Limits: Limits{ReadHeaderTimeout: testHeaderTimeout, IdleTimeout: testIdleTimeout}})
	hs, ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if hs.ReadHeaderTimeout != 0 || hs.IdleTimeout != 0 || hs.ReadTimeout != 0 || hs.WriteTimeout != 0 {
		t.Fatalf("net/http timeouts set: header %v, idle %v, read %v, write %v", hs.ReadHeaderTimeout, hs.IdleTimeout, hs.ReadTimeout, hs.WriteTimeout)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	t.Cleanup(h.Close)
	return &reapedServer{clock: clock, ln: ln.(*reapedListener), h: h}
}

// phases counts the server's tracked connections by phase.
func (s *reapedServer) phases() map[uint64]int {
	r := s.ln.r
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[uint64]int{}
	for c := range r.conns {
		n[c.state.Load()&phaseMask]++
	}
	return n
}

// waitPhase polls until exactly want connections are in phase p, and none in another.
func (s *reapedServer) waitPhase(t *testing.T, p uint64, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := s.phases()
		if n[p] == want && len(n) <= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections by phase %v, want %d in phase %d", n, want, p)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *reapedServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A safety net only: every read below ends long before.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// answered reads one answer and checks it is 200.
func answered(t *testing.T, rd *bufio.Reader) {
	t.Helper()
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
}

// hungUp checks that the server closed the connection without answering.
func hungUp(t *testing.T, rd *bufio.Reader) {
	t.Helper()
	b, err := rd.ReadByte()
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("the connection is open; read %q", b)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("the server kept the connection")
	}
}

const (
	healthReq  = "GET /.health HTTP/1.1\r\nHost: x\r\n\r\n"
	halfHealth = "GET /.health HTTP/1.1\r\nHost: x\r\nX-Slow: "
)

// TestReaperHeaders: a connection has ReadHeaderTimeout to send its first request's headers.
func TestReaperHeaders(t *testing.T) {
	t.Parallel()
	s := newReapedServer(t)
	slow, slowRd := s.dial(t)
	send(t, slow, halfHealth)
	late, lateRd := s.dial(t)
	send(t, late, halfHealth)
	s.waitPhase(t, phaseHeaders, 2)

	s.clock.Advance(testHeaderTimeout - time.Millisecond)
	send(t, late, "1\r\n\r\n")
	answered(t, lateRd)

	s.clock.Advance(time.Millisecond + s.ln.r.sweepEvery)
	hungUp(t, slowRd)
	if n := s.phases(); n[phaseHeaders] != 0 {
		t.Fatalf("connections by phase %v after the header timeout", n)
	}
}

// TestReaperIdle: a keep-alive connection is closed after IdleTimeout without a request; a request
// before that keeps it.
func TestReaperIdle(t *testing.T) {
	t.Parallel()
	s := newReapedServer(t)
	c, rd := s.dial(t)
	send(t, c, healthReq)
	answered(t, rd)
	s.waitPhase(t, phaseIdle, 1)

	s.clock.Advance(testIdleTimeout - time.Millisecond)
	send(t, c, healthReq)
	answered(t, rd)
	s.waitPhase(t, phaseIdle, 1)

	// The idle time starts again after each request.
	s.clock.Advance(testIdleTimeout - time.Millisecond)
	if n := s.phases(); n[phaseIdle] != 1 {
		t.Fatalf("connections by phase %v before the idle timeout", n)
	}
	s.clock.Advance(time.Millisecond + s.ln.r.sweepEvery)
	hungUp(t, rd)
}

// TestReaperNextHeaders: the first byte of the next request on a kept-alive connection starts
// its header time, which is shorter than the idle time.
func TestReaperNextHeaders(t *testing.T) {
	t.Parallel()
	s := newReapedServer(t)
	c, rd := s.dial(t)
	send(t, c, healthReq)
	answered(t, rd)
	s.waitPhase(t, phaseIdle, 1)

	s.clock.Advance(testIdleTimeout / 2)
	send(t, c, halfHealth)
	s.waitPhase(t, phaseHeaders, 1)
	s.clock.Advance(testHeaderTimeout + s.ln.r.sweepEvery)
	hungUp(t, rd)
}

// TestReaperSparesRequests: a request being served (a stream, here) is never closed by the
// reaper, however long it lasts; a hijacked connection (a WebSocket) leaves the reaper.
func TestReaperSparesRequests(t *testing.T) {
	t.Parallel()
	s := newReapedServer(t)
	c, rd := s.dial(t)
	send(t, c, "GET /room/a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	res, err := http.ReadResponse(rd, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", res, err)
	}
	ws := (&wsServer{url: "ws://" + s.ln.Addr().String() + "/.ws"}).dial(t)
	s.waitPhase(t, phaseActive, 1) // the stream; the socket is no longer tracked

	s.clock.Advance(10 * testIdleTimeout)
	if _, err := s.h.Set("/room/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bufio.NewReader(res.Body)
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended: %v", err)
		}
		if strings.HasPrefix(line, "data: 1") {
			break
		}
	}
	if a := ws.call(map[string]any{"op": "get", "key": "/room/a"}); !a.OK {
		t.Fatalf("the socket's get: %s", a.raw)
	}
}
