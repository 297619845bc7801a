package web

// The WebSocket endpoint, /.ws (PROTOCOL.md, "WebSocket").
//
// One connection multiplexes every operation. A text frame is one JSON request
// {"op", "id", ...}; the answer carries the same id and either "ok": true with the result fields,
// or "error", "code" and "status": the code and HTTP status the same failure has over HTTP (one
// mapping, classify). A frame that is not JSON, an unknown op or a bad field gets an error answer
// with status 400; the connection stays open. Answers leave in request order and a connection's
// writes apply in the order it sent them: writes are pipelined, applied as they arrive while the
// earlier ones wait for their fsync, and answered once durable; other requests first wait for
// every earlier answer (ws_pipeline.go).
//
// Subscriptions ("sub") have the semantics of SSE streams: the answer {"seq"} first, then an
// optional reset, the replay or snapshot entries ("snapshot": true), "ready", then live changes,
// each event tagged with "sub": the id of the sub request. When a subscription's hub queue
// overflows it ends with {"type":"close","reason":"slow"} and the client subscribes again with
// "since"; "unsub" and the end of the connection close the hub subscriptions.
//
// One writer at a time writes every outgoing message: a goroutine that runs only while there is
// something to write, the reader for the answers it gave at once, or the answer goroutine for the
// last answer waiting (ws_pipeline.go). It writes the answers, from one queue bounded in messages
// and in bytes, and the subscriptions' events, from their hub queues (ws_events.go). What it finds
// to write when it runs leaves in one write to the connection (corkConn), which has a deadline
// (writeDeadline). A consumer that leaves the answers' queue full for WriteTimeout is closed with
// status 4000, reason "slow"; a subscription whose hub queue overflows ends with reason "slow"
// (above); a ping every 20 s closes a peer that stopped answering. At shutdown (hub.Drain) every
// subscription gets {"type":"close","reason":"shutdown"} and the socket is closed with 1001 (going
// away); the client reconnects and resumes.
//
// Broadcasts: "broadcast" {"path","msg"} sends a message to the subscriptions of path and of the
// prefixes above it, on every connection, as {"sub","type":"broadcast","path","msg"}, never stored
// and without a seq (broadcast.go); each connection has its own rate bucket.
//
// Ephemeral keys (presence): "set" or "cas" with "ephemeral": true writes a key owned by this
// connection's hub.Session, recording its presence (the token's subject and the session's
// connection id, which auth, hello and ephemeral writes answer as "conn"). When the connection is
// gone for longer than the hub's EphemeralGrace (default 10 s) the key is deleted, its delete
// event saying who left and why (leaveReason: "closed" after a close handshake, "timeout"
// otherwise), unless it was written again meanwhile: an ephemeral write from a new connection
// (the client re-sends its ephemeral keys when it reconnects) takes ownership over, and a plain
// write makes it an ordinary key. "ondisconnect" registers a write the hub makes once the
// connection has been gone for the grace period (ondisconnect.go); its events carry the same
// reason.
//
// Any origin may connect: authorization is by token (the first message, op "auth"), never by
// cookie, so a cross-site page gains nothing from the browser's ambient credentials. A later
// "auth" replaces the token; the connection closes when its token expires (tokenexpiry.go).

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// WebSocket tuning.
const (
	wsPingInterval = 20 * time.Second // keep-alive ping; no pong within WriteTimeout closes the connection
	wsQueueSize    = 256              // outgoing messages buffered per connection
	wsQueueBytes   = 4 << 20          // and the most bytes they hold (one message always fits)
	wsKeepQueue    = 16               // the most queued messages a socket keeps room for between runs of its writer
	wsMaxLockWaits = 64               // lock requests with a wait that may be waiting at once per connection
	wsReadSlack    = 64 << 10         // a request may be this much larger than the largest value
	keepEvents     = 256              // the most events a socket's or an SSE stream's writer keeps room for between runs
)

// wsConn is one WebSocket connection: its socket, its outgoing queue, its subscriptions and the
// session that owns its ephemeral keys.
//
// Goroutines: the handler returns once the socket is upgraded. serve runs the reader (requests are
// handled there, one at a time; a write's answer waits for durability on the answer goroutine,
// which runs while any waits). runWriter is the only writer of data frames, the subscriptions'
// events included (ws_events.go); wake runs it on a goroutine of its own while it has something to
// write, and writeOwn on the reader, for the answers the reader gave at once, when no goroutine
// runs it. A timer sends the pings (each on the timer's goroutine, while it waits for its pong),
// and a hook ends the connection when the hub drains. So an idle connection has one goroutine, the
// reader. serve waits for all of them before it gives up the connection's lease.
type wsConn struct {
	s    *Server
	ws   *websocket.Conn
	cork *corkConn // ws's connection
	// br is what ws reads the connection through: the reader writes its answers once br holds no
	// request (writeOwn). brMu guards it between reads: ws.Close reads the close handshake from it.
	br   *bufio.Reader
	brMu sync.Mutex
	req  *http.Request // the upgrade request
	// lease is the connection's place among the open streams and sockets, which it gives up at
	// teardown; nil when the limits do not count it.
	lease *connLease
	sess  *hub.Session
	// loopback: the client is on loopback (protected.go); on a protected server a request that
	// holds only the local principal is refused otherwise.
	loopback bool

	ctx     context.Context // canceled when the connection is torn down
	cancel  context.CancelFunc
	outMu   sync.Mutex    // guards out, outLen, outN, room, waiting and the writer's state below
	out     []wsOut       // the outgoing queue; the writer takes it whole
	outLen  int           // the messages in out and those the writer took but has not written yet
	outN    int           // and their bytes: queue bounds both
	room    chan struct{} // closed (and replaced) when the writer has written the messages a sender waits for
	waiting bool          // a sender waits on room
	// The writer runs on a goroutine of its own only while it has something to write (wake).
	running  bool          // a goroutine runs the writer, or the reader does (writeOwn)
	deferred bool          // the reader or the answer goroutine is queueing an answer it will write itself (writeOwn): wake does not start the writer
	woken    bool          // wake was called since the writer last looked
	over     bool          // the writer has closed the socket or failed, or teardown has begun: it never runs again
	pinger   *time.Timer   // the next keep-alive ping
	undrain  func() bool   // stops the hook that ends the connection when the hub drains
	stop     chan struct{} // closed by end: the writer stops (after flushing when flush is set)
	wg       sync.WaitGroup

	endOnce sync.Once
	ending  disconnect // set by end, before stop is closed
	flush   bool

	// Touched by the reader goroutine only (and teardown, after it).
	readErr error  // why the reader returned
	token   string // from the auth message; caller reads it
	seen    int    // requests received, to check that auth comes first

	// The connection's principal, resolved once by caller (again if token changes).
	authed    bool
	authToken string // the value of token principal was resolved for
	principal *auth.Principal
	authErr   error
	expiry    func() bool // stops the timer that closes the connection at principal's exp (tokenexpiry.go); nil when none

	lockWaits atomic.Int32 // lock requests with a wait running aside (at most wsMaxLockWaits)

	// The pipeline (ws_pipeline.go).
	slots     chan struct{} // one per waiting answer: the reader blocks when it is full
	pmu       sync.Mutex    // guards pend, answering and drained
	pend      []wsPending   // answers waiting for durability, in request order
	answering bool          // the answer goroutine runs: pend is not empty, or it is sending one
	drained   chan struct{} // closed when the answer goroutine returns, if a drain waits for it

	bcastRate *rate.Limiter // this connection's broadcasts (Limits.BroadcastRate); nil: no limit

	mu   sync.Mutex
	subs map[string]*wsSub // by the id of their sub request (its JSON text)

	// The writer's alone (ws_events.go).
	active  []*wsSub    // the subscriptions it has started and that have not ended
	batch   []wsOut     // the messages it took from out, which it writes
	scratch []byte      // the message it writes
	taken   []hub.Event // a subscription's events it writes
	due     []hub.Event // a throttled subscription's events it writes
}

// wsSub is one subscription of a connection.
type wsSub struct {
	id       json.RawMessage
	hs       *hub.Subscription
	throttle time.Duration // the sub's throttle interval (throttle.go); 0 for none
	th       *throttle     // the writer's: its throttle, nil for none

	ended disconnect // under the connection's mu: why reauth ended it, for its close event
}

// caller returns the connection's principal for the next request; the operations (ops.go)
// authorize each request with it, as over HTTP. The token is the auth message's (conn.token),
// else the upgrade request's (Authorization: Bearer or ?token=). It is resolved once per
// connection and kept on conn; a change of conn.token resolves it again. Only the reader
// goroutine calls it.
func (conn *wsConn) caller() (*auth.Principal, error) {
	if !conn.authed || conn.authToken != conn.token {
		conn.principal, conn.authErr = conn.s.wsPrincipal(conn)
		conn.authed, conn.authToken = true, conn.token
		if conn.authErr == nil {
			conn.armExpiry()
		}
	}
	return conn.principal, conn.authErr
}

// wsPrincipal resolves the token of a connection. An open server ignores tokens, well-formed or
// not, as principalOf does.
func (s *Server) wsPrincipal(conn *wsConn) (*auth.Principal, error) {
	if s.auth.Open() {
		return auth.OpenPrincipal(), nil
	}
	raw := conn.token
	var err error
	if raw == "" {
		raw, err = requestToken(conn.req)
	}
	return s.resolve(raw, err, conn.loopback)
}

// ws upgrades the request and returns: the connection runs on goroutines of its own (serve), not
// under net/http's and echo's frames, and keeps its place among the open streams and sockets
// (connLease) until it ends. So an idle socket's reader stays within 8 KiB of stack, as a bare
// coder/websocket handler's goroutine does (go run ./bench/subscribers -idle).
func (s *Server) ws(c echo.Context) error {
	// Any origin: access is by token, never by cookie (see the comment at the top of this file).
	hj := &corkHijacker{ResponseWriter: c.Response(), timeout: s.cfg.WriteTimeout}
	conn, err := websocket.Accept(hj, c.Request(), &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept has answered the request already
	}
	conn.SetReadLimit(int64(s.hub.Limits().MaxValueBytes) + wsReadSlack)
	// The request's context ends when the handler returns: the connection's is its own.
	ctx, cancel := context.WithCancel(context.Background())
	wc := &wsConn{
		s: s, ws: conn, cork: hj.conn, br: hj.br, req: c.Request(), loopback: s.fromLoopback(c), sess: s.hub.NewSession(),
		ctx: ctx, cancel: cancel,
		room: make(chan struct{}), stop: make(chan struct{}),
		slots: make(chan struct{}, wsMaxPipeline),
		subs:  make(map[string]*wsSub),
	}
	if l := s.cfg.Limits; l.BroadcastRate > 0 {
		wc.bcastRate = rate.NewLimiter(rate.Limit(l.BroadcastRate), l.BroadcastBurst)
	}
	if l, ok := c.Get(leaseKey).(*connLease); ok {
		l.keep()
		wc.lease = l
	}
	s.streams.Add(1)
	go wc.serve()
	return nil
}

// wake tells the writer that there is something to write: a queued message, a subscription's
// events (hub.SubscribeOptions.Notify), a throttle's due events, or end. It starts the writer on
// a goroutine when none runs it; it never blocks.
func (c *wsConn) wake() {
	c.outMu.Lock()
	c.woken = true
	start := !c.deferred && c.startLocked()
	c.outMu.Unlock()
	if start {
		go c.runWriter()
	}
}

// startLocked reports whether the caller is to start the writer's goroutine, and counts it.
func (c *wsConn) startLocked() bool {
	if c.running || c.over {
		return false
	}
	c.running = true
	c.wg.Add(1)
	return true
}

// writeOwn writes, on the caller's goroutine, what was queued when no writer runs. The reader calls
// it once it has no request buffered, or many answers queued, so that a burst of pipelined
// requests that are answered at once (memory-only writes) is answered in one write with no
// goroutine between the reader and the socket (bench/pipeline.sh, memory only); the answer
// goroutine once it has no answer left waiting. After end, the writer's goroutine closes the
// socket.
func (c *wsConn) writeOwn() {
	c.outMu.Lock()
	if !c.woken || c.running || c.over {
		c.outMu.Unlock()
		return
	}
	select {
	case <-c.stop:
		start := c.startLocked()
		c.outMu.Unlock()
		if start {
			go c.runWriter()
		}
		return
	default:
	}
	c.running, c.woken = true, false
	c.outMu.Unlock()
	if c.writeAll() != nil {
		c.halt()
		return
	}
	c.outMu.Lock()
	c.running = false
	start := c.woken && c.startLocked() // woken meanwhile
	c.outMu.Unlock()
	if start {
		go c.runWriter()
	}
}

// draining returns a context that ends when the hub starts shutting down (hub.Draining), for
// the sockets' hooks (context.AfterFunc): one goroutine of the server waits for the hub, none of
// each socket.
func (s *Server) draining() context.Context {
	s.drainOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.drainCtx = ctx
		go func() {
			<-s.hub.Draining()
			cancel()
		}()
	})
	return s.drainCtx
}

// allowBroadcast spends one of the connection's broadcast tokens (reader goroutine only).
func (c *wsConn) allowBroadcast(now time.Time) (time.Duration, bool) {
	if c.bcastRate == nil {
		return 0, true
	}
	return spend(c.bcastRate, now)
}

// serve reads the connection's requests until the socket fails or closes (the writer closes it
// after end), then tears the connection down. Meanwhile a ping goes out every wsPingInterval, and
// the hub's shutdown ends the connection.
func (c *wsConn) serve() {
	c.outMu.Lock()
	c.pinger = time.AfterFunc(wsPingInterval, c.ping)
	c.outMu.Unlock()
	c.undrain = context.AfterFunc(c.s.draining(), func() {
		// The hub has closed every subscription with ErrShutdown: their close events go out after
		// what is queued, then the socket closes.
		c.end(disconnectShutdown, true)
	})
	c.readLoop()
	c.teardown()
}

// teardown runs once the reader has returned: the writer runs no more, the session ends (its
// ephemeral keys start their grace period), every hub subscription is closed (no leak), every
// goroutine has returned, then the connection gives up its lease.
func (c *wsConn) teardown() {
	c.cancel()
	c.undrain()
	c.outMu.Lock()
	c.over = true
	c.pinger.Stop()
	c.outMu.Unlock()
	if c.expiry != nil {
		c.expiry()
	}
	c.sess.EndWith(c.leaveReason())
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for _, sb := range subs {
		sb.hs.Close()
	}
	c.wg.Wait()
	for _, sb := range c.active {
		sb.th.Stop()
	}
	c.ws.CloseNow()
	if c.lease != nil {
		c.lease.release()
	}
	c.s.streams.Done()
}

// end asks for the connection to close with d's code and reason: the writer stops (writing what is
// queued first when flush is set) and closes the socket. Only the first call counts.
func (c *wsConn) end(d disconnect, flush bool) {
	c.endOnce.Do(func() {
		c.ending, c.flush = d, flush
		close(c.stop)
		c.wake()
	})
}

func (c *wsConn) readLoop() {
	for {
		// No context: teardown, which ends c.ctx, runs after this loop; the socket's closing ends
		// a read. A context would cost the library a callback registered per message.
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.readErr = err
			return // the peer closed, the connection failed, or serve is closing it
		}
		c.handle(data)
		if c.idle() || c.queued() >= wsKeepQueue {
			c.writeOwn()
		}
	}
}

// leaveReason says how the connection ended, for its ephemeral keys' delete events (once the
// reader has returned): hub.ReasonClosed after a close handshake, the peer's or the server's
// (end), else hub.ReasonTimeout (a read error, a failed write or ping, which close the socket
// without a handshake).
func (c *wsConn) leaveReason() string {
	select {
	case <-c.stop:
		return hub.ReasonClosed
	default:
	}
	if websocket.CloseStatus(c.readErr) != -1 {
		return hub.ReasonClosed
	}
	return hub.ReasonTimeout
}

// runWriter is the connection's writer (it and writeOwn run one at a time): the queued
// messages in order, and the events of its subscriptions (ws_events.go). What it finds to write
// each time it looks leaves in one write to the connection (corkConn), or in writes of about
// wsKeepBuffer. It returns when it finds nothing more; wake starts it again. After end it writes
// what is queued when asked to, then closes the socket with the close handshake; the reader sees
// the close and serve tears the connection down. A failed write closes the socket at once.
//
// An idle socket has no writer goroutine, only its reader's: its 4 KiB of stack would be most of
// what an idle socket holds beyond a bare coder/websocket connection (go run
// ./bench/subscribers -idle).
func (c *wsConn) runWriter() {
	defer c.wg.Done()
	for {
		c.outMu.Lock()
		if !c.woken || c.over {
			c.running = false
			c.outMu.Unlock()
			return
		}
		c.woken = false
		c.outMu.Unlock()
		select {
		case <-c.stop:
			if !c.flush || c.writeAll() == nil {
				c.brMu.Lock()
				c.ws.Close(c.ending.code, c.ending.reason)
				c.brMu.Unlock()
			}
			c.halt()
			return
		default:
		}
		if c.writeAll() != nil {
			c.halt()
			return
		}
	}
}

// idle reports whether no request is buffered: the reader's next read waits for the peer.
func (c *wsConn) idle() bool {
	c.brMu.Lock()
	defer c.brMu.Unlock()
	return c.br.Buffered() == 0
}

// queued returns the number of messages queued and not yet written.
func (c *wsConn) queued() int {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.outLen
}

// halt stops the writer for good.
func (c *wsConn) halt() {
	c.outMu.Lock()
	c.over, c.running = true, false
	c.outMu.Unlock()
}

// writeAll writes the queued messages, then the subscriptions' events. A failed write closes the
// connection: the reader fails next and serve tears it down.
func (c *wsConn) writeAll() error {
	c.cork.cork()
	err := c.writeQueued()
	if err == nil {
		err = c.writeSubs()
	}
	if uerr := c.cork.uncork(); err == nil {
		err = uerr
	}
	if cap(c.scratch) > wsKeepBuffer {
		c.scratch = nil
	}
	if cap(c.taken) > keepEvents { // a burst's memory goes back, as the hub's queue's does
		c.taken = nil
	}
	if cap(c.due) > keepEvents {
		c.due = nil
	}
	if err != nil {
		c.ws.CloseNow()
	}
	return err
}

// writeQueued takes the queued messages and writes them, starting the subscriptions whose start
// it meets, until none is queued.
func (c *wsConn) writeQueued() error {
	for c.take() {
		n := 0
		for i, m := range c.batch {
			c.batch[i] = wsOut{}
			n += m.size()
			if err := c.writeMsg(m.body); err != nil {
				return err
			}
			if m.start != nil {
				if err := c.begin(m.start); err != nil {
					return err
				}
			}
		}
		c.wrote(len(c.batch), n)
	}
	return nil
}

// take moves the queued messages to c.batch, swapping the two slices. It reports false when none
// is queued.
func (c *wsConn) take() bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if len(c.out) == 0 {
		return false
	}
	if cap(c.batch) > wsKeepQueue { // a burst's memory goes back
		c.batch = nil
	}
	c.batch, c.out = c.out, c.batch[:0]
	return true
}

// wrote accounts for n messages of size bytes the writer has written, and wakes waiting senders.
func (c *wsConn) wrote(n, size int) {
	c.outMu.Lock()
	c.outLen -= n
	c.outN -= size
	if c.waiting {
		close(c.room)
		c.room, c.waiting = make(chan struct{}), false
	}
	c.outMu.Unlock()
}

// writeMsg adds one message to the cork, and writes what the cork holds to the connection once it
// reaches wsKeepBuffer. The connection's write deadline bounds every write (corkConn).
func (c *wsConn) writeMsg(b []byte) error {
	if err := c.cork.text(b); err != nil {
		return err
	}
	if c.cork.buffered() < wsKeepBuffer {
		return nil
	}
	err := c.cork.uncork()
	c.cork.cork()
	return err
}

// ping pings the peer, closes the socket when no pong comes within WriteTimeout, and arms the
// next ping. It runs on the ping timer's goroutine.
func (c *wsConn) ping() {
	c.outMu.Lock()
	if c.over {
		c.outMu.Unlock()
		return
	}
	c.wg.Add(1)
	c.outMu.Unlock()
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		c.ws.CloseNow()
		return
	}
	c.outMu.Lock()
	if !c.over {
		c.pinger.Reset(wsPingInterval)
	}
	c.outMu.Unlock()
}

// wsOut is one queued message, and, with start, a sub's answer, after which the writer starts
// the subscription's events.
type wsOut struct {
	body  []byte
	start *wsSub
}

func (m wsOut) size() int { return len(m.body) }

// send queues one message (queue).
func (c *wsConn) send(m []byte) bool { return c.queue(wsOut{body: m}) }

// queue queues one message and signals the writer. It waits while the queue is full
// (wsQueueSize messages not written yet, or m would take them past wsQueueBytes; an empty queue
// takes any message), up to WriteTimeout: a client that does not read for that long is closed as
// slow. It reports false when the connection is ending.
func (c *wsConn) queue(m wsOut) bool {
	var timeout <-chan time.Time
	for {
		c.outMu.Lock()
		if c.outLen == 0 || c.outLen < wsQueueSize && c.outN+m.size() <= wsQueueBytes {
			c.out = append(c.out, m)
			c.outLen++
			c.outN += m.size()
			c.outMu.Unlock()
			c.wake()
			return true
		}
		room := c.room
		c.waiting = true
		start := c.woken && c.startLocked() // the reader may have deferred the writer's start
		c.outMu.Unlock()
		if start {
			go c.runWriter()
		}
		if timeout == nil {
			t := time.NewTimer(c.s.cfg.WriteTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-room:
		case <-timeout:
			c.end(disconnectSlow, false)
			return false
		case <-c.stop:
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}
