package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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
