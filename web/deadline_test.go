package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/hub"
)

// TestCorkedCloseFrameLeaves: the library answers a peer's close frame and closes the connection
// at once, from the reading goroutine, whoever holds the cork: the answer still reaches the peer,
// so its close handshake completes cleanly.
func TestCorkedCloseFrameLeaves(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj := &corkHijacker{ResponseWriter: w, timeout: 5 * time.Second}
		ws, err := websocket.Accept(hj, r, nil)
		if err != nil {
			done <- err
			return
		}
		hj.conn.cork() // as the writer holds it while it writes a batch
		_, _, err = ws.Read(context.Background())
		done <- err
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("the client's close handshake: %v", err)
	}
	if err := <-done; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("the server read %v, want the client's close", err)
	}
}

// TestWSWriterGivesBurstsBack: once the writer has written a burst of a subscription's events,
// the slices it took them in go back (keepEvents), as the hub's queue does: an idle socket
// holds no burst's memory.
func TestWSWriterGivesBurstsBack(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: wsQuiet})
	defer h.Close()
	s := New(h, Config{Logger: wsQuiet})
	notify := make(chan struct{}, 1)
	hs, err := h.Subscribe("/burst/", hub.SubscribeOptions{Notify: func() {
		select {
		case notify <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	conns, done := make(chan *wsConn, 1), make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj := &corkHijacker{ResponseWriter: w, timeout: 5 * time.Second}
		ws, err := websocket.Accept(hj, r, nil)
		if err != nil {
			close(conns)
			return
		}
		defer ws.CloseNow()
		conns <- &wsConn{s: s, ws: ws, cork: hj.conn, subs: map[string]*wsSub{}}
		<-done
	}))
	defer ts.Close()
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	go func() { // reads and drops what the server writes
		for {
			if _, _, err := client.Read(ctx); err != nil {
				return
			}
		}
	}()
	c := <-conns
	if c == nil {
		t.Fatal("no connection")
	}
	sb := &wsSub{id: json.RawMessage(`1`), hs: hs}
	c.subs["1"], c.active = sb, []*wsSub{sb}
	const burst = 4 * keepEvents
	for i := range burst {
		if _, err := h.Set("/burst/"+strconv.Itoa(i), []byte(`1`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.writeAll(); err != nil {
		t.Fatal(err)
	}
	if cap(c.taken) > keepEvents || cap(c.due) > keepEvents {
		t.Fatalf("after a burst of %d events the writer keeps room for %d and %d", burst, cap(c.taken), cap(c.due))
	}
}
