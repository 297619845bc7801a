package web

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statehub/statehub/hub"
)

// connTimeouts enforces Limits.ReadHeaderTimeout and Limits.IdleTimeout on the server's
// connections in place of net/http, which arms a runtime timer for every request on a keep-alive
// connection: it sets, moves and clears a read deadline and reads the clock twice, a measurable
// part of an increment's time (README, Performance). Here each connection holds its deadline in
// one word, stamped from the time of the last sweep, and a sweep every tick closes the
// connections past theirs.
//
// A connection is timed while it waits for a request and while it reads the request's headers,
// never while a handler runs (a stream, a lock's long poll) nor once hijacked (a WebSocket):
//   - accepted: the header timeout, as net/http applies to a connection's first request;
//   - idle after an answer (http.StateIdle): the idle timeout, until the next request's first
//     byte arrives, and from that byte the header timeout;
//   - in a handler (http.StateActive), hijacked or closed: none.
//
// A deadline is met late by up to two ticks and never early: deadlines are stamped from the last
// sweep (at most a tick before the event) and a connection is closed only once a tick more than
// its timeout has passed. A request pipelined behind another, whose first bytes net/http already
// holds, is timed as idle.
type connTimeouts struct {
	header, idle time.Duration
	tick         time.Duration // between sweeps: a tenth of the shorter timeout, at most a second
	clock        hub.Clock
	now          atomic.Int64 // the last sweep's time, in Unix nanoseconds

	mu    sync.Mutex
	conns map[*timedConn]struct{}
	stop  func() bool // the next sweep's timer; nil once the listener is closed
}

// waiting marks a deadline stamped while the connection waits for a request's first byte: the
// lowest bit of a deadline, which is otherwise kept even.
const waiting = 1

func newConnTimeouts(header, idle time.Duration, clock hub.Clock) *connTimeouts {
	t := &connTimeouts{header: header, idle: idle, clock: clock, conns: make(map[*timedConn]struct{})}
	t.tick = min(time.Second, max(min(header, idle)/10, time.Millisecond))
	t.now.Store(clock.Now().UnixNano())
	t.stop = clock.AfterFunc(t.tick, t.sweep)
	return t
}

// deadline is the deadline of a timeout d that starts at the last sweep, with the waiting bit set
// as given.
func (t *connTimeouts) deadline(d time.Duration, flag int64) int64 {
	return (t.now.Load()+int64(d)+int64(t.tick))&^waiting | flag
}

// sweep closes the connections past their deadline and schedules the next sweep.
func (t *connTimeouts) sweep() {
	now := t.clock.Now().UnixNano()
	t.now.Store(now)
	var late []*timedConn
	t.mu.Lock()
	if t.stop == nil {
		t.mu.Unlock()
		return
	}
	for c := range t.conns {
		if d := c.deadline.Load(); d != 0 && now > d&^waiting {
			late = append(late, c)
			delete(t.conns, c)
		}
	}
	t.stop = t.clock.AfterFunc(t.tick, t.sweep)
	t.mu.Unlock()
	for _, c := range late {
		c.Conn.Close() // net/http's read fails, and it ends the connection
	}
}

// state follows net/http's connection states (http.Server.ConnState).
func (t *connTimeouts) state(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*timedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		c.deadline.Store(0)
	case http.StateIdle:
		c.deadline.Store(t.deadline(t.idle, waiting))
	case http.StateHijacked, http.StateClosed:
		c.deadline.Store(0)
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	}
}

// track times a newly accepted connection, with the header timeout.
func (t *connTimeouts) track(nc net.Conn) *timedConn {
	c := &timedConn{Conn: nc, t: t}
	c.deadline.Store(t.deadline(t.header, 0))
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return c
}

// close stops the sweeps once the listener is closed; a second call does nothing. net/http ends
// the connections still open (Shutdown, Close); until then they are not timed.
func (t *connTimeouts) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

// timedListener registers every accepted connection with its connTimeouts.
type timedListener struct {
	net.Listener
	t *connTimeouts
}

func (l *timedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.t.track(nc), nil
}

func (l *timedListener) Close() error {
	l.t.close()
	return l.Listener.Close()
}

// timedConn is an accepted connection with its deadline: Unix nanoseconds, 0 for none, the
// waiting bit set while it waits for a request's first byte.
type timedConn struct {
	net.Conn
	t        *connTimeouts
	deadline atomic.Int64
}

// Read moves a waiting connection from the idle timeout to the header timeout once bytes arrive.
func (c *timedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if d := c.deadline.Load(); d&waiting != 0 {
			c.deadline.CompareAndSwap(d, c.t.deadline(c.t.header, 0))
		}
	}
	return n, err
}

// ReadFrom keeps net/http's sendfile path for stored files (response.ReadFrom looks for it on
// the connection).
func (c *timedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite keeps net/http's graceful close of a connection it rejects.
func (c *timedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
