package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

var wsQuiet = slog.New(slog.DiscardHandler)

// wsServer is a hub behind a real HTTP server, for WebSocket clients.
type wsServer struct {
	h     *hub.Hub
	url   string // ws://host/.ws
	small bool   // sockets with small kernel buffers, so a client that does not read backs up fast
}

// newWSServer starts a server over a fresh hub. With small set, accepted sockets get a small send
// buffer (and dial gives clients a small receive buffer), so a slow reader is felt at once.
func newWSServer(t testing.TB, hcfg hub.Config, wcfg Config, small bool) *wsServer {
	t.Helper()
	hcfg.Logger, wcfg.Logger = wsQuiet, wsQuiet
	h := hub.New(hcfg)
	srv := httptest.NewUnstartedServer(New(h, wcfg).Handler())
	if small {
		srv.Listener = smallBufListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.Close() }) // runs first: ends every connection with "shutdown"
	return &wsServer{h: h, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/.ws", small: small}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// wsMsg is any message the server sends: an answer or an event.
type wsMsg struct {
	ID       json.RawMessage `json:"id"`
	OK       bool            `json:"ok"`
	Error    string          `json:"error"`
	Code     string          `json:"code"`
	Status   int             `json:"status"`
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Revision *int64          `json:"revision"`
	Seq      *uint64         `json:"seq"`
	Deleted  *int            `json:"deleted"`
	Entries  []ListEntry     `json:"entries"`
	Cursor   string          `json:"cursor"`
	Token    string          `json:"token"`
	Fence    uint64          `json:"fence"`
	Owner    string          `json:"owner"`
	Results  []TxOpAnswer    `json:"results"`
	Sub      json.RawMessage `json:"sub"`
	Type     string          `json:"type"`
	Snapshot bool            `json:"snapshot"`
	Reason   string          `json:"reason"`
	Conn     string          `json:"conn"`
	Presence *PresenceJSON   `json:"presence"`
	raw      string
}

// wsClient is one connection; it keeps events that arrive while it waits for an answer.
type wsClient struct {
	t      testing.TB
	c      *websocket.Conn
	id     int
	events []wsMsg
}

func (ts *wsServer) dial(t testing.TB) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{}
	if ts.small {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetReadBuffer(4096)
				}
				return c, err
			},
		}}
	}
	c, _, err := websocket.Dial(ctx, ts.url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", ts.url, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readMsg reads the next message, or returns the error that ended the connection.
func (c *wsClient) readMsg() (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, data, err := c.c.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	var m wsMsg
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("message %q is not JSON: %v", data, err)
	}
	m.raw = string(data)
	return m, nil
}

func (c *wsClient) read() wsMsg {
	c.t.Helper()
	m, err := c.readMsg()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// call sends a request with the next id and returns its answer; events read meanwhile are kept.
func (c *wsClient) call(req map[string]any) wsMsg {
	c.t.Helper()
	c.id++
	req["id"] = c.id
	b, _ := json.Marshal(req)
	c.sendRaw(string(b))
	return c.answer(strconv.Itoa(c.id))
}

// answer reads until the answer with id arrives.
func (c *wsClient) answer(id string) wsMsg {
	c.t.Helper()
	for {
		m := c.read()
		if m.Type != "" {
			c.events = append(c.events, m)
			continue
		}
		if string(m.ID) != id {
			c.t.Fatalf("answer %s while waiting for id %s", m.raw, id)
		}
		return m
	}
}

// must calls and requires success.
func (c *wsClient) must(req map[string]any) wsMsg {
	c.t.Helper()
	a := c.call(req)
	if !a.OK {
		c.t.Fatalf("%v: %s", req, a.raw)
	}
	return a
}

// event returns the next event.
func (c *wsClient) event() wsMsg {
	c.t.Helper()
	if len(c.events) > 0 {
		m := c.events[0]
		c.events = c.events[1:]
		return m
	}
	m := c.read()
	if m.Type == "" {
		c.t.Fatalf("answer %s while waiting for an event", m.raw)
	}
	return m
}

// describe renders an event compactly for comparisons.
func (m wsMsg) describe() string {
	switch m.Type {
	case "set", "delete":
		s := fmt.Sprintf("%s %s %s@%d", m.Type, m.Key, m.Value, *m.Revision)
		if m.Snapshot {
			s += " snap"
		}
		return s
	case "reset", "ready":
		return m.Type
	case "close":
		return "close " + m.Reason
	}
	return m.raw
}

// pos is the event's position string, built as the client builds it.
func (m wsMsg) pos() string { return hub.EventID(m.Key, *m.Revision, *m.Seq, m.Snapshot) }

func (c *wsClient) expectEvents(sub int, want ...string) []wsMsg {
	c.t.Helper()
	var got []wsMsg
	for i, w := range want {
		e := c.event()
		if string(e.Sub) != strconv.Itoa(sub) {
			c.t.Fatalf("event %d %s: sub %s, want %d", i, e.raw, e.Sub, sub)
		}
		if d := e.describe(); d != w {
			c.t.Fatalf("event %d: got %q (%s), want %q", i, d, e.raw, w)
		}
		got = append(got, e)
	}
	return got
}

func wsWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type m = map[string]any

// TestWSOps runs every operation over one connection, checking ids, results and error answers,
// whose code and status are those of the same failure over HTTP.
func TestWSOps(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	c := ts.dial(t)

	type want struct {
		ok     bool
		code   string
		status int
		check  func(t *testing.T, a wsMsg)
	}
	okWith := func(check func(t *testing.T, a wsMsg)) want { return want{ok: true, check: check} }
	fails := func(code string, status int) want { return want{code: code, status: status} }
	revSeq := func(rev int64) func(t *testing.T, a wsMsg) {
		return func(t *testing.T, a wsMsg) {
			if a.Revision == nil || *a.Revision != rev || a.Seq == nil || *a.Seq == 0 {
				t.Fatalf("want revision %d and a seq: %s", rev, a.raw)
			}
		}
	}
	steps := []struct {
		name string
		req  m
		want want
	}{
		{"auth first", m{"op": "auth", "token": "t"}, okWith(nil)},
		{"auth again", m{"op": "auth", "token": "t"}, okWith(nil)}, // a fresh token; an open server ignores it
		{"auth again without a token", m{"op": "auth"}, fails("bad_request", 400)},
		{"set", m{"op": "set", "key": "/a/x", "value": m{"n": 1}}, okWith(revSeq(0))},
		{"set again", m{"op": "set", "key": "/a/x", "value": json.RawMessage(`{"n": 12345678901234567890}`)}, okWith(revSeq(1))},
		{"get", m{"op": "get", "key": "/a/x"}, okWith(func(t *testing.T, a wsMsg) {
			if string(a.Value) != `{"n":12345678901234567890}` || *a.Revision != 1 {
				t.Fatalf("get: %s", a.raw)
			}
		})},
		{"get absent", m{"op": "get", "key": "/a/none"}, fails("not_found", 404)},
		{"get bad key", m{"op": "get", "key": "/a//b"}, fails("invalid_key", 400)},
		{"cas", m{"op": "cas", "key": "/a/x", "value": m{"n": 2}, "revision": 2}, okWith(revSeq(2))},
		{"cas conflict", m{"op": "cas", "key": "/a/x", "value": 3, "revision": 2}, want{code: "revision_conflict", status: 409, check: func(t *testing.T, a wsMsg) {
			if a.Revision == nil || *a.Revision != 2 {
				t.Fatalf("conflict must carry the current revision: %s", a.raw)
			}
		}}},
		{"cas create", m{"op": "cas", "key": "/a/y", "value": 1, "revision": 0}, okWith(revSeq(0))},
		{"cas without revision", m{"op": "cas", "key": "/a/y", "value": 1}, fails("invalid_revision", 400)},
		{"set without value", m{"op": "set", "key": "/a/y"}, fails("invalid_json", 400)},
		{"set bad ttl", m{"op": "set", "key": "/a/y", "value": 1, "ttl": "soon"}, fails("invalid_ttl", 400)},
		{"set ttl", m{"op": "set", "key": "/a/t", "value": 1, "ttl": "1h"}, okWith(revSeq(0))},
		{"set idem", m{"op": "set", "key": "/a/i", "value": 1, "idem": "k1"}, okWith(revSeq(0))},
		{"set idem replayed", m{"op": "set", "key": "/a/i", "value": 1, "idem": "k1"}, okWith(func(t *testing.T, a wsMsg) {
			if *a.Revision != 0 || !strings.Contains(a.raw, `"replayed":true`) {
				t.Fatalf("replay: %s", a.raw)
			}
		})},
		{"set idem reused", m{"op": "set", "key": "/a/i", "value": 2, "idem": "k1"}, fails("idempotency_mismatch", 422)},
		{"delete conditional conflict", m{"op": "delete", "key": "/a/y", "revision": 5}, fails("revision_conflict", 409)},
		{"delete conditional", m{"op": "delete", "key": "/a/y", "revision": 0}, okWith(revSeq(1))},
		{"delete absent", m{"op": "delete", "key": "/a/y"}, fails("not_found", 404)},
		{"incr", m{"op": "incr", "key": "/c/n"}, okWith(func(t *testing.T, a wsMsg) {
			if string(a.Value) != "1" || *a.Revision != 0 {
				t.Fatalf("incr: %s", a.raw)
			}
		})},
		{"incr by", m{"op": "incr", "key": "/c/n", "by": -5}, okWith(func(t *testing.T, a wsMsg) {
			if string(a.Value) != "-4" || *a.Revision != 1 {
				t.Fatalf("incr: %s", a.raw)
			}
		})},
		{"incr not integer", m{"op": "incr", "key": "/a/x"}, fails("not_integer", 409)},
		{"incr by out of range", m{"op": "incr", "key": "/c/n", "by": json.RawMessage("99999999999999999999")}, fails("bad_field", 400)},
		{"list", m{"op": "list", "path": "/a/", "limit": 2}, okWith(func(t *testing.T, a wsMsg) {
			if len(a.Entries) != 2 || a.Entries[0].Key != "/a/i" || a.Entries[1].Key != "/a/t" || a.Cursor == "" {
				t.Fatalf("list: %s", a.raw)
			}
		})},
		{"list empty", m{"op": "list", "path": "/none/"}, okWith(func(t *testing.T, a wsMsg) {
			if !strings.Contains(a.raw, `"entries":[]`) {
				t.Fatalf("an empty listing must say entries: []: %s", a.raw)
			}
		})},
		// Listing the root is an admin operation, which no request without a token holds.
		{"list the root", m{"op": "list", "path": "/", "children": true, "keys": true}, fails("unauthorized", 401)},
		{"list bad cursor", m{"op": "list", "path": "/a/", "cursor": "!!"}, fails("invalid_cursor", 400)},
		{"delete prefix", m{"op": "delete", "path": "/a/"}, okWith(func(t *testing.T, a wsMsg) {
			if a.Deleted == nil || *a.Deleted != 3 || a.Seq == nil {
				t.Fatalf("delete prefix: %s", a.raw)
			}
		})},
		{"unknown op", m{"op": "frobnicate"}, fails("unknown_op", 400)},
		{"no op", m{"key": "/a"}, fails("unknown_op", 400)},
		{"bad field type", m{"op": "get", "key": 5}, fails("bad_field", 400)},
		{"sub bad since", m{"op": "sub", "path": "/a/", "since": "x:y"}, fails("invalid_position", 400)},
		{"unsub unknown", m{"op": "unsub", "sub": 999}, okWith(nil)},
		{"lock", m{"op": "lock", "key": "/l/deploy", "owner": "ci", "ttl": "1m"}, okWith(func(t *testing.T, a wsMsg) {
			if a.Token == "" || a.Fence == 0 || a.Owner != "ci" || !strings.Contains(a.raw, `"expires":`) {
				t.Fatalf("lock: %s", a.raw)
			}
		})},
		{"tx", m{"op": "tx", "checks": []m{{"key": "/t/a", "revision": -1}}, "ops": []m{
			{"op": "set", "key": "/t/a", "value": m{"v": 1}}, {"op": "incr", "key": "/t/n", "by": 2}}}, okWith(func(t *testing.T, a wsMsg) {
			if a.Seq == nil || len(a.Results) != 2 || string(a.Results[1].Value) != "2" {
				t.Fatalf("tx: %s", a.raw)
			}
		})},
		// As over HTTP: incr's by defaults to 1, a check needs a revision, a tx takes no ttl.
		{"tx incr default", m{"op": "tx", "ops": []m{{"op": "incr", "key": "/t/d"}}}, okWith(func(t *testing.T, a wsMsg) {
			if len(a.Results) != 1 || string(a.Results[0].Value) != "1" {
				t.Fatalf("tx incr without by: %s", a.raw)
			}
		})},
		{"tx check without revision", m{"op": "tx", "checks": []m{{"key": "/t/a"}}, "ops": []m{{"op": "delete", "key": "/t/a"}}},
			fails("invalid_tx", 400)},
		{"tx with ttl", m{"op": "tx", "ttl": "1m", "ops": []m{{"op": "incr", "key": "/t/d"}}}, fails("invalid_tx", 400)},
		{"tx conflict", m{"op": "tx", "checks": []m{{"key": "/t/a", "revision": -1}}, "ops": []m{{"op": "delete", "key": "/t/a"}}},
			fails("revision_conflict", 409)},
	}
	for _, st := range steps {
		a := c.call(st.req)
		if string(a.ID) != strconv.Itoa(c.id) {
			t.Fatalf("%s: answer id %s, want %d", st.name, a.ID, c.id)
		}
		if a.OK != st.want.ok || a.Code != st.want.code || a.Status != st.want.status {
			t.Fatalf("%s: %s; want ok=%v code=%q status=%d", st.name, a.raw, st.want.ok, st.want.code, st.want.status)
		}
		if !a.OK && a.Error == "" {
			t.Fatalf("%s: an error answer without a message: %s", st.name, a.raw)
		}
		if st.want.check != nil {
			st.want.check(t, a)
		}
	}

	// Locks: renew and unlock with the token; a wrong token is refused.
	l := c.must(m{"op": "lock", "key": "/l/x", "ttl": "1m"})
	if a := c.call(m{"op": "renew", "key": "/l/x", "token": "nope", "ttl": "2m"}); a.OK || a.Status != 403 || a.Code != "lock_token" {
		t.Fatalf("renew with a wrong token: %s, want status 403 code lock_token", a.raw)
	}
	if a := c.must(m{"op": "renew", "key": "/l/x", "token": l.Token, "ttl": "2m"}); a.Fence != l.Fence {
		t.Fatalf("renew changed the fence: %s", a.raw)
	}
	c.must(m{"op": "unlock", "key": "/l/x", "token": l.Token})
	if a := c.call(m{"op": "get", "key": "/l/x"}); a.Code != "not_found" {
		t.Fatalf("after unlock: %s", a.raw)
	}
}

// TestWSLockWaitLimit: a connection may have at most wsMaxLockWaits lock requests waiting at once
// (each is a goroutine); one more is answered 429 too_many_lock_waits at once, and once a wait has
// been answered the connection may wait again.
func TestWSLockWaitLimit(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	held, err := ts.h.Lock(context.Background(), "/l/held", hub.LockOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t)
	for range wsMaxLockWaits {
		c.id++
		b, _ := json.Marshal(m{"op": "lock", "id": c.id, "key": "/l/held", "wait": "1h"})
		c.sendRaw(string(b))
	}
	// Requests run in order: this one comes after all the waits are counted. A wait on a free
	// key runs aside too, so it is refused as well.
	for _, key := range []string{"/l/held", "/l/free"} {
		if a := c.call(m{"op": "lock", "key": key, "wait": "1h"}); a.OK || a.Status != http.StatusTooManyRequests || a.Code != "too_many_lock_waits" {
			t.Fatalf("wait %d on %s: %s, want 429 too_many_lock_waits", wsMaxLockWaits+1, key, a.raw)
		}
	}
	// Without a wait nothing runs aside: still answered.
	if a := c.call(m{"op": "lock", "key": "/l/held"}); a.Code != "locked" {
		t.Fatalf("lock without a wait: %s, want locked", a.raw)
	}
	// The release lets one waiter take the lock; its answer frees a place.
	if _, err := ts.h.Unlock("/l/held", held.Token); err != nil {
		t.Fatal(err)
	}
	if a := c.read(); !a.OK || a.Token == "" {
		t.Fatalf("a waiter after the release: %s", a.raw)
	}
	if a := c.call(m{"op": "lock", "key": "/l/free", "wait": "1h"}); !a.OK || a.Key != "/l/free" {
		t.Fatalf("a wait after an answer: %s", a.raw)
	}
}

// TestWSMalformed: a frame that is not a request gets an error answer and the connection stays.
func TestWSMalformed(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	c := ts.dial(t)
	for _, tc := range []struct{ name, frame, id, code string }{
		{"not JSON", `{"op":`, "", "bad_message"},
		{"not an object", `[1,2]`, "", "bad_message"},
		{"string id kept", `{"id":"x7","op":"nope"}`, `"x7"`, "unknown_op"},
		{"object id", `{"id":{},"op":"get","key":"/a"}`, "", "invalid_id"},
		{"type error keeps the id", `{"id":3,"op":"set","key":"/a","value":1,"ttl":5}`, "3", "bad_field"},
		{"binary garbage", "\xff\xfe", "", "bad_message"},
	} {
		c.sendRaw(tc.frame)
		a := c.read()
		if a.OK || a.Status != 400 || a.Code != tc.code || string(a.ID) != tc.id {
			t.Fatalf("%s: %s; want status 400, code %s, id %q", tc.name, a.raw, tc.code, tc.id)
		}
	}
	c.must(m{"op": "set", "key": "/still/here", "value": true})
}

// TestWSInvalidUTF8: a request that is not valid UTF-8 is answered 400 invalid_json, with its id,
// and changes nothing; the connection and a subscription on another one go on, and no frame the
// server sends is anything but UTF-8 (a browser fails a socket on such a text frame, with 1006).
func TestWSInvalidUTF8(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	watch := ts.dial(t)
	watch.must(m{"op": "sub", "path": "/u8/"})
	watch.expectEvents(1, "ready")
	c := ts.dial(t)
	for _, tc := range []struct{ name, frame, id, code, msg string }{
		{"set", "{\"id\":1,\"op\":\"set\",\"key\":\"/u8/raw\",\"value\":\"\xff\xfe\"}", "1", "invalid_json", "the message is not valid UTF-8 (byte offset 44)"},
		{"set in an object key", "{\"id\":2,\"op\":\"set\",\"key\":\"/u8/raw\",\"value\":{\"\xed\xa0\x80\":1}}", "2", "invalid_json", "byte offset 45"},
		{"cas", "{\"id\":3,\"op\":\"cas\",\"key\":\"/u8/raw\",\"revision\":0,\"value\":\"\xc0\xaf\"}", "3", "invalid_json", "not valid UTF-8"},
		{"ephemeral set", "{\"id\":4,\"op\":\"set\",\"ephemeral\":true,\"key\":\"/u8/raw\",\"value\":\"\x80\"}", "4", "invalid_json", "not valid UTF-8"},
		{"tx", "{\"id\":5,\"op\":\"tx\",\"ops\":[{\"op\":\"set\",\"key\":\"/u8/raw\",\"value\":\"€\xe2\x82\"}]}", "5", "invalid_json", "not valid UTF-8"},
		{"key", "{\"id\":6,\"op\":\"set\",\"key\":\"/u8/\xff\",\"value\":1}", "6", "invalid_json", "not valid UTF-8"},
		{"lock owner", "{\"id\":7,\"op\":\"lock\",\"key\":\"/u8/lock\",\"owner\":\"ci\xff\"}", "7", "invalid_json", "not valid UTF-8"},
		{"string id is not echoed", "{\"id\":\"x\xff\",\"op\":\"set\",\"key\":\"/u8/raw\",\"value\":1}", "", "invalid_id", "UTF-8"},
	} {
		c.sendRaw(tc.frame)
		a := c.read()
		if a.OK || a.Status != 400 || a.Code != tc.code || string(a.ID) != tc.id || !strings.Contains(a.Error, tc.msg) {
			t.Fatalf("%s: %s; want status 400, code %s, id %q, %q", tc.name, a.raw, tc.code, tc.id, tc.msg)
		}
		if !utf8.ValidString(a.raw) {
			t.Fatalf("%s: the answer %q is not UTF-8", tc.name, a.raw)
		}
	}
	if _, err := ts.h.Get("/u8/raw"); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("an invalid value was stored: %v", err)
	}
	// The same connection writes valid text; the watcher's next event is that write, as sent.
	c.sendRaw(`{"id":8,"op":"set","key":"/u8/ok","value":{"ключ":"€ 𝄞 日本"}}`)
	if a := c.read(); !a.OK {
		t.Fatalf("valid text: %s", a.raw)
	}
	if e := watch.expectEvents(1, `set /u8/ok {"ключ":"€ 𝄞 日本"}@0`); !utf8.ValidString(e[0].raw) {
		t.Fatalf("event %q is not UTF-8", e[0].raw)
	}
}

// TestWSLegacyInvalidUTF8: a value that a version before the UTF-8 check stored with invalid bytes
// reaches WebSocket subscribers repaired (U+FFFD), as it is loaded from the log and snapshots.
func TestWSLegacyInvalidUTF8(t *testing.T) {
	t.Parallel()
	sc := hub.StoreConfig{Dir: t.TempDir()}
	old, err := hub.Open(hub.Config{Logger: wsQuiet}, sc)
	if err != nil {
		t.Fatal(err)
	}
	// Set trusts its caller to have checked the value, as such a version did (without UTF-8).
	if _, err := old.Set("/u8/old", []byte("{\"k\xff\":\"\xed\xa0\x80\"}"), hub.Cond{}, hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	h, err := hub.Open(hub.Config{Logger: wsQuiet}, sc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(h, Config{Logger: wsQuiet}).Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.Close() })
	ts := &wsServer{h: h, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/.ws"}
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/u8/", "snapshot": true})
	e := c.expectEvents(1, "set /u8/old {\"k\uFFFD\":\"\uFFFD\"}@0 snap", "ready")
	if !utf8.ValidString(e[0].raw) {
		t.Fatalf("event %q is not UTF-8", e[0].raw)
	}
	if a := c.must(m{"op": "get", "key": "/u8/old"}); string(a.Value) != "{\"k\uFFFD\":\"\uFFFD\"}" {
		t.Fatalf("get: %s", a.raw)
	}
}

// TestWSSubscribe: snapshot then live; a resume with since replays exactly what was missed; a
// position older than the history gets a reset and the current state.
func TestWSSubscribe(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{HistorySize: 8}, Config{}, false)
	w := ts.dial(t)
	w.must(m{"op": "set", "key": "/r/a", "value": 1})
	w.must(m{"op": "set", "key": "/r/b", "value": 2})
	w.must(m{"op": "set", "key": "/other", "value": 0})

	c := ts.dial(t)
	a := c.must(m{"op": "sub", "path": "/r/", "snapshot": true})
	sub := c.id
	if a.Seq == nil || *a.Seq != 3 {
		t.Fatalf("sub answer: %s", a.raw)
	}
	c.expectEvents(sub, "set /r/a 1@0 snap", "set /r/b 2@0 snap", "ready")
	w.must(m{"op": "set", "key": "/r/a", "value": 10})
	w.must(m{"op": "delete", "path": "/r/"})
	got := c.expectEvents(sub, "set /r/a 10@1", "delete /r/a @2", "delete /r/b @1")
	if *got[1].Seq != *got[2].Seq {
		t.Fatal("the events of one prefix delete must share its seq")
	}
	last := got[1].pos() // part-way through a commit
	c.c.Close(websocket.StatusNormalClosure, "")

	// Missed while away: the rest of that commit and two more changes.
	w.must(m{"op": "set", "key": "/r/c", "value": 3})
	w.must(m{"op": "set", "key": "/other", "value": 1})
	w.must(m{"op": "set", "key": "/r/c", "value": 4})
	c2 := ts.dial(t)
	c2.must(m{"op": "sub", "path": "/r/", "since": last})
	got = c2.expectEvents(c2.id, "delete /r/b @1", "set /r/c 3@0", "set /r/c 4@1", "ready")
	if got[3].Seq == nil || *got[3].Seq != ts.h.Seq() {
		t.Fatalf("ready: %s, want seq %d", got[3].raw, ts.h.Seq())
	}
	w.must(m{"op": "set", "key": "/r/d", "value": 5})
	c2.expectEvents(c2.id, "set /r/d 5@0")

	// Resuming from a ready position ("seq").
	c3 := ts.dial(t)
	c3.must(m{"op": "sub", "path": "/r/c", "since": strconv.FormatUint(*got[3].Seq, 10)})
	c3.expectEvents(c3.id, "ready")

	// Too old for the history of 8: a reset, the current state, ready.
	for i := range 10 {
		w.must(m{"op": "set", "key": "/other", "value": i})
	}
	c4 := ts.dial(t)
	c4.must(m{"op": "sub", "path": "/r/", "since": "1"})
	c4.expectEvents(c4.id, "reset", "set /r/c 4@1 snap", "set /r/d 5@0 snap", "ready")
	// A snapshot position cannot be resumed: also a reset.
	c4.must(m{"op": "sub", "path": "/r/d", "since": "/r/d:0:5:s"})
	c4.expectEvents(c4.id, "reset", "set /r/d 5@0 snap", "ready")
	c4.sendRaw(`{"id":` + strconv.Itoa(c4.id) + `,"op":"sub","path":"/r/"}`)
	if a := c4.answer(strconv.Itoa(c4.id)); a.Code != "invalid_id" {
		t.Fatalf("a second sub with an open sub's id: %s", a.raw)
	}
}

// TestWSUnsubNoLeak: unsub and the end of the connection close the hub subscriptions.
func TestWSUnsubNoLeak(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/a/"})
	first := c.id
	c.must(m{"op": "sub", "path": "/b"})
	if n := ts.h.Subscribers(); n != 2 {
		t.Fatalf("Subscribers = %d, want 2", n)
	}
	c.must(m{"op": "unsub", "sub": first})
	if n := ts.h.Subscribers(); n != 1 {
		t.Fatalf("after unsub: Subscribers = %d, want 1", n)
	}
	c.c.Close(websocket.StatusNormalClosure, "")
	wsWaitFor(t, "the connection's subscriptions to close", func() bool { return ts.h.Subscribers() == 0 })
}

// TestWSSlowSubscription: a subscription whose hub queue overflows ends with close "slow"; the
// client subscribes again with since and gets every event exactly once.
func TestWSSlowSubscription(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{QueueSize: 16}, Config{}, true)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/s/"})
	sub := c.id
	const n = 1500
	pad := strings.Repeat("x", 200)
	for i := range n {
		if _, err := ts.h.Set("/s/k", []byte(`"`+strconv.Itoa(i)+pad+`"`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The client has not read a thing: far more than the queue waits for it.
	next, lastPos, closed := 0, "", false
	check := func(e wsMsg) {
		want := `"` + strconv.Itoa(next) + pad + `"`
		if string(e.Value) != want || *e.Revision != int64(next) {
			t.Fatalf("event %d: %.40s rev %d", next, e.Value, *e.Revision)
		}
		next++
		lastPos = e.pos()
	}
	c.expectEvents(sub, "ready")
	for !closed {
		e := c.event()
		switch e.Type {
		case "set":
			check(e)
		case "close":
			if e.Reason != "slow" {
				t.Fatalf("close: %s", e.raw)
			}
			closed = true
		default:
			t.Fatalf("unexpected %s", e.raw)
		}
	}
	if next == n {
		t.Fatal("the subscription never fell behind; the test proves nothing")
	}
	c.must(m{"op": "sub", "path": "/s/", "since": lastPos})
	for next < n {
		e := c.event()
		if string(e.Sub) != strconv.Itoa(c.id) || e.Type != "set" {
			t.Fatalf("after resubscribing: %s", e.raw)
		}
		check(e)
	}
	c.expectEvents(c.id, "ready")
}

// TestWSSlowSubscriptionBytes: a client that stops reading while 1 MiB values are written has its
// subscription closed as slow once the hub queue holds QueueBytes, far below QueueSize events (the
// connection's own queue is bounded in bytes too), and resumes without a gap.
func TestWSSlowSubscriptionBytes(t *testing.T) {
	t.Parallel()
	// Ordinary socket buffers: tiny ones make each 1 MiB message crawl through delayed ACKs.
	ts := newWSServer(t, hub.Config{QueueBytes: 4 << 20}, Config{WriteTimeout: time.Minute}, false)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/big/"})
	sub := c.id
	c.expectEvents(sub, "ready")
	value := func(i int) string { return `"` + strconv.Itoa(i) + strings.Repeat("x", 1<<20-8) + `"` }
	n := 0
	for ts.h.Subscribers() > 0 {
		if n == 200 {
			t.Fatal("the subscription was never closed as slow")
		}
		if _, err := ts.h.Set("/big/k", []byte(value(n)), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	next, lastPos := 0, ""
	for closed := false; !closed; {
		e := c.event()
		switch e.Type {
		case "set":
			if string(e.Value) != value(next) || *e.Revision != int64(next) {
				t.Fatalf("event %d: %.40s rev %d", next, e.Value, *e.Revision)
			}
			next++
			lastPos = e.pos()
		case "close":
			if e.Reason != "slow" || string(e.Sub) != strconv.Itoa(sub) {
				t.Fatalf("close: %s", e.raw)
			}
			closed = true
		default:
			t.Fatalf("unexpected %.80s", e.raw)
		}
	}
	if next == n {
		t.Fatal("the subscription never fell behind; the test proves nothing")
	}
	t.Logf("closed as slow after %d of %d events", next, n)
	if n >= wsQueueSize {
		t.Fatalf("%d writes before the close: the connection's queue took more than wsQueueBytes", n)
	}
	c.must(m{"op": "sub", "path": "/big/", "since": lastPos})
	for next < n {
		e := c.event()
		if e.Type != "set" || *e.Revision != int64(next) {
			t.Fatalf("after resubscribing: %.80s", e.raw)
		}
		next++
	}
	c.expectEvents(c.id, "ready")
}

// TestWSListBytes: the list op pages by bytes as the HTTP listing does: 1 MiB values come in pages
// of at most hub.DefaultListBytes (or one entry) whose concatenation is the subtree.
func TestWSListBytes(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	const n = 6
	value := func(i int) string { return `"` + strconv.Itoa(i) + strings.Repeat("v", 1<<20-3) + `"` }
	for i := range n {
		if _, err := ts.h.Set("/big/"+strconv.Itoa(i), []byte(value(i)), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.dial(t)
	next, pages, cursor := 0, 0, ""
	for {
		a := c.must(m{"op": "list", "path": "/big/", "cursor": cursor})
		pages++
		used := 0
		for _, e := range a.Entries {
			if e.Key != "/big/"+strconv.Itoa(next) || string(e.Value) != value(next) {
				t.Fatalf("page %d: entry %s, want /big/%d", pages, e.Key, next)
			}
			used += len(e.Key) + len(e.Value)
			next++
		}
		if len(a.Entries) == 0 || len(a.Entries) > 1 && used > hub.DefaultListBytes {
			t.Fatalf("page %d: %d entries of %d bytes", pages, len(a.Entries), used)
		}
		if cursor = a.Cursor; cursor == "" {
			break
		}
	}
	if next != n || pages < 2 {
		t.Fatalf("%d entries in %d pages, want %d in several", next, pages, n)
	}
}

// TestWSSlowConnection: a client that reads nothing while its queue stays full is disconnected,
// and its subscriptions are closed.
func TestWSSlowConnection(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{WriteTimeout: 200 * time.Millisecond}, true)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/s/"})
	// Enough to fill the socket and the connection's queue, well within the hub queue (4096), so
	// it is the connection that is found slow, not the subscription.
	pad := strings.Repeat("y", 1000)
	for i := range 1000 {
		if _, err := ts.h.Set("/s/"+strconv.Itoa(i%100), []byte(`"`+pad+`"`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	wsWaitFor(t, "the slow connection to be closed", func() bool { return ts.h.Subscribers() == 0 })
	var err error
	for err == nil {
		_, err = c.readMsg()
	}
	// The close frame reaches the client only when the socket had room for it.
	t.Logf("connection ended: %v (status %d)", err, websocket.CloseStatus(err))
}

// TestWSShutdown: Drain ends every subscription with close "shutdown", then the socket with 1001.
func TestWSShutdown(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/a/"})
	c.must(m{"op": "sub", "path": "/b"})
	idle := ts.dial(t)
	idle.must(m{"op": "set", "key": "/idle", "value": 1})
	ts.h.Drain()
	closes := map[string]bool{}
	for {
		msg, err := c.readMsg()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("socket ended with %v, want status 1001", err)
			}
			break
		}
		if msg.Type == "close" && msg.Reason == "shutdown" {
			closes[string(msg.Sub)] = true
		} else if msg.Type != "ready" {
			t.Fatalf("unexpected %s", msg.raw)
		}
	}
	if len(closes) != 2 {
		t.Fatalf("close events for %v, want both subscriptions", closes)
	}
	if _, err := idle.readMsg(); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("a connection without subscriptions ended with %v, want status 1001", err)
	}
}

// TestWSManyClients: every client sees every message, in commit order, while many write at once.
func TestWSManyClients(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	const readers, writers, each = 16, 4, 50
	subs := make([]*wsClient, readers)
	for i := range subs {
		subs[i] = ts.dial(t)
		subs[i].must(m{"op": "sub", "path": "/chat/"})
		subs[i].expectEvents(subs[i].id, "ready")
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		c := ts.dial(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c.id++
				b, _ := json.Marshal(m{"id": c.id, "op": "set", "key": fmt.Sprintf("/chat/w%d", w), "value": i})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.c.Write(ctx, websocket.MessageText, b)
				if err == nil {
					var a wsMsg
					if a, err = c.readMsg(); err == nil && !a.OK {
						err = errors.New(a.raw)
					}
				}
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lastSeq := uint64(0)
			next := map[string]int{}
			for range writers * each {
				e, err := s.readMsg()
				if err != nil {
					errs <- err
					return
				}
				if e.Type != "set" || *e.Seq <= lastSeq || string(e.Value) != strconv.Itoa(next[e.Key]) {
					errs <- fmt.Errorf("out of order or unexpected: %s after seq %d", e.raw, lastSeq)
					return
				}
				lastSeq = *e.Seq
				next[e.Key]++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestWSEphemeral: an ephemeral key outlives its connection by exactly the grace period, unless
// the client comes back and writes it again.
func TestWSEphemeral(t *testing.T) {
	t.Parallel()
	const grace = 10 * time.Second
	clock := fakeclock.New(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	ts := newWSServer(t, hub.Config{Clock: clock, EphemeralGrace: grace}, Config{}, false)
	watch := ts.dial(t)
	watch.must(m{"op": "sub", "path": "/room/"})
	watch.expectEvents(watch.id, "ready")

	// ann goes away for good; bob reloads and writes his key again within the grace period.
	ann, bob := ts.dial(t), ts.dial(t)
	ann.must(m{"op": "sub", "path": "/room/ann"}) // lets the test see when the connection has ended
	ann.must(m{"op": "set", "key": "/room/ann", "value": "here", "ephemeral": true})
	bob.must(m{"op": "sub", "path": "/room/bob"})
	bob.must(m{"op": "set", "key": "/room/bob", "value": "here", "ephemeral": true})
	watch.expectEvents(watch.id, `set /room/ann "here"@0`, `set /room/bob "here"@0`)
	if e, _ := ts.h.Get("/room/ann"); !e.Ephemeral {
		t.Fatal("not stored as ephemeral")
	}

	ann.c.Close(websocket.StatusNormalClosure, "")
	bob.c.Close(websocket.StatusNormalClosure, "")
	// Each connection's session ends before its subscriptions close.
	wsWaitFor(t, "the connections to end", func() bool { return ts.h.Subscribers() == 1 })
	clock.Advance(grace / 2)
	bob2 := ts.dial(t)
	bob2.must(m{"op": "set", "key": "/room/bob", "value": "back", "ephemeral": true})
	watch.expectEvents(watch.id, `set /room/bob "back"@1`)

	clock.Advance(grace/2 - time.Nanosecond)
	if _, err := ts.h.Get("/room/ann"); err != nil {
		t.Fatal("deleted before the grace period ended")
	}
	clock.Advance(time.Nanosecond)
	watch.expectEvents(watch.id, `delete /room/ann @1`)
	clock.Advance(time.Hour)
	if _, err := ts.h.Get("/room/bob"); err != nil {
		t.Fatal("the key written again by the returning client was deleted")
	}
	// A plain write makes the key ordinary: it stays after its writer leaves.
	bob2.must(m{"op": "set", "key": "/room/bob", "value": "stays"})
	watch.expectEvents(watch.id, `set /room/bob "stays"@2`)
	bob2.must(m{"op": "sub", "path": "/room/bob"})
	bob2.c.Close(websocket.StatusNormalClosure, "")
	wsWaitFor(t, "bob's connection to end", func() bool { return ts.h.Subscribers() == 1 })
	clock.Advance(2 * grace)
	if _, err := ts.h.Get("/room/bob"); err != nil {
		t.Fatal("a key made ordinary was deleted with its writer's session")
	}
}

// FuzzWSMessage: the request decoder never panics, and what it refuses is a 400, never a 5xx.
func FuzzWSMessage(f *testing.F) {
	for _, s := range []string{
		`{"op":"set","id":1,"key":"/a","value":{"x":[1,2]},"ttl":"1s","ephemeral":true,"idem":"k"}`,
		`{"op":"sub","id":"s","path":"/a/","since":"/a/b:1:2","snapshot":true}`,
		`{"op":"sub","id":"b","path":"/a/","broadcasts":true}`, `{"op":"sub","id":"c","path":"/a/","broadcasts":"yes","since":"1"}`,
		`{"op":"tx","id":2,"checks":[{"key":"/a","revision":-1}],"ops":[{"op":"set","key":"/a","value":1}]}`,
		`{"op":"get","id":{},"key":"/a"}`,
		`{"op":"ondisconnect","id":3,"key":"/a","value":{"x":1}}`, `{"op":"ondisconnect","id":4,"key":"/a","delete":"yes","cancel":1}`,
		`{"op":"hello","id":5}`,
		`{"op":"broadcast","id":6,"path":"/room/1/","msg":{"x":[1,2]}}`, `{"op":"broadcast","id":7,"path":"/r","msg":"\ud800"}`,
		`{"op":5}`, `[]`, `null`, `{"op":"incr","by":1e400}`, "\x00", `{"id":1e999}`,
		"{\"id\" : -7.5e3 ,\"op\":\"get\"}", "{\"id\":\t\"a b\"\n,\"op\":\"get\"}", `{"id":true,"op":"get"}`, `{"id":null,"op":"get"}`,
		"{\"op\":\"set\",\"id\":\"\xff\",\"key\":\"/a\",\"value\":1}", "{\"op\":\"lock\",\"id\":1,\"key\":\"/l\",\"owner\":\"\xed\xa0\x80\"}",
		"{\"op\":\"tx\",\"id\":2,\"ops\":[{\"op\":\"set\",\"key\":\"/a\",\"value\":{\"\xc0\xaf\":1}}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeWSMessage(data)
		if err != nil {
			if status, code, _ := classify(err); status != 400 || code == "" {
				t.Fatalf("decode error %v maps to %d %q, want a 400", err, status, code)
			}
			if req.ID != nil && (!json.Valid(req.ID) || !utf8.Valid(req.ID)) {
				t.Fatalf("invalid id %q kept", req.ID)
			}
			return
		}
		if req.Op == "" {
			t.Fatal("a request without op was accepted")
		}
		if !utf8.Valid(data) {
			t.Fatalf("a request that is not UTF-8 was accepted: %q", data)
		}
		if req.ID != nil {
			var v any
			if json.Unmarshal(req.ID, &v) != nil {
				t.Fatalf("id %q is not JSON", req.ID)
			}
			switch v.(type) {
			case float64, string:
			default:
				t.Fatalf("id %q is neither a number nor a string", req.ID)
			}
			var compact bytes.Buffer
			if json.Compact(&compact, req.ID) != nil || !bytes.Equal(compact.Bytes(), req.ID) {
				t.Fatalf("id %q is not compact", req.ID)
			}
			if _, err := json.Marshal(wsAnswer{ID: req.ID}); err != nil {
				t.Fatalf("id %q cannot be echoed: %v", req.ID, err)
			}
		}
	})
}

// TestWSQueueBound: a socket's outgoing queue takes wsQueueSize messages, and a message that would
// take it past wsQueueBytes only when it is empty; a sender then waits until the writer has written
// what it took, or gives up when the connection ends. The writer keeps little room between runs.
func TestWSQueueBound(t *testing.T) {
	t.Parallel()
	newConn := func() *wsConn {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		// over: no writer runs; the test takes the queue as the writer does.
		return &wsConn{s: &Server{cfg: Config{WriteTimeout: time.Hour}}, ctx: ctx, cancel: cancel,
			room: make(chan struct{}), stop: make(chan struct{}), over: true}
	}
	// waitSender returns once a sender waits for room.
	waitSender := func(c *wsConn) {
		for {
			c.outMu.Lock()
			w := c.waiting
			c.outMu.Unlock()
			if w {
				return
			}
			runtime.Gosched()
		}
	}

	t.Run("messages", func(t *testing.T) {
		c := newConn()
		for i := range wsQueueSize {
			if !c.send([]byte(strconv.Itoa(i))) {
				t.Fatalf("message %d refused", i)
			}
		}
		done := make(chan bool)
		go func() { done <- c.send([]byte("last")) }()
		waitSender(c)
		if !c.take() || len(c.batch) != wsQueueSize {
			t.Fatalf("the writer took %d messages, want %d", len(c.batch), wsQueueSize)
		}
		select {
		case <-done:
			t.Fatal("a sender went on before the writer had written what it took")
		default:
		}
		c.wrote(len(c.batch), 0)
		if !<-done {
			t.Fatal("the sender gave up")
		}
		if !c.take() || len(c.batch) != 1 || string(c.batch[0].body) != "last" {
			t.Fatalf("then the writer took %d messages", len(c.batch))
		}
		if cap(c.batch) > wsKeepQueue || cap(c.out) > wsKeepQueue {
			t.Fatalf("after a burst the writer keeps room for %d and %d messages", cap(c.batch), cap(c.out))
		}
	})

	t.Run("bytes", func(t *testing.T) {
		c := newConn()
		if !c.send(make([]byte, wsQueueBytes+1)) {
			t.Fatal("an empty queue refused a message larger than wsQueueBytes")
		}
		done := make(chan bool)
		go func() { done <- c.send([]byte("1")) }()
		waitSender(c)
		c.end(disconnectSlow, false)
		if <-done {
			t.Fatal("a sender over wsQueueBytes went on after the connection ended")
		}
	})
}

// TestWSIdleSocketsHaveOneGoroutine: an idle socket has one goroutine, its reader; the writer runs
// only while it has something to write, and the handler's goroutine has returned.
func TestWSIdleSocketsHaveOneGoroutine(t *testing.T) {
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	const n = 20
	clients, subs := make([]*wsClient, n), make([]int, n)
	for i := range clients {
		clients[i] = ts.dial(t)
		clients[i].must(m{"op": "sub", "path": "/idle/"})
		subs[i] = clients[i].id
		clients[i].expectEvents(subs[i], "ready")
	}
	idle := func() bool { // every goroutine in a socket's methods is a reader; no handler is left
		return goroutinesIn(`web\.\(\*wsConn\)\.\w+\+`) == n && goroutinesIn(`web\.\(\*wsConn\)\.readLoop\+`) == n &&
			goroutinesIn(`web\.\(\*Server\)\.ws\+`) == 0
	}
	wsWaitFor(t, "one goroutine per idle socket", idle)
	clients[0].must(m{"op": "set", "key": "/idle/k", "value": 1})
	for i, c := range clients {
		c.expectEvents(subs[i], "set /idle/k 1@0")
	}
	wsWaitFor(t, "one goroutine per idle socket after a change", idle)
}

// goroutinesIn counts the goroutines whose stack has a frame matching re.
func goroutinesIn(re string) int {
	frame := regexp.MustCompile(re)
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	_, records, _ := strings.Cut(b.String(), "\n") // after "goroutine profile: total N"
	n := 0
	for _, g := range strings.Split(records, "\n\n") {
		if frame.MatchString(g) {
			count, _, _ := strings.Cut(g, " ")
			c, _ := strconv.Atoi(count)
			n += c
		}
	}
	return n
}
