package web

// The WebSocket endpoint, /.ws (PROTOCOL.md, "WebSocket").
//
// One connection multiplexes every operation. A text frame is one JSON request
// {"op", "id", ...}; the answer carries the same id and either "ok": true with the result fields,
// or "error", "code" and "status": the code and HTTP status the same failure has over HTTP (one
// mapping, classify). A frame that is not JSON, an unknown op or a bad field gets an error answer
// with status 400; the connection stays open. Requests run one at a time in the order they
// arrive, so a connection's writes apply in the order it sent them.
//
// Subscriptions ("sub") have the semantics of SSE streams: the answer {"seq"} first, then an
// optional reset, the replay or snapshot entries ("snapshot": true), "ready", then live changes,
// each event tagged with "sub": the id of the sub request. When a subscription's hub queue
// overflows it ends with {"type":"close","reason":"slow"} and the client subscribes again with
// "since"; "unsub" and the end of the connection close the hub subscriptions.
//
// Every outgoing message goes through one queue, bounded in messages and in bytes, drained by one
// writer goroutine, with a deadline per write. A consumer that leaves the queue full for WriteTimeout is closed with status
// 4000, reason "slow"; a ping every 20 s closes a peer that stopped answering. At shutdown
// (hub.Drain) every subscription gets {"type":"close","reason":"shutdown"} and the socket is closed
// with 1001 (going away); the client reconnects and resumes.
//
// Ephemeral keys (presence): "set" or "cas" with "ephemeral": true writes a key owned by this
// connection's hub.Session. When the connection is gone for longer than the hub's EphemeralGrace
// (default 10 s) the key is deleted, with an ordinary delete event, unless it was written again
// meanwhile: an ephemeral write from a new connection (the client re-sends its ephemeral keys
// when it reconnects) takes ownership over, and a plain write makes it an ordinary key.
//
// Any origin may connect: authorization is by token (the first message, op "auth"), never by
// cookie, so a cross-site page gains nothing from the browser's ambient credentials. A later
// "auth" replaces the token; the connection closes when its token expires (tokenexpiry.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// WebSocket tuning.
const (
	wsPingInterval = 20 * time.Second // keep-alive ping; no pong within WriteTimeout closes the connection
	wsQueueSize    = 256              // outgoing messages buffered per connection
	wsQueueBytes   = 4 << 20          // and the most bytes they hold (one message always fits)
	wsMaxLockWaits = 64               // lock requests with a wait that may be waiting at once per connection
	wsReadSlack    = 64 << 10         // a request may be this much larger than the largest value
)

// wsConn is one WebSocket connection: its socket, its outgoing queue, its subscriptions and the
// session that owns its ephemeral keys.
//
// Goroutines: serve runs the reader (requests are handled there, one at a time); writeLoop is the
// only writer of data frames; keepAlive pings and watches for shutdown; each subscription has a
// pump that moves its events into the queue. serve waits for all of them before it returns.
type wsConn struct {
	s    *Server
	ws   *websocket.Conn
	req  *http.Request // the upgrade request
	sess *hub.Session

	ctx     context.Context // canceled when the connection is torn down
	cancel  context.CancelFunc
	out     chan []byte   // the bounded outgoing queue
	outMu   sync.Mutex    // guards outN, room and waiting
	outN    int           // bytes of the messages in out
	room    chan struct{} // closed (and replaced) when the writer takes a message a sender waits for
	waiting bool          // a sender waits on room
	stop    chan struct{} // closed by end: the writer stops (after flushing when flush is set)
	wdone   chan struct{} // closed when the writer has returned
	wg      sync.WaitGroup

	endOnce sync.Once
	ending  disconnect // set by end, before stop is closed
	flush   bool

	// Touched by the reader goroutine only.
	token string // from the auth message; caller reads it
	seen  int    // requests received, to check that auth comes first

	// The connection's principal, resolved once by caller (again if token changes).
	authed    bool
	authToken string // the value of token principal was resolved for
	principal *Principal
	authErr   error
	expiry    func() bool // stops the timer that closes the connection at principal's exp (tokenexpiry.go); nil when none

	lockWaits atomic.Int32 // lock requests with a wait running aside (at most wsMaxLockWaits)

	mu   sync.Mutex
	subs map[string]*wsSub // by the id of their sub request (its JSON text)
}

// wsSub is one subscription of a connection.
type wsSub struct {
	id   json.RawMessage
	hs   *hub.Subscription
	done chan struct{} // closed when its pump has returned

	ended disconnect // under the connection's mu: why reauth ended it, for its close event
}

// caller returns the connection's principal for the next request; the operations (ops.go)
// authorize each request with it, as over HTTP. The token is the auth message's (conn.token),
// else the upgrade request's (Authorization: Bearer or ?token=). It is resolved once per
// connection and kept on conn; a change of conn.token resolves it again. Only the reader
// goroutine calls it.
func (conn *wsConn) caller() (*Principal, error) {
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
func (s *Server) wsPrincipal(conn *wsConn) (*Principal, error) {
	if s.auth.Open() {
		return openPrincipal, nil
	}
	raw := conn.token
	if raw == "" {
		var err error
		if raw, err = requestToken(conn.req); err != nil {
			return nil, err
		}
	}
	return s.authenticate(raw)
}

// ws upgrades the request and serves the connection until it ends.
func (s *Server) ws(c echo.Context) error {
	// Any origin: access is by token, never by cookie (see the comment at the top of this file).
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept has answered the request already
	}
	conn.SetReadLimit(int64(s.hub.Limits().MaxValueBytes) + wsReadSlack)
	ctx, cancel := context.WithCancel(c.Request().Context())
	wc := &wsConn{
		s: s, ws: conn, req: c.Request(), sess: s.hub.NewSession(),
		ctx: ctx, cancel: cancel,
		out: make(chan []byte, wsQueueSize), room: make(chan struct{}), stop: make(chan struct{}), wdone: make(chan struct{}),
		subs: make(map[string]*wsSub),
	}
	wc.serve()
	return nil
}

func (c *wsConn) serve() {
	c.wg.Add(2)
	go c.writeLoop()
	go c.keepAlive()
	rdone := make(chan struct{})
	go func() {
		defer close(rdone)
		c.readLoop()
	}()
	select {
	case <-rdone:
	case <-c.stop:
		<-c.wdone
		c.ws.Close(c.ending.code, c.ending.reason)
		<-rdone
	}
	c.teardown()
}

// teardown runs once the reader has returned: the session ends (its ephemeral keys start their
// grace period), every hub subscription is closed (no leak) and every goroutine has returned.
func (c *wsConn) teardown() {
	c.cancel()
	if c.expiry != nil {
		c.expiry()
	}
	c.sess.End()
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for _, sb := range subs {
		sb.hs.Close()
	}
	c.wg.Wait()
	c.ws.CloseNow()
}

// end asks for the connection to close with d's code and reason: the writer stops (writing what is
// queued first when flush is set), then serve closes the socket. Only the first call counts.
func (c *wsConn) end(d disconnect, flush bool) {
	c.endOnce.Do(func() {
		c.ending, c.flush = d, flush
		close(c.stop)
	})
}

func (c *wsConn) readLoop() {
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return // the peer closed, the connection failed, or serve is closing it
		}
		c.handle(data)
	}
}

// writeLoop is the connection's only writer of messages, each with its own deadline.
func (c *wsConn) writeLoop() {
	defer c.wg.Done()
	defer close(c.wdone)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.stop:
			for c.flush {
				select {
				case m := <-c.out:
					c.took(m)
					if !c.write(m) {
						return
					}
				default:
					return
				}
			}
			return
		case m := <-c.out:
			c.took(m)
			if !c.write(m) {
				return
			}
		}
	}
}

// took accounts for a message the writer has taken from the queue, and wakes waiting senders.
func (c *wsConn) took(m []byte) {
	c.outMu.Lock()
	c.outN -= len(m)
	if c.waiting {
		close(c.room)
		c.room, c.waiting = make(chan struct{}), false
	}
	c.outMu.Unlock()
}

func (c *wsConn) write(m []byte) bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, m); err != nil {
		c.ws.CloseNow() // the reader fails next and serve tears the connection down
		return false
	}
	return true
}

// keepAlive pings the peer and ends the connection when the hub shuts down.
func (c *wsConn) keepAlive() {
	defer c.wg.Done()
	t := time.NewTicker(wsPingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.ws.CloseNow()
				return
			}
		case <-c.s.hub.Draining():
			// The hub has closed every subscription with ErrShutdown; once each pump has queued its
			// close event, flush the queue and close the socket.
			c.mu.Lock()
			var pumps []chan struct{}
			for _, sb := range c.subs {
				pumps = append(pumps, sb.done)
			}
			c.mu.Unlock()
			for _, done := range pumps {
				select {
				case <-done:
				case <-c.ctx.Done():
					return
				}
			}
			c.end(disconnectShutdown, true)
			return
		}
	}
}

// send queues one message. It waits while the queue is full (wsQueueSize messages, or m would take
// it past wsQueueBytes; an empty queue takes any message), up to WriteTimeout: a client that does
// not read for that long is closed as slow. It reports false when the connection is ending.
func (c *wsConn) send(m []byte) bool {
	var timeout <-chan time.Time
	for {
		c.outMu.Lock()
		if c.outN == 0 || c.outN+len(m) <= wsQueueBytes {
			select {
			case c.out <- m:
				c.outN += len(m)
				c.outMu.Unlock()
				return true
			default:
			}
		}
		room := c.room
		c.waiting = true
		c.outMu.Unlock()
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

// wsRequest is every field a request may carry (PROTOCOL.md, WebSocket).
type wsRequest struct {
	ID        json.RawMessage `json:"id"`
	Op        string          `json:"op"`
	Token     string          `json:"token"`
	Key       string          `json:"key"`
	Path      string          `json:"path"`
	Value     json.RawMessage `json:"value"`
	Revision  *int64          `json:"revision"`
	TTL       *string         `json:"ttl"`
	Ephemeral bool            `json:"ephemeral"`
	Idem      string          `json:"idem"`
	By        *int64          `json:"by"`
	Limit     int             `json:"limit"`
	Cursor    string          `json:"cursor"`
	Keys      bool            `json:"keys"`
	Children  bool            `json:"children"`
	Since     string          `json:"since"`
	Snapshot  bool            `json:"snapshot"`
	Sub       json.RawMessage `json:"sub"`
	Owner     string          `json:"owner"`
	Wait      *string         `json:"wait"`
	Checks    []TxCheck       `json:"checks"`
	Ops       []TxOp          `json:"ops"`
}

// decodeWSMessage parses one request. On an error it still returns the id when it could be read,
// so the error answer can carry it.
func decodeWSMessage(data []byte) (wsRequest, error) {
	var req wsRequest
	err := json.Unmarshal(data, &req)
	id := req.ID
	req.ID = nil
	if len(id) > 0 && string(id) != "null" {
		if !validID(id) {
			return req, badRequest("invalid_id", "id must be a number or a string of valid UTF-8")
		}
		req.ID = compactJSON(id)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return req, badRequest("bad_message", "the message is not JSON: "+err.Error())
	case !utf8.Valid(data):
		// JSON is UTF-8. encoding/json turns invalid bytes in string fields into U+FFFD and keeps
		// them in raw ones (value), so the message is checked as a whole: ErrInvalidValue, 400.
		return req, hub.CheckUTF8("the message", data)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return req, badRequest("bad_message", "a message must be a JSON object")
		}
		return req, badRequest("bad_field", "field "+typ.Field+" must be a "+typ.Type.String()+", not a JSON "+typ.Value)
	case err != nil:
		return req, badRequest("bad_message", err.Error())
	case req.Op == "":
		return req, badRequest("unknown_op", "the message has no op")
	}
	return req, nil
}

// validID accepts a JSON number or string. The id is echoed as it came, so it must be UTF-8.
func validID(id json.RawMessage) bool {
	if !utf8.Valid(id) {
		return false
	}
	var v any
	if json.Unmarshal(id, &v) != nil {
		return false
	}
	switch v.(type) {
	case float64, string:
		return true
	}
	return false
}

func compactJSON(raw []byte) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	return b.Bytes()
}

// wsAnswer is the answer to a request: OK with result fields, or an error.
type wsAnswer struct {
	ID       json.RawMessage  `json:"id,omitempty"`
	OK       bool             `json:"ok,omitempty"`
	Error    string           `json:"error,omitempty"`
	Code     string           `json:"code,omitempty"`
	Status   int              `json:"status,omitempty"`
	Key      string           `json:"key,omitempty"`
	Value    json.RawMessage  `json:"value,omitempty"`
	Revision *int64           `json:"revision,omitempty"`
	Seq      *uint64          `json:"seq,omitempty"`
	Deleted  *int             `json:"deleted,omitempty"`
	Entries  []ListEntry      `json:"entries,omitzero"`
	Cursor   string           `json:"cursor,omitempty"`
	Replayed bool             `json:"replayed,omitempty"`
	Token    string           `json:"token,omitempty"` // lock, renew
	Fence    uint64           `json:"fence,omitempty"`
	Expires  string           `json:"expires,omitempty"` // a lock's expiry, RFC 3339 in UTC, as over HTTP
	Owner    *string          `json:"owner,omitempty"`
	Results  []hub.TxOpResult `json:"results,omitzero"` // tx, as POST /.tx answers
}

func (c *wsConn) answer(a wsAnswer) {
	b, err := json.Marshal(a)
	if err != nil { // cannot happen: every field is already valid JSON
		c.s.log.Error("encoding a websocket answer", "err", err)
		return
	}
	c.send(b)
}

// fail answers a request with err, mapped to status and code exactly as over HTTP.
func (c *wsConn) fail(id json.RawMessage, err error) {
	status, body := errorBody(err)
	if status >= 500 {
		c.s.log.Error("websocket request failed", "err", err)
	}
	a := wsAnswer{ID: id, Error: body.Error, Code: body.Code, Status: status, Key: body.Key, Revision: body.Revision,
		Owner: body.Owner, Expires: body.Expires}
	c.answer(a)
}

func okResult(id json.RawMessage, res hub.Result) wsAnswer {
	return wsAnswer{ID: id, OK: true, Key: res.Key, Revision: &res.Revision, Seq: &res.Seq, Replayed: res.Replayed}
}

// handle runs one request and queues its answer.
func (c *wsConn) handle(data []byte) {
	c.seen++
	req, err := decodeWSMessage(data)
	if err == nil {
		err = c.run(req)
	}
	if err != nil {
		c.fail(req.ID, err)
	}
}

// run decodes a request into its operation (ops.go), runs it and queues the answer, or returns an
// error to answer.
func (c *wsConn) run(req wsRequest) error {
	id := req.ID
	if req.Op == "auth" {
		if c.seen != 1 {
			return c.reauth(id, req.Token) // a fresh token before the old one expires
		}
		c.token = req.Token
		if _, err := c.caller(); err != nil {
			// The client treats a refused token as fatal: answer, then close. Requests read
			// meanwhile are refused with the same error.
			c.fail(id, err)
			c.end(disconnectUnauthorized, true)
			return nil
		}
		c.answer(wsAnswer{ID: id, OK: true})
		return nil
	}
	p, err := c.caller()
	if err != nil {
		return err
	}
	s := c.s
	switch req.Op {
	case "get":
		e, err := s.opGet(p, req.Key)
		if err != nil {
			return err
		}
		c.answer(wsAnswer{ID: id, OK: true, Key: e.Key, Value: e.Value, Revision: &e.Revision, Seq: &e.Seq})

	case "set", "cas":
		var cond hub.Cond
		if req.Op == "cas" {
			if req.Revision == nil || *req.Revision < 0 {
				return badRequest("invalid_revision", "cas needs revision: the current revision + 1, or 0 to create")
			}
			cond.NextRevision = req.Revision
		}
		opt, err := wsWriteOptions(req)
		if err != nil {
			return err
		}
		if req.Ephemeral {
			opt.Session = c.sess
		}
		res, err := s.opSet(p, setRequest{Key: req.Key, Value: bytes.NewReader(req.Value), Cond: cond, Options: opt})
		if err != nil {
			return err
		}
		c.answer(okResult(id, res))

	case "delete":
		path := req.Key
		if path == "" {
			path = req.Path
		}
		opt, err := wsWriteOptions(req)
		if err != nil {
			return err
		}
		var cond hub.Cond
		if req.Revision != nil {
			if *req.Revision < 0 {
				return badRequest("invalid_revision", "revision must be a non-negative integer")
			}
			cond.Revision = req.Revision
		}
		res, err := s.opDelete(p, path, cond, opt)
		if err != nil {
			return err
		}
		if hub.IsPrefix(path) {
			c.answer(wsAnswer{ID: id, OK: true, Deleted: &res.Deleted, Seq: &res.Seq, Replayed: res.Replayed})
			return nil
		}
		c.answer(okResult(id, res))

	case "incr":
		by := int64(1)
		if req.By != nil {
			by = *req.By
		}
		opt, err := wsWriteOptions(req)
		if err != nil {
			return err
		}
		res, err := s.opIncr(p, req.Key, by, opt)
		if err != nil {
			return err
		}
		a := okResult(id, res)
		a.Value = res.Value
		c.answer(a)

	case "list":
		page, err := s.opList(p, req.Path, hub.ListOptions{Limit: req.Limit, Cursor: req.Cursor, KeysOnly: req.Keys, Children: req.Children})
		if err != nil {
			return err
		}
		a := wsAnswer{ID: id, OK: true, Entries: make([]ListEntry, len(page.Entries)), Cursor: page.Cursor}
		for i, e := range page.Entries {
			le := ListEntry{Key: e.Key, Value: e.Value}
			if !hub.IsPrefix(e.Key) {
				le.Revision, le.Seq = &e.Revision, &e.Seq
			}
			a.Entries[i] = le
		}
		c.answer(a)

	case "sub":
		return c.subscribe(p, req)

	case "unsub":
		key := string(compactJSON(req.Sub))
		c.mu.Lock()
		sb := c.subs[key]
		delete(c.subs, key)
		c.mu.Unlock()
		if sb != nil {
			sb.hs.Close()
		}
		c.answer(wsAnswer{ID: id, OK: true})

	case "lock":
		r := lockRequest{Key: req.Key, Options: hub.LockOptions{Owner: req.Owner}}
		if req.TTL != nil {
			if r.Options.TTL, err = parseTTL(*req.TTL); err != nil {
				return err
			}
		}
		if req.Wait != nil {
			if r.Options.Wait, err = parseWait(*req.Wait); err != nil {
				return err
			}
		}
		if r.Options.Wait == 0 {
			return c.lock(id, p, r)
		}
		// A waiting lock runs aside, so the connection goes on meanwhile; the end of the
		// connection ends the wait. Each costs a goroutine: a connection has at most
		// wsMaxLockWaits of them.
		if c.lockWaits.Add(1) > wsMaxLockWaits {
			c.lockWaits.Add(-1)
			return &apiError{http.StatusTooManyRequests, "too_many_lock_waits",
				"at most " + strconv.Itoa(wsMaxLockWaits) + " lock requests may wait at once per connection; wait for an answer first"}
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			l, err := s.opLock(c.ctx, p, r)
			c.lockWaits.Add(-1) // before the answer: a client that has it may wait again at once
			if err != nil {
				c.fail(id, err)
				return
			}
			c.answer(lockAnswer(id, l))
		}()

	case "renew":
		var ttl time.Duration
		if req.TTL != nil {
			if ttl, err = parseTTL(*req.TTL); err != nil {
				return err
			}
		}
		l, err := s.opRenew(p, req.Key, req.Token, ttl)
		if err != nil {
			return err
		}
		c.answer(lockAnswer(id, l))

	case "unlock":
		res, err := s.opUnlock(p, req.Key, req.Token)
		if err != nil {
			return err
		}
		c.answer(okResult(id, res))

	case "tx":
		if req.TTL != nil {
			return badRequest("invalid_tx", "a transaction takes no ttl")
		}
		opt, err := wsWriteOptions(req)
		if err != nil {
			return err
		}
		res, err := s.opTx(p, TxRequest{Checks: req.Checks, Ops: req.Ops}, opt)
		if err != nil {
			return err
		}
		c.answer(wsAnswer{ID: id, OK: true, Seq: &res.Seq, Results: res.Ops, Replayed: res.Replayed})

	default:
		return badRequest("unknown_op", "unknown op "+strconv.Quote(req.Op))
	}
	return nil
}

// lock acquires a lock and answers the request.
func (c *wsConn) lock(id json.RawMessage, p *Principal, r lockRequest) error {
	l, err := c.s.opLock(c.ctx, p, r)
	if err != nil {
		return err
	}
	c.answer(lockAnswer(id, l))
	return nil
}

func lockAnswer(id json.RawMessage, l hub.Lock) wsAnswer {
	return wsAnswer{ID: id, OK: true, Key: l.Key, Revision: &l.Revision, Seq: &l.Seq,
		Token: l.Token, Fence: l.Fence, Expires: formatTime(l.Expires), Owner: &l.Owner}
}

// wsWriteOptions reads ttl and idem, with the checks the HTTP API makes on ?ttl and
// Idempotency-Key.
func wsWriteOptions(req wsRequest) (hub.WriteOptions, error) {
	var opt hub.WriteOptions
	if req.TTL != nil {
		d, err := parseTTL(*req.TTL)
		if err != nil {
			return opt, err
		}
		opt.TTL = d
	}
	if err := checkIdempotencyKey(req.Idem); err != nil {
		return opt, err
	}
	opt.Idempotency = req.Idem
	return opt, nil
}

// subscribe starts a subscription: the answer {"seq"} is queued first, then its pump queues the
// reset, replay or snapshot, ready and the live events.
func (c *wsConn) subscribe(p *Principal, req wsRequest) error {
	if len(req.ID) == 0 {
		return badRequest("invalid_id", "sub needs an id: its events carry it")
	}
	if err := c.s.permit(p, OpRead, req.Path); err != nil {
		return err // before the checks below, which would tell a stranger about this connection
	}
	key := string(req.ID)
	c.mu.Lock()
	_, dup := c.subs[key]
	n := len(c.subs)
	c.mu.Unlock()
	if dup {
		return badRequest("invalid_id", "a subscription with id "+key+" is open on this connection")
	}
	if limit := c.s.MaxSocketSubs(); n >= limit {
		return &apiError{http.StatusTooManyRequests, "too_many_subscriptions",
			"at most " + strconv.Itoa(limit) + " subscriptions per connection; unsub first"}
	}
	opt, err := subscribeOptions("", req.Since, req.Snapshot)
	if err != nil {
		return err
	}
	hs, err := c.s.opSubscribe(p, req.Path, opt)
	if err != nil {
		return err
	}
	sb := &wsSub{id: req.ID, hs: hs, done: make(chan struct{})}
	c.mu.Lock()
	c.subs[key] = sb
	c.mu.Unlock()
	c.answer(wsAnswer{ID: req.ID, OK: true, Seq: &hs.Start})
	c.wg.Add(1)
	go c.pump(key, sb)
	return nil
}

// pump moves one subscription's events into the connection's queue, in order.
func (c *wsConn) pump(key string, sb *wsSub) {
	defer c.wg.Done()
	defer close(sb.done)
	hs := sb.hs
	if hs.Reset && !c.send(appendMark(nil, sb.id, "reset", hs.Start)) {
		return
	}
	for _, e := range hs.Initial {
		if !c.send(appendEvent(nil, sb.id, e)) {
			return
		}
	}
	if !c.send(appendMark(nil, sb.id, "ready", hs.Start)) {
		return
	}
	for e, ok := hs.Next(); ok; e, ok = hs.Next() {
		if !c.send(appendEvent(nil, sb.id, e)) {
			return
		}
	}
	var d disconnect
	if err := hs.Err(); err != nil {
		d = disconnectFor(err)
	} else {
		c.mu.Lock()
		d = sb.ended
		c.mu.Unlock()
		if d.reason == "" {
			return // unsubscribed, or the connection is closing
		}
	}
	c.mu.Lock()
	if c.subs[key] == sb {
		delete(c.subs, key)
	}
	c.mu.Unlock()
	c.send([]byte(`{"sub":` + string(sb.id) + `,"type":"close","reason":"` + d.reason + `"}`))
}

// appendEvent encodes a change or snapshot entry of subscription sub.
func appendEvent(b []byte, sub json.RawMessage, e hub.Event) []byte {
	b = append(b, `{"sub":`...)
	b = append(b, sub...)
	if e.Deleted {
		b = append(b, `,"type":"delete","key":`...)
	} else {
		b = append(b, `,"type":"set","key":`...)
	}
	b = appendJSONString(b, e.Key)
	if !e.Deleted {
		b = append(b, `,"value":`...)
		b = append(b, e.Value...)
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, e.Revision, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.Snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	return append(b, '}')
}

// appendMark encodes a reset or ready event.
func appendMark(b []byte, sub json.RawMessage, typ string, seq uint64) []byte {
	b = append(b, `{"sub":`...)
	b = append(b, sub...)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Keys hold only letters, digits, "-", "_" and "/",
// which need no escaping; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
