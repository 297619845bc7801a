package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// WebSocket frames to operations: a text frame is decoded into a wsRequest, run through the
// operation layer (ops.go), and its answer or error encoded back (PROTOCOL.md, "WebSocket").

// wsRequest is every field a request may carry (PROTOCOL.md, WebSocket).
type wsRequest struct {
	ID         json.RawMessage `json:"id"`
	Op         string          `json:"op"`
	Token      string          `json:"token"`
	Key        string          `json:"key"`
	Path       string          `json:"path"`
	Value      json.RawMessage `json:"value"`
	Msg        json.RawMessage `json:"msg"`
	Revision   *int64          `json:"revision"`
	TTL        *string         `json:"ttl"`
	Ephemeral  bool            `json:"ephemeral"`
	Delete     bool            `json:"delete"` // ondisconnect: the write is a delete
	Cancel     bool            `json:"cancel"` // ondisconnect: drop the registration
	Fence      *uint64         `json:"fence"`
	FenceLock  string          `json:"fence_lock"`
	Idem       string          `json:"idem"`
	By         *int64          `json:"by"`
	Limit      int             `json:"limit"`
	Cursor     string          `json:"cursor"`
	Keys       bool            `json:"keys"`
	Children   bool            `json:"children"`
	Since      string          `json:"since"`
	Snapshot   bool            `json:"snapshot"`
	Throttle   string          `json:"throttle"`
	Broadcasts bool            `json:"broadcasts"` // sub: the path's broadcasts alone
	Sub        json.RawMessage `json:"sub"`
	Owner      string          `json:"owner"`
	Wait       *string         `json:"wait"`
	Checks     []TxCheck       `json:"checks"`
	Ops        []TxOp          `json:"ops"`
}

// wsFence reads a write's fence and fence_lock (If-Fence over HTTP) into cond.
func wsFence(req wsRequest, cond *hub.Cond) (err error) {
	if req.Fence == nil {
		return nil
	}
	cond.Fence, cond.FenceLock, err = checkFence(strconv.FormatUint(*req.Fence, 10), req.FenceLock, req.FenceLock != "")
	return err
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
		req.ID = id
	}
	if err != nil || !utf8.Valid(data) {
		return req, decodeError(data, err)
	}
	if req.Op == "" {
		return req, badRequest("unknown_op", "the message has no op")
	}
	return req, nil
}

// decodeError is the 400 for a message that did not decode (err) or is not UTF-8 (err nil).
func decodeError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("bad_message", "the message is not JSON: "+err.Error())
	case !utf8.Valid(data):
		// JSON is UTF-8. encoding/json turns invalid bytes in string fields into U+FFFD and keeps
		// them in raw ones (value), so the message is checked as a whole: ErrInvalidValue, 400.
		return hub.CheckUTF8("the message", data)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("bad_message", "a message must be a JSON object")
		}
		return badRequest("bad_field", "field "+typ.Field+" must be a "+typ.Type.String()+", not a JSON "+typ.Value)
	}
	return badRequest("bad_message", err.Error())
}

// validID accepts a JSON string of valid UTF-8 (the id is echoed as it came) or a number that a
// float64 holds (as JavaScript reads it back). id is one JSON value of a message that parsed, so its
// first byte tells which, and neither has whitespace to compact.
func validID(id json.RawMessage) bool {
	switch {
	case id[0] == '"':
		return utf8.Valid(id)
	case id[0] == '-' || '0' <= id[0] && id[0] <= '9':
		_, err := strconv.ParseFloat(string(id), 64)
		return err == nil
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
	ID       json.RawMessage `json:"id,omitempty"`
	OK       bool            `json:"ok,omitempty"`
	Error    string          `json:"error,omitempty"`
	Code     string          `json:"code,omitempty"`
	Status   int             `json:"status,omitempty"`
	Key      string          `json:"key,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	Revision *int64          `json:"revision,omitempty"`
	Seq      *uint64         `json:"seq,omitempty"`
	Deleted  *int            `json:"deleted,omitempty"`
	Entries  []ListEntry     `json:"entries,omitzero"`
	Cursor   string          `json:"cursor,omitempty"`
	Replayed bool            `json:"replayed,omitempty"`
	Token    string          `json:"token,omitempty"` // lock, renew
	Fence    uint64          `json:"fence,omitempty"`
	Expires  string          `json:"expires,omitempty"` // a lock's expiry, RFC 3339 in UTC, as over HTTP
	Owner    *string         `json:"owner,omitempty"`
	Results  []TxOpAnswer    `json:"results,omitzero"`   // tx, as POST /.tx answers
	Conn     string          `json:"conn,omitempty"`     // auth, hello, an ephemeral write: this connection's id
	Sub      *string         `json:"sub,omitempty"`      // hello: the principal's token subject
	Presence *PresenceJSON   `json:"presence,omitempty"` // get of an ephemeral key: its owner
	Oldest   uint64          `json:"oldest,omitempty"`   // history_gone: the oldest seq retained
}

func (c *wsConn) answer(a wsAnswer) {
	b, err := a.appendJSON(nil)
	if err != nil { // cannot happen: every field is already valid JSON
		c.s.log.Error("encoding a websocket answer", "err", err)
		return
	}
	c.send(b)
}

// appendJSON appends a as json.Marshal encodes it (TestWSAnswerJSON), field by field rather than
// by reflection over all 22 (BenchmarkWSIncr/memory). Strings and values keep <, > and &, which
// json.Marshal escapes. An answer with entries, results or presence goes through json.Marshal.
func (a *wsAnswer) appendJSON(b []byte) ([]byte, error) {
	if a.Entries != nil || a.Results != nil || a.Presence != nil {
		m, err := json.Marshal(a)
		return append(b, m...), err
	}
	start := len(b)
	b = append(b, '{')
	field := func(name string) {
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), name...), `":`...)
	}
	if len(a.ID) > 0 {
		field("id")
		b = append(b, a.ID...)
	}
	if a.OK {
		field("ok")
		b = append(b, "true"...)
	}
	if a.Error != "" {
		field("error")
		b = appendJSONString(b, a.Error)
	}
	if a.Code != "" {
		field("code")
		b = appendJSONString(b, a.Code)
	}
	if a.Status != 0 {
		field("status")
		b = strconv.AppendInt(b, int64(a.Status), 10)
	}
	if a.Key != "" {
		field("key")
		b = appendJSONString(b, a.Key)
	}
	if len(a.Value) > 0 {
		field("value")
		b = append(b, a.Value...)
	}
	if a.Revision != nil {
		field("revision")
		b = strconv.AppendInt(b, *a.Revision, 10)
	}
	if a.Seq != nil {
		field("seq")
		b = strconv.AppendUint(b, *a.Seq, 10)
	}
	if a.Deleted != nil {
		field("deleted")
		b = strconv.AppendInt(b, int64(*a.Deleted), 10)
	}
	if a.Cursor != "" {
		field("cursor")
		b = appendJSONString(b, a.Cursor)
	}
	if a.Replayed {
		field("replayed")
		b = append(b, "true"...)
	}
	if a.Token != "" {
		field("token")
		b = appendJSONString(b, a.Token)
	}
	if a.Fence != 0 {
		field("fence")
		b = strconv.AppendUint(b, a.Fence, 10)
	}
	if a.Expires != "" {
		field("expires")
		b = appendJSONString(b, a.Expires)
	}
	if a.Owner != nil {
		field("owner")
		b = appendJSONString(b, *a.Owner)
	}
	if a.Conn != "" {
		field("conn")
		b = appendJSONString(b, a.Conn)
	}
	if a.Sub != nil {
		field("sub")
		b = appendJSONString(b, *a.Sub)
	}
	if a.Oldest != 0 {
		field("oldest")
		b = strconv.AppendUint(b, a.Oldest, 10)
	}
	return append(b, '}'), nil
}

// fail answers a request with err, mapped to status and code exactly as over HTTP.
func (c *wsConn) fail(id json.RawMessage, err error) {
	status, body := errorBody(err)
	if status >= 500 {
		c.s.log.Error("websocket request failed", "err", err)
	}
	a := wsAnswer{ID: id, Error: body.Error, Code: body.Code, Status: status, Key: body.Key, Revision: body.Revision,
		Owner: body.Owner, Expires: body.Expires, Oldest: body.Oldest}
	c.answer(a)
}

func okResult(id json.RawMessage, res hub.Result) wsAnswer {
	return wsAnswer{ID: id, OK: true, Key: res.Key, Revision: &res.Revision, Seq: &res.Seq, Replayed: res.Replayed}
}

// handle runs one request and queues its answer. A write (set, cas, delete, incr, tx) is
// pipelined: applied at once, its answer queued behind the earlier ones until its commit is
// durable (ws_pipeline.go). Any other request first waits until every earlier answer has been sent.
func (c *wsConn) handle(data []byte) {
	c.seen++
	req, err := decodeWSMessage(data)
	if err != nil {
		c.reply(wsPending{id: req.ID, err: err})
		return
	}
	switch req.Op {
	case "set", "cas", "delete", "incr", "tx":
		it := wsPending{id: req.ID}
		it.a, it.err = c.applyWrite(req, &it.p)
		c.reply(it)
		return
	}
	c.drain()
	if err := c.run(req); err != nil {
		c.fail(req.ID, err)
	}
}

// applyWrite applies a write with opt.Pending set to pend and returns its answer, which may be shown
// only once pend's Wait has returned nil.
func (c *wsConn) applyWrite(req wsRequest, pend *hub.Pending) (wsAnswer, error) {
	id := req.ID
	p, err := c.caller()
	if err != nil {
		return wsAnswer{}, err
	}
	s := c.s
	switch req.Op {
	case "set", "cas":
		var cond hub.Cond
		if req.Op == "cas" {
			if req.Revision == nil || *req.Revision < 0 {
				return wsAnswer{}, badRequest("invalid_revision", "cas needs revision: the current revision + 1, or 0 to create")
			}
			cond.NextRevision = req.Revision
		}
		opt, err := wsWriteOptions(req, pend)
		if err != nil {
			return wsAnswer{}, err
		}
		if err := wsFence(req, &cond); err != nil {
			return wsAnswer{}, err
		}
		if req.Ephemeral {
			opt.Session, opt.Subject = c.sess, p.Subject()
		}
		res, err := s.opSet(p, setRequest{Key: req.Key, Value: bytes.NewReader(req.Value), Cond: cond, Options: opt})
		if err != nil {
			return wsAnswer{}, err
		}
		a := okResult(id, res)
		if req.Ephemeral {
			a.Conn = c.sess.Conn()
		}
		return a, nil

	case "delete":
		path := req.Key
		if path == "" {
			path = req.Path
		}
		opt, err := wsWriteOptions(req, pend)
		if err != nil {
			return wsAnswer{}, err
		}
		var cond hub.Cond
		if req.Revision != nil {
			if *req.Revision < 0 {
				return wsAnswer{}, badRequest("invalid_revision", "revision must be a non-negative integer")
			}
			cond.Revision = req.Revision
		}
		if req.Fence != nil && hub.IsPrefix(path) {
			return wsAnswer{}, badRequest("invalid_fence", "a subtree delete takes no fence")
		}
		if err := wsFence(req, &cond); err != nil {
			return wsAnswer{}, err
		}
		res, err := s.opDelete(p, path, cond, opt)
		if err != nil {
			return wsAnswer{}, err
		}
		if hub.IsPrefix(path) {
			return wsAnswer{ID: id, OK: true, Deleted: &res.Deleted, Seq: &res.Seq, Replayed: res.Replayed}, nil
		}
		return okResult(id, res), nil

	case "incr":
		if req.Fence != nil {
			return wsAnswer{}, badRequest("invalid_fence", "incr takes no fence")
		}
		by := int64(1)
		if req.By != nil {
			by = *req.By
		}
		opt, err := wsWriteOptions(req, pend)
		if err != nil {
			return wsAnswer{}, err
		}
		res, err := s.opIncr(p, req.Key, by, opt)
		if err != nil {
			return wsAnswer{}, err
		}
		a := okResult(id, res)
		a.Value = res.Value
		return a, nil

	default: // "tx"
		if req.TTL != nil {
			return wsAnswer{}, badRequest("invalid_tx", "a transaction takes no ttl")
		}
		if req.Fence != nil || req.FenceLock != "" {
			return wsAnswer{}, badRequest("invalid_fence", "a transaction takes no fence: check the lock key's revision in its checks instead")
		}
		opt, err := wsWriteOptions(req, pend)
		if err != nil {
			return wsAnswer{}, err
		}
		res, err := s.opTx(p, TxRequest{Checks: req.Checks, Ops: req.Ops}, opt)
		if err != nil {
			return wsAnswer{}, err
		}
		return wsAnswer{ID: id, OK: true, Seq: &res.Seq, Results: txOpAnswers(res.Ops), Replayed: res.Replayed}, nil
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
		c.answer(wsAnswer{ID: id, OK: true, Conn: c.sess.Conn()})
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
		c.answer(wsAnswer{ID: id, OK: true, Key: e.Key, Value: e.Value, Revision: &e.Revision, Seq: &e.Seq, Presence: presenceJSON(e.Presence)})

	case "ondisconnect":
		if err := s.opOnDisconnect(p, c.sess, req); err != nil {
			return err
		}
		c.answer(wsAnswer{ID: id, OK: true, Key: req.Key})

	case "hello":
		sub := p.Subject()
		c.answer(wsAnswer{ID: id, OK: true, Conn: c.sess.Conn(), Sub: &sub})

	case "list":
		page, err := s.opList(p, req.Path, hub.ListOptions{Limit: req.Limit, Cursor: req.Cursor, KeysOnly: req.Keys, Children: req.Children})
		if err != nil {
			return err
		}
		a := wsAnswer{ID: id, OK: true, Entries: make([]ListEntry, len(page.Entries)), Cursor: page.Cursor}
		for i, e := range page.Entries {
			a.Entries[i] = listEntry(e)
		}
		c.answer(a)

	case "history":
		return c.history(p, req)

	case "sub":
		return c.subscribe(p, req)

	case "broadcast":
		if err := s.opBroadcast(p, broadcastRequest{Path: req.Path, Msg: bytes.NewReader(req.Msg), Allow: c.allowBroadcast}); err != nil {
			return err
		}
		c.answer(wsAnswer{ID: id, OK: true})

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

	default:
		return badRequest("unknown_op", "unknown op "+strconv.Quote(req.Op))
	}
	return nil
}

// lock acquires a lock and answers the request.
func (c *wsConn) lock(id json.RawMessage, p *auth.Principal, r lockRequest) error {
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
// Idempotency-Key, for a write pipelined with pend.
func wsWriteOptions(req wsRequest, pend *hub.Pending) (hub.WriteOptions, error) {
	opt := hub.WriteOptions{Pending: pend}
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

// subscribe starts a subscription: its answer {"seq"} is queued, then the writer writes the reset,
// replay or snapshot, ready and the live events (ws_events.go).
func (c *wsConn) subscribe(p *auth.Principal, req wsRequest) error {
	if len(req.ID) == 0 {
		return badRequest("invalid_id", "sub needs an id: its events carry it")
	}
	if err := c.s.permit(p, auth.Read, req.Path); err != nil {
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
	opt, err := subscribeOptions("", req.Since, req.Snapshot, req.Broadcasts)
	if err != nil {
		return err
	}
	every, err := parseThrottle(req.Throttle)
	if err != nil {
		return err
	}
	opt.Notify = c.wake // the writer waits for all of the socket's subscriptions at once
	hs, err := c.s.opSubscribe(p, req.Path, opt)
	if err != nil {
		return err
	}
	sb := &wsSub{id: req.ID, hs: hs, throttle: every}
	c.mu.Lock()
	c.subs[key] = sb
	c.mu.Unlock()
	c.startSub(sb, wsAnswer{ID: req.ID, OK: true, Seq: &hs.Start})
	return nil
}
