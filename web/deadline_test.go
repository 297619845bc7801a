package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
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
	ws, _, done := dialCorked(t, func(ws *websocket.Conn, cork *corkConn) error {
		cork.cork() // as the writer holds it while it writes a batch
		_, _, err := ws.Read(context.Background())
		return err
	})
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("the client's close handshake: %v", err)
	}
	if err := <-done; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("the server read %v, want the client's close", err)
	}
}

// dialCorked serves one WebSocket accepted as Server.ws accepts it (through a corkHijacker) and
// dials it with coder/websocket's client. serve runs on the server's side with the connection and
// its cork; its error, or the accept's, comes on the returned channel. The client's connection and
// the context for its reads (10 s) end with the test.
func dialCorked(t *testing.T, serve func(ws *websocket.Conn, cork *corkConn) error) (*websocket.Conn, context.Context, <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj := &corkHijacker{ResponseWriter: w, timeout: 5 * time.Second}
		ws, err := websocket.Accept(hj, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.CloseNow()
		done <- serve(ws, hj.conn)
	}))
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws, ctx, done
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
	conns, release := make(chan *wsConn, 1), make(chan struct{})
	defer close(release)
	client, ctx, done := dialCorked(t, func(ws *websocket.Conn, cork *corkConn) error {
		conns <- &wsConn{s: s, ws: ws, cork: cork, subs: map[string]*wsSub{}}
		<-release
		return nil
	})
	go func() { // reads and drops what the server writes
		for {
			if _, _, err := client.Read(ctx); err != nil {
				return
			}
		}
	}()
	var c *wsConn
	select {
	case c = <-conns:
	case err := <-done:
		t.Fatalf("no connection: %v", err)
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

// TestCorkConnTextFrames: the messages the writer frames itself (corkConn.text) are read back
// whole by coder/websocket's client, at each of the frame's three length encodings and at their
// edges, alone and several in one write.
func TestCorkConnTextFrames(t *testing.T) {
	t.Parallel()
	sizes := []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 70000, 1 << 20}
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	ws, ctx, done := dialCorked(t, func(ws *websocket.Conn, cork *corkConn) error {
		for _, batch := range [][]int{sizes[:1], sizes[1:2], sizes[2:3], sizes[3:5], sizes[5:]} {
			cork.cork()
			for _, n := range batch {
				if err := cork.text(payload(n)); err != nil {
					return err
				}
			}
			if err := cork.uncork(); err != nil {
				return err
			}
		}
		ws.Read(context.Background()) // until the client closes
		return nil
	})
	ws.SetReadLimit(2 << 20)
	for _, n := range sizes {
		typ, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("reading the message of %d bytes: %v", n, err)
		}
		if typ != websocket.MessageText || !bytes.Equal(got, payload(n)) {
			t.Fatalf("message of %d bytes read back as %v of %d bytes", n, typ, len(got))
		}
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close after the messages: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCorkConnNoTextAfterClose: once the library has written a close frame, the connection takes
// no message, corked or not: the protocol allows none after it.
func TestCorkConnNoTextAfterClose(t *testing.T) {
	t.Parallel()
	for _, corked := range []bool{false, true} {
		server, client := net.Pipe()
		go io.Copy(io.Discard, client)
		c := newCorkConn(server, 5*time.Second)
		c.cork()
		if err := c.text([]byte(`{"a":1}`)); err != nil {
			t.Fatalf("a message before the close frame: %v", err)
		}
		if !corked {
			if err := c.uncork(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Write([]byte{wsCloseFrame, 2, 0x03, 0xe8}); err != nil { // close, 1000
			t.Fatal(err)
		}
		if err := c.text([]byte(`{"a":2}`)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("corked %v: a message after the close frame: %v, want net.ErrClosed", corked, err)
		}
		c.Close()
		client.Close()
	}
}
