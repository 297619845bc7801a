package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// ErrSessionClosed is the error of a Session's calls after Close.
var ErrSessionClosed = errors.New("client: session closed")

// maxSocketMessage bounds one WebSocket message the session reads.
const maxSocketMessage = 64 << 20

// Session is a WebSocket connection (/.ws) that holds ephemeral keys: keys the server deletes,
// with a delete event, once the connection has been gone for its grace period (-ephemeral-grace,
// 10 s by default), as for presence lists. Ephemeral keys exist over the WebSocket only; every
// other operation of this package is plain HTTP.
//
// A Session reconnects by itself when its connection drops (logged, see WithLogger) and writes
// its keys again over the new connection, which takes them over: within the grace period
// nothing watching them sees them go. It registers its on-disconnect writes (OnDisconnect) again
// too, which replaces the old connection's registrations. Its methods are safe for concurrent use; the writes of one
// Session reach the server in the order they are called.
type Session struct {
	c      *Client
	cancel context.CancelFunc // ends the reconnection loop
	done   chan struct{}      // closed when the loop has ended

	mu        sync.Mutex
	cur       *socket       // nil while reconnecting
	connected chan struct{} // closed when cur is set again
	keys      map[string]json.RawMessage
	disc      map[string]discWrite // on-disconnect writes, by key
	conn      string               // the current connection's id ("" from a server without presence)
	nextID    uint64
	closed    bool
}

// discWrite is an on-disconnect write: a set of value, or a delete.
type discWrite struct {
	value json.RawMessage
	del   bool
}

// socket is one connection of a session and its unanswered requests.
type socket struct {
	ws      *websocket.Conn
	lost    chan struct{} // closed when the connection has ended
	mu      sync.Mutex
	pending map[uint64]chan socketAnswer
}

type socketRequest struct {
	ID        uint64          `json:"id"`
	Op        string          `json:"op"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value,omitempty"`
	Ephemeral bool            `json:"ephemeral,omitempty"`
	Delete    bool            `json:"delete,omitempty"`
	Cancel    bool            `json:"cancel,omitempty"`
}

type socketAnswer struct {
	ID *uint64 `json:"id"`
	OK bool    `json:"ok"`
	errorBody
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
	Seq      uint64 `json:"seq"`
	Conn     string `json:"conn"`
}

// OpenSession dials the server's WebSocket with the client's token.
func (c *Client) OpenSession(ctx context.Context) (*Session, error) {
	s := &Session{c: c, keys: map[string]json.RawMessage{}, disc: map[string]discWrite{}, connected: make(chan struct{}), done: make(chan struct{})}
	ws, conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	sock := s.attach(ws, conn)
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(rctx, sock)
	return s, nil
}

// dial connects and, with a token, authenticates with it in the first message, so that a refused
// token fails here rather than at the first call; without one it says hello. Either answer
// tells the connection's id (a server without presence answers hello with an error: conn "").
func (s *Session) dial(ctx context.Context) (*websocket.Conn, string, error) {
	req, err := s.c.newRequest(ctx, request{method: http.MethodGet, path: "/.ws"})
	if err != nil {
		return nil, "", err
	}
	ws, res, err := websocket.Dial(ctx, req.URL.String(), &websocket.DialOptions{HTTPClient: s.c.hc})
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			return nil, "", readError(res)
		}
		return nil, "", err
	}
	ws.SetReadLimit(maxSocketMessage)
	first := map[string]any{"op": "hello", "id": 0}
	bearer, auth := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if auth {
		first = map[string]any{"op": "auth", "id": 0, "token": bearer}
	}
	b, _ := json.Marshal(first)
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		ws.CloseNow()
		return nil, "", err
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			ws.CloseNow()
			return nil, "", err
		}
		var a socketAnswer
		if json.Unmarshal(b, &a) != nil || a.ID == nil || *a.ID != 0 {
			continue
		}
		if !a.OK && auth {
			ws.CloseNow()
			return nil, "", a.errorBody.toError(a.Status)
		}
		return ws, a.Conn, nil
	}
}

// attach makes ws, whose id is conn, the session's connection.
func (s *Session) attach(ws *websocket.Conn, conn string) *socket {
	sock := &socket{ws: ws, lost: make(chan struct{}), pending: map[uint64]chan socketAnswer{}}
	s.mu.Lock()
	s.cur, s.conn = sock, conn
	close(s.connected)
	s.mu.Unlock()
	return sock
}

// run reads the connection until it ends, then reconnects and writes the keys again, until the
// session is closed.
func (s *Session) run(ctx context.Context, sock *socket) {
	defer close(s.done)
	for {
		err := sock.read(ctx)
		s.mu.Lock()
		s.cur = nil
		s.connected = make(chan struct{})
		closed := s.closed
		s.mu.Unlock()
		if closed || ctx.Err() != nil {
			return
		}
		var ws *websocket.Conn
		var conn string
		for failures := 0; ; failures++ {
			if failures > 0 {
				if sleep(ctx, backoff(failures)) != nil {
					return
				}
			}
			s.c.log.Info("statehub: session reconnecting", "after", err)
			if ws, conn, err = s.dial(ctx); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
		}
		sock = s.attach(ws, conn)
		go s.restore(ctx, sock)
	}
}

// read dispatches the answers of sock until it ends.
func (sock *socket) read(ctx context.Context) error {
	defer close(sock.lost)
	for {
		_, b, err := sock.ws.Read(ctx)
		if err != nil {
			sock.ws.CloseNow()
			return err
		}
		var a socketAnswer
		if json.Unmarshal(b, &a) != nil || a.ID == nil {
			continue // an event, or what a later server sends
		}
		sock.mu.Lock()
		ch := sock.pending[*a.ID]
		delete(sock.pending, *a.ID)
		sock.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
}

// restore writes every key of the session again over sock, and registers its on-disconnect
// writes again.
func (s *Session) restore(ctx context.Context, sock *socket) {
	s.mu.Lock()
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	discs := make([]string, 0, len(s.disc))
	for k := range s.disc {
		discs = append(discs, k)
	}
	s.mu.Unlock()
	for _, key := range discs {
		_, err := s.call(ctx, sock, func() (socketRequest, bool) {
			w, ok := s.disc[key]
			return discRequest(key, w), ok
		})
		if err != nil && ctx.Err() == nil {
			s.c.log.Info("statehub: session could not register an on-disconnect write again", "key", key, "err", err)
		}
	}
	for _, key := range keys {
		_, err := s.call(ctx, sock, func() (socketRequest, bool) {
			v, ok := s.keys[key]
			return socketRequest{Op: "set", Key: key, Value: v, Ephemeral: true}, ok
		})
		if err != nil && ctx.Err() == nil {
			s.c.log.Info("statehub: session could not write an ephemeral key again", "key", key, "err", err)
		}
	}
}

var errSkip = errors.New("client: nothing to send")

// call sends the request that build makes (under s.mu, so that the requests reach the server in
// the order the session's keys changed) and waits for its answer. It sends again over the next
// connection when the connection drops first, or, when pin is set, gives up unless pin is the
// session's connection.
func (s *Session) call(ctx context.Context, pin *socket, build func() (socketRequest, bool)) (socketAnswer, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return socketAnswer{}, ErrSessionClosed
		}
		sock := s.cur
		if pin != nil && sock != pin {
			s.mu.Unlock()
			return socketAnswer{}, errSkip
		}
		if sock == nil {
			connected := s.connected
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return socketAnswer{}, ctx.Err()
			case <-connected:
				continue
			}
		}
		req, ok := build()
		if !ok {
			s.mu.Unlock()
			return socketAnswer{}, errSkip
		}
		s.nextID++
		req.ID = s.nextID
		ch := make(chan socketAnswer, 1)
		sock.mu.Lock()
		sock.pending[req.ID] = ch
		sock.mu.Unlock()
		b, err := json.Marshal(req)
		if err == nil {
			err = sock.ws.Write(ctx, websocket.MessageText, b)
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() != nil {
			return socketAnswer{}, ctx.Err()
		}
		select {
		case a := <-ch:
			if !a.OK {
				return a, a.errorBody.toError(a.Status)
			}
			return a, nil
		case <-sock.lost:
			continue
		case <-ctx.Done():
			sock.mu.Lock()
			delete(sock.pending, req.ID)
			sock.mu.Unlock()
			return socketAnswer{}, ctx.Err()
		}
	}
}

// Set sets key to value (marshaled with encoding/json) as an ephemeral key of this session.
func (s *Session) Set(ctx context.Context, key string, value any) (Result, error) {
	if err := checkKey(key); err != nil {
		return Result{}, err
	}
	raw, err := marshalValue(value)
	if err != nil {
		return Result{}, err
	}
	a, err := s.call(ctx, nil, func() (socketRequest, bool) {
		s.keys[key] = raw
		return socketRequest{Op: "set", Key: key, Value: raw, Ephemeral: true}, true
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) { // refused: not the session's to keep
			s.mu.Lock()
			delete(s.keys, key)
			s.mu.Unlock()
		}
		return Result{}, err
	}
	return Result{Key: a.Key, Revision: a.Revision, Seq: a.Seq}, nil
}

// Delete deletes key now, and the session stops keeping it. A key that is already gone is no
// error.
func (s *Session) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.call(ctx, nil, func() (socketRequest, bool) {
		delete(s.keys, key)
		return socketRequest{Op: "delete", Key: key}, true
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Conn is the id the server gave the session's current connection: the conn of the presence of
// its ephemeral keys (Entry.Presence). It changes when the session reconnects; "" while
// reconnecting, or with a server that does not tell it.
func (s *Session) Conn() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ""
	}
	return s.conn
}

func discRequest(key string, w discWrite) socketRequest {
	if w.del {
		return socketRequest{Op: "ondisconnect", Key: key, Delete: true}
	}
	return socketRequest{Op: "ondisconnect", Key: key, Value: w.value}
}

// OnDisconnect registers a write the server makes once the session's connection has been gone
// for its grace period, or its cluster node is lost: key is set to value (marshaled with
// encoding/json), as Firebase's onDisconnect().set. The write is authorized now (the token's
// write grant on key). The session registers it again after every reconnection; one write is
// pending per key on the server, the latest registration's (PROTOCOL.md, "On-disconnect writes").
func (s *Session) OnDisconnect(ctx context.Context, key string, value any) error {
	raw, err := marshalValue(value)
	if err != nil {
		return err
	}
	return s.registerDisc(ctx, key, discWrite{value: raw})
}

// OnDisconnectDelete registers a delete of key the server makes as OnDisconnect's write.
func (s *Session) OnDisconnectDelete(ctx context.Context, key string) error {
	return s.registerDisc(ctx, key, discWrite{del: true})
}

func (s *Session) registerDisc(ctx context.Context, key string, w discWrite) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.call(ctx, nil, func() (socketRequest, bool) {
		s.disc[key] = w
		return discRequest(key, w), true
	})
	var e *Error
	if errors.As(err, &e) { // refused: nothing to register again
		s.mu.Lock()
		delete(s.disc, key)
		s.mu.Unlock()
	}
	return err
}

// CancelOnDisconnect drops the session's on-disconnect write of key.
func (s *Session) CancelOnDisconnect(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.call(ctx, nil, func() (socketRequest, bool) {
		delete(s.disc, key)
		return socketRequest{Op: "ondisconnect", Key: key, Cancel: true}, true
	})
	return err
}

// Close closes the connection; the server deletes the session's keys after its grace period.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sock := s.cur
	s.mu.Unlock()
	var err error
	if sock != nil {
		err = sock.ws.Close(websocket.StatusNormalClosure, "")
	}
	s.cancel()
	<-s.done
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure {
		err = nil
	}
	return err
}

// marshalValue returns value's JSON: a json.RawMessage as it is, anything else through
// encoding/json.
func marshalValue(value any) (json.RawMessage, error) {
	var raw json.RawMessage
	if r, ok := value.(json.RawMessage); ok {
		raw = r
	} else {
		b, err := json.Marshal(value)
		if err != nil {
			return nil, fmt.Errorf("client: encoding the value: %w", err)
		}
		raw = b
	}
	if raw == nil {
		raw = json.RawMessage("null")
	}
	return raw, nil
}
