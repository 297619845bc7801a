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

// Listen announces on addr and returns the http.Server to serve the API on the returned listener
// (hs.Serve(ln)). The two belong together: the listener's connections are watched by a reaper
// that enforces Limits.ReadHeaderTimeout and Limits.IdleTimeout on the server's clock.
//
// The server sets none of net/http's timeouts. ReadHeaderTimeout and IdleTimeout would set a read
// deadline on the connection for every request, arming and stopping a runtime timer each time,
// which costs a keep-alive connection about 5% of its requests per second; the reaper instead
// stamps the connection's state and sweeps all connections a few times per timeout. WriteTimeout
// and ReadTimeout would end streams: streams set a deadline per write, and a body has its own
// (Limits.BodyTimeout).
func (s *Server) Listen(addr string) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	r := newReaper(s.cfg.Clock, s.cfg.Limits.ReadHeaderTimeout, s.cfg.Limits.IdleTimeout)
	hs := &http.Server{
		Addr:           ln.Addr().String(),
		Handler:        s.echo,
		ConnState:      r.connState,
		MaxHeaderBytes: 64 << 10,
	}
	return hs, &reapedListener{Listener: ln, r: r}, nil
}

// A connection's phase, kept in the low two bits of trackedConn.state.
const (
	phaseHeaders uint64 = iota // reading a request's headers: closed after ReadHeaderTimeout
	phaseIdle                  // waiting for the next request: closed after IdleTimeout
	phaseActive                // a request is being served: never closed by the reaper
	phaseClosed                // closed by the reaper
	phaseBits    = 2
	phaseMask    = 1<<phaseBits - 1
)

// reaper closes the connections that take too long to send their headers or stay idle too long:
// what net/http's ReadHeaderTimeout and IdleTimeout do, without a read deadline per request.
//
// A connection's phase follows net/http's ConnState: a new connection reads headers; Active
// serves a request (its body has its own deadline, a stream its write deadlines); Idle waits for
// the next request, and the first byte of that request (seen by trackedConn.Read) starts its
// header phase. Hijacked connections (WebSockets) and closed ones leave the reaper.
//
// Each phase is stamped with the clock's time when it begins; a sweep every sweepEvery closes the
// connections whose phase has lasted longer than its limit, so a connection is closed at most
// sweepEvery (a quarter of the shorter limit, at most a second) after its limit.
type reaper struct {
	clock      hub.Clock
	epoch      time.Time
	header     time.Duration
	idle       time.Duration
	sweepEvery time.Duration

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	stop    func() bool
	stopped bool
}

func newReaper(clock hub.Clock, header, idle time.Duration) *reaper {
	r := &reaper{clock: clock, epoch: clock.Now(), header: header, idle: idle, conns: map[*trackedConn]struct{}{}}
	r.sweepEvery = min(time.Second, max(time.Millisecond, min(header, idle)/4))
	r.stop = clock.AfterFunc(r.sweepEvery, r.sweep)
	return r
}

// stamp packs phase p with the time it begins, in nanoseconds since the reaper began.
func (r *reaper) stamp(p uint64) uint64 {
	return uint64(r.clock.Now().Sub(r.epoch))<<phaseBits | p
}

// connState is the http.Server's ConnState hook.
func (r *reaper) connState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*trackedConn)
	if !ok {
		return // not from the reapedListener
	}
	switch state {
	case http.StateNew:
		c.state.Store(r.stamp(phaseHeaders))
		r.mu.Lock()
		r.conns[c] = struct{}{}
		r.mu.Unlock()
	case http.StateActive:
		c.state.Store(phaseActive)
	case http.StateIdle:
		c.state.Store(r.stamp(phaseIdle))
	case http.StateHijacked, http.StateClosed:
		c.state.Store(phaseClosed)
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}
}

// sweep closes the connections over their phase's limit, then schedules the next sweep.
func (r *reaper) sweep() {
	now := uint64(r.clock.Now().Sub(r.epoch))
	var over []*trackedConn
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	for c := range r.conns {
		s := c.state.Load()
		var limit time.Duration
		switch s & phaseMask {
		case phaseHeaders:
			limit = r.header
		case phaseIdle:
			limit = r.idle
		default:
			continue
		}
		// The phase may change between Load and here; the swap closes the connection only if
		// it is still in the phase, and since the time, that was judged.
		if since := s >> phaseBits; now >= since && now-since >= uint64(limit) && c.state.CompareAndSwap(s, phaseClosed) {
			delete(r.conns, c)
			over = append(over, c)
		}
	}
	r.stop = r.clock.AfterFunc(r.sweepEvery, r.sweep)
	r.mu.Unlock()
	for _, c := range over {
		c.Conn.Close()
	}
}

// close ends the sweeps. The connections are the http.Server's to close.
func (r *reaper) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.stopped = true
		r.stop()
	}
}

// reapedListener hands its connections to the reaper; closing it (as http.Server's Shutdown and
// Close do) ends the reaper's sweeps.
type reapedListener struct {
	net.Listener
	r    *reaper
	once sync.Once
}

func (l *reapedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: nc, r: l.r}, nil
}

func (l *reapedListener) Close() error {
	l.once.Do(l.r.close)
	return l.Listener.Close()
}

// trackedConn is a connection the reaper watches.
type trackedConn struct {
	net.Conn
	state atomic.Uint64 // the stamp of its phase (reaper.stamp)
	r     *reaper
}

// Read starts the header phase when the first bytes of a request arrive on an idle connection.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if s := c.state.Load(); s&phaseMask == phaseIdle {
			c.state.CompareAndSwap(s, c.r.stamp(phaseHeaders))
		}
	}
	return n, err
}

// CloseWrite and ReadFrom pass on what the wrapped *net.TCPConn offers and net/http looks for: a
// half close, so a client reads an error answer before the connection ends, and sendfile.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}
