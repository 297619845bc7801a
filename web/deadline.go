package web

import (
	"bufio"
	"encoding/binary"
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// writeDeadline keeps a connection's write deadline between timeout and twice timeout ahead of
// each write: it is moved (set) only when less than timeout is left, so a stream that writes
// often moves it once per timeout, not once per write (BenchmarkFanout/SSE in this package).
type writeDeadline struct {
	set     func(time.Time) error
	timeout time.Duration
	at      time.Time // the deadline set last; zero when none is
}

// arm makes sure the next write has at least timeout to finish.
func (d *writeDeadline) arm() error {
	now := time.Now()
	if d.at.Sub(now) >= d.timeout {
		return nil
	}
	d.at = now.Add(2 * d.timeout)
	return d.set(d.at)
}

// lift removes the deadline: the connection may serve more requests.
func (d *writeDeadline) lift() {
	if !d.at.IsZero() {
		d.at = time.Time{}
		d.set(time.Time{})
	}
}

// corkConn is a WebSocket's connection under coder/websocket. The library writes its own frames
// (the handshake's answer, pings, pongs, the close frame) through Write, each whole in one write;
// the socket's writer adds its messages as text frames it makes itself (text). While the
// connection is corked, both gather in a buffer that uncork writes at once, so the messages queued
// for a socket leave in one write (BenchmarkFanout). Every write to the network has a deadline
// (writeDeadline): a peer that does not read fails it.
type corkConn struct {
	net.Conn

	mu        sync.Mutex // guards everything below; held across writes, so they never interleave
	corked    bool
	buf       []byte
	closeSent bool // the library has written a close frame: no message may follow it
	dl        writeDeadline
}

// wsKeepBuffer is the most a corked batch gathers before it is written, and the largest buffer
// a socket keeps between batches.
const wsKeepBuffer = 64 << 10

func newCorkConn(c net.Conn, timeout time.Duration) *corkConn {
	return &corkConn{Conn: c, dl: writeDeadline{set: c.SetWriteDeadline, timeout: timeout}}
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 && p[0] == wsCloseFrame {
		c.closeSent = true
	}
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.writeLocked(p)
}

func (c *corkConn) writeLocked(p []byte) (int, error) {
	if err := c.dl.arm(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// Close writes what the cork holds, then closes the connection: the library answers a peer's
// close frame and closes the connection at once, from its reading goroutine, whoever holds the
// cork, and that answer must still leave. A write in progress finishes first (its deadline
// bounds it), and so does this one.
func (c *corkConn) Close() error {
	c.mu.Lock()
	if len(c.buf) > 0 {
		c.writeLocked(c.buf)
		c.buf = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// The first byte of a close frame (FIN, opcode 8), and of a whole text message (FIN, opcode 1).
const (
	wsCloseFrame = 0x88
	wsTextFrame  = 0x81
)

// text adds p to the corked writes as one text message: a single unmasked frame (RFC 6455 §5.2),
// its payload's length in 7 bits, or 126 and 16 bits, or 127 and 64 bits. The library's Write
// takes two locks and touches its connection's state for each message: framing here saves about
// 13% of the server's CPU per delivery (bench/subscribers -fanout -fanout-only WebSocket). It
// fails once the library has written a close frame, after which the protocol allows no message.
// Only between cork and uncork.
func (c *corkConn) text(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	c.buf = appendTextFrame(c.buf, p)
	return nil
}

func appendTextFrame(b, p []byte) []byte {
	switch n := len(p); {
	case n < 126:
		b = append(b, wsTextFrame, byte(n))
	case n <= math.MaxUint16:
		b = append(b, wsTextFrame, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, wsTextFrame, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// cork holds every write back until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// buffered returns how many bytes the cork holds.
func (c *corkConn) buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

// uncork writes what the cork holds, in one write, and lets later writes through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.writeLocked(c.buf)
	if cap(c.buf) > wsKeepBuffer {
		c.buf = nil // a burst's memory goes back
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkHijacker hands websocket.Accept the request's connection as a corkConn.
type corkHijacker struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *corkConn     // set by Hijack
	br      *bufio.Reader // set by Hijack: the reader the library reads the connection through
}

func (h *corkHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	h.conn = newCorkConn(nc, h.timeout)
	brw.Writer.Reset(h.conn)
	h.br = brw.Reader
	return h.conn, brw, nil
}
