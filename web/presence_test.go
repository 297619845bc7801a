package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// wsGraceServer runs a WebSocket server with the HS256 secret and the admin token whose hub, on a
// fake clock, keeps a lost connection's ephemeral keys and on-disconnect writes for grace.
func wsGraceServer(t testing.TB, grace time.Duration) (*wsServer, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	authn, err := auth.New(auth.Config{JWTSecret: wsTestSecret, AdminToken: wsTestAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return newWSServer(t, hub.Config{Clock: clock, EphemeralGrace: grace}, Config{Auth: authn}, false), clock
}

// eventsByKey reads c's next n events, of as many keys, by key: their order across keys is not
// guaranteed.
func eventsByKey(c *wsClient, n int) map[string]wsMsg {
	got := map[string]wsMsg{}
	for range n {
		e := c.event()
		got[e.Key] = e
	}
	return got
}

// TestWSPresence: an ephemeral key's answers, listing, GET headers and events carry its owner
// (the token's subject and the connection id the server told the client); a write from another
// connection says "replaced"; a connection closed with a close frame leaves with "closed", one
// cut without it with "timeout"; SSE delete events carry the same in their data.
func TestWSPresence(t *testing.T) {
	t.Parallel()
	const grace = 10 * time.Second
	ts, clock := wsGraceServer(t, grace)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	dial := func(token string) (*wsClient, string) {
		c := ts.dial(t)
		a := c.must(m{"op": "auth", "token": token})
		if len(a.Conn) != 16 {
			t.Fatalf("auth answer %s: want a connection id", a.raw)
		}
		return c, a.Conn
	}
	write := map[string][]string{"write": {"/room/"}}
	watch, _ := dial(wsTestAdmin)
	watch.must(m{"op": "sub", "path": "/room/"})
	subID := watch.id
	watch.expectEvents(subID, "ready")
	start := watch.must(m{"op": "set", "key": "/room/start", "value": 0})
	watch.expectEvents(subID, "set /room/start 0@0")

	ann, annConn := dial(wsToken(t, "ann", write))
	hello := ann.must(m{"op": "hello"})
	if hello.Conn != annConn || string(hello.Sub) != `"ann"` {
		t.Fatalf("hello %s: want conn %s and sub ann", hello.raw, annConn)
	}
	a := ann.must(m{"op": "set", "key": "/room/ann", "value": "here", "ephemeral": true})
	if a.Conn != annConn {
		t.Fatalf("ephemeral set answer %s: want conn %s", a.raw, annConn)
	}
	annP := PresenceJSON{Sub: "ann", Conn: annConn}
	checkEvent := func(e wsMsg, typ, key string, p *PresenceJSON, reason string) {
		t.Helper()
		if e.Type != typ || e.Key != key || fmt.Sprint(e.Presence) != fmt.Sprint(p) || e.Reason != reason {
			t.Fatalf("event %s: want %s %s presence %+v reason %q", e.raw, typ, key, p, reason)
		}
	}
	checkEvent(watch.event(), "set", "/room/ann", &annP, "")
	if g := watch.must(m{"op": "get", "key": "/room/ann"}); fmt.Sprint(g.Presence) != fmt.Sprint(&annP) {
		t.Fatalf("get %s: want presence %+v", g.raw, annP)
	}
	if g := watch.must(m{"op": "get", "key": "/room/start"}); g.Presence != nil || strings.Contains(g.raw, "presence") {
		t.Fatalf("get of a plain key %s: want no presence", g.raw)
	}
	l := watch.must(m{"op": "list", "path": "/room/"})
	if len(l.Entries) != 2 || fmt.Sprint(l.Entries[0].Presence) != fmt.Sprint(&annP) || l.Entries[1].Presence != nil {
		t.Fatalf("list %s", l.raw)
	}
	req, _ := http.NewRequest("GET", base+"/room/ann", nil)
	req.Header.Set("Authorization", "Bearer "+wsTestAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Presence-Conn") != annConn || resp.Header.Get("X-Presence-Sub") != "ann" {
		t.Fatalf("GET headers %v: want the presence", resp.Header)
	}

	// Another connection takes a key over.
	bob, bobConn := dial(wsToken(t, "bob", write))
	bobP := PresenceJSON{Sub: "bob", Conn: bobConn}
	ann.must(m{"op": "set", "key": "/room/seat", "value": 1, "ephemeral": true})
	checkEvent(watch.event(), "set", "/room/seat", &annP, "")
	bob.must(m{"op": "set", "key": "/room/seat", "value": 2, "ephemeral": true})
	checkEvent(watch.event(), "set", "/room/seat", &bobP, hub.ReasonReplaced)
	bob.must(m{"op": "set", "key": "/room/bob", "value": "here", "ephemeral": true})
	checkEvent(watch.event(), "set", "/room/bob", &bobP, "")

	// ann closes her socket; bob's is cut without a close frame.
	ann.must(m{"op": "sub", "path": "/room/ann"}) // lets the test see when the connection has ended
	bob.must(m{"op": "sub", "path": "/room/bob"})
	ann.c.Close(websocket.StatusNormalClosure, "")
	bob.c.CloseNow()
	wsWaitFor(t, "the connections to end", func() bool { return ts.h.Subscribers() == 1 })
	clock.Advance(grace)
	got := eventsByKey(watch, 3)
	checkEvent(got["/room/ann"], "delete", "/room/ann", &annP, hub.ReasonClosed)
	checkEvent(got["/room/bob"], "delete", "/room/bob", &bobP, hub.ReasonTimeout)
	checkEvent(got["/room/seat"], "delete", "/room/seat", &bobP, hub.ReasonTimeout)

	// A history read shows them too.
	req, _ = http.NewRequest("GET", base+"/room/seat?history", nil)
	req.Header.Set("Authorization", "Bearer "+wsTestAdmin)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	var hist HistoryAnswer
	err = json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	if err != nil || len(hist.Entries) != 3 {
		t.Fatalf("history of /room/seat: %+v %v", hist, err)
	}
	for i, w := range []struct {
		p      PresenceJSON
		reason string
	}{{bobP, hub.ReasonTimeout}, {bobP, hub.ReasonReplaced}, {annP, ""}} {
		if e := hist.Entries[i]; e.Presence == nil || *e.Presence != w.p || e.Reason != w.reason {
			t.Errorf("history entry %d: %+v presence %+v, want presence %+v reason %q", i, e, e.Presence, w.p, w.reason)
		}
	}

	// An SSE stream from before replays the deletes with their presence and reason in data.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/room/?since="+hub.EventID("/room/start", 0, *start.Seq, false), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+wsTestAdmin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	deletes := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	var kind, id string
	for len(deletes) < 3 && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			kind = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: ") && kind == "delete":
			deletes[strings.Split(id, ":")[0]] = strings.TrimPrefix(line, "data: ")
		case line == "":
			kind, id = "", ""
		}
	}
	want := map[string]string{
		"/room/ann":  `{"presence":{"sub":"ann","conn":"` + annConn + `"},"reason":"closed"}`,
		"/room/bob":  `{"presence":{"sub":"bob","conn":"` + bobConn + `"},"reason":"timeout"}`,
		"/room/seat": `{"presence":{"sub":"bob","conn":"` + bobConn + `"},"reason":"timeout"}`,
	}
	for k, w := range want {
		if deletes[k] != w {
			t.Errorf("SSE delete of %s: data %s, want %s", k, deletes[k], w)
		}
		var v any
		if err := json.Unmarshal([]byte(deletes[k]), &v); err != nil {
			t.Errorf("SSE delete data of %s is not JSON: %v", k, err)
		}
	}
}

// TestWSOnDisconnect: an on-disconnect write registered over the WebSocket is made once the
// connection has been gone for the grace period, with the reason in its events; it is authorized
// when registered; a reconnecting client's registration of the same key replaces the old
// connection's (a reload does not run it); a cancelled one is not made; bad requests are 400 and
// registrations past the limit 429.
func TestWSOnDisconnect(t *testing.T) {
	t.Parallel()
	const grace = 10 * time.Second
	ts, clock := wsGraceServer(t, grace)
	dial := func(token string) *wsClient {
		c := ts.dial(t)
		c.must(m{"op": "auth", "token": token})
		c.must(m{"op": "sub", "path": "/room/ping"}) // lets the test see when the connection has ended
		return c
	}
	write := map[string][]string{"write": {"/room/"}}
	watch := ts.dial(t)
	watch.must(m{"op": "auth", "token": wsTestAdmin})
	watch.must(m{"op": "sub", "path": "/room/"})
	subID := watch.id
	watch.expectEvents(subID, "ready")

	ann := dial(wsToken(t, "ann", write))
	ann.must(m{"op": "ondisconnect", "key": "/room/status/ann", "value": "offline"})
	ann.must(m{"op": "ondisconnect", "key": "/room/typing/ann", "delete": true})
	ann.must(m{"op": "set", "key": "/room/typing/ann", "value": true})
	watch.expectEvents(subID, "set /room/typing/ann true@0")
	for _, tc := range []struct {
		req  m
		code string
	}{
		{m{"op": "ondisconnect", "key": "/other/x", "value": 1}, "forbidden"},
		{m{"op": "ondisconnect", "key": "/room/x"}, "bad_request"},
		{m{"op": "ondisconnect", "key": "/room/x", "value": 1, "delete": true}, "bad_request"},
		{m{"op": "ondisconnect", "key": "/room/x", "value": 1, "cancel": true}, "bad_request"},
		{m{"op": "ondisconnect", "value": 1}, "bad_request"},
		{m{"op": "ondisconnect", "key": "/room/bad key", "value": 1}, "invalid_key"},
	} {
		if a := ann.call(tc.req); a.OK || a.Code != tc.code {
			t.Errorf("%v: %s, want code %s", tc.req, a.raw, tc.code)
		}
	}

	// bob reloads: his new connection registers the same key, which replaces the old one's.
	bob := dial(wsToken(t, "bob", write))
	bob.must(m{"op": "ondisconnect", "key": "/room/status/bob", "value": "offline"})
	cy := dial(wsToken(t, "cy", write))
	cy.must(m{"op": "ondisconnect", "key": "/room/status/cy", "value": "offline"})
	cy.must(m{"op": "ondisconnect", "key": "/room/status/cy", "cancel": true})

	ann.c.CloseNow()
	bob.c.Close(websocket.StatusNormalClosure, "")
	cy.c.Close(websocket.StatusNormalClosure, "")
	wsWaitFor(t, "the connections to end", func() bool { return ts.h.Subscribers() == 1 })
	bob2 := dial(wsToken(t, "bob", write))
	bob2.must(m{"op": "ondisconnect", "key": "/room/status/bob", "value": "offline"})
	clock.Advance(grace)
	got := eventsByKey(watch, 2)
	if e := got["/room/status/ann"]; e.Type != "set" || string(e.Value) != `"offline"` || e.Reason != hub.ReasonTimeout {
		t.Fatalf("/room/status/ann: %s, want the on-disconnect set with reason timeout", e.raw)
	}
	if e := got["/room/typing/ann"]; e.Type != "delete" || e.Reason != hub.ReasonTimeout {
		t.Fatalf("/room/typing/ann: %s, want the on-disconnect delete with reason timeout", e.raw)
	}
	// Nothing else: bob's old registration was replaced, cy's cancelled.
	watch.must(m{"op": "set", "key": "/room/marker", "value": 1})
	if e := watch.event(); e.Key != "/room/marker" {
		t.Fatalf("event %s before the marker", e.raw)
	}

	bob2.c.Close(websocket.StatusNormalClosure, "")
	wsWaitFor(t, "bob's connection to end", func() bool { return ts.h.Subscribers() == 1 })
	clock.Advance(grace)
	if e := watch.event(); e.Key != "/room/status/bob" || e.Reason != hub.ReasonClosed {
		t.Fatalf("event %s, want bob's on-disconnect write with reason closed", e.raw)
	}

	many := dial(wsToken(t, "many", write))
	for i := range hub.MaxDisconnectWrites {
		many.must(m{"op": "ondisconnect", "key": fmt.Sprintf("/room/many/%d", i), "value": i})
	}
	if a := many.call(m{"op": "ondisconnect", "key": "/room/many/x", "value": 1}); a.Status != http.StatusTooManyRequests || a.Code != "too_many_ondisconnect" {
		t.Fatalf("past the limit: %s, want 429 too_many_ondisconnect", a.raw)
	}
	many.must(m{"op": "ondisconnect", "cancel": true})
}
