package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
)

// TestHistoryHTTPAndWS: GET /key?history and the WebSocket's history op answer the same pages,
// newest first, paged by the cursor; below the retained history both answer 410 history_gone.
func TestHistoryHTTPAndWS(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{HistorySize: 4}, Config{}, false)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	c := ts.dial(t)
	for i := range 3 {
		c.must(map[string]any{"op": "set", "key": "/h/k", "value": i})
	}
	c.must(map[string]any{"op": "delete", "key": "/h/k"})

	// The whole history is retained: two pages, the second without a cursor.
	status, body := get("/h/k?history&limit=3")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var page HistoryAnswer
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 3 || !page.Entries[0].Deleted || page.Entries[0].Revision != 3 ||
		string(page.Entries[1].Value) != "2" || page.Entries[2].Revision != 1 || page.Cursor == "" {
		t.Fatalf("first page %s", body)
	}
	ws := c.must(map[string]any{"op": "history", "key": "/h/k", "limit": 3})
	var wsPage HistoryAnswer
	json.Unmarshal([]byte(ws.raw), &wsPage)
	if fmt.Sprint(wsPage) != fmt.Sprint(page) {
		t.Fatalf("websocket %s, HTTP %s", ws.raw, body)
	}
	status, body = get("/h/k?history&limit=3&cursor=" + page.Cursor)
	if status != http.StatusOK || !strings.Contains(body, `"value":0`) || strings.Contains(body, "cursor") {
		t.Fatalf("second page %d: %s", status, body)
	}
	ws = c.must(map[string]any{"op": "history", "key": "/h/k", "limit": 3, "cursor": page.Cursor})
	if !strings.Contains(ws.raw, `"value":0`) || strings.Contains(ws.raw, "cursor") {
		t.Fatalf("websocket second page %s", ws.raw)
	}

	// Two more writes evict the oldest: the first page has a cursor, the page below it is gone.
	c.must(map[string]any{"op": "set", "key": "/h/k", "value": "x"})
	c.must(map[string]any{"op": "set", "key": "/h/k", "value": "y"})
	status, body = get("/h/k?history")
	json.Unmarshal([]byte(body), &page)
	if status != http.StatusOK || len(page.Entries) != 4 || page.Cursor == "" {
		t.Fatalf("first page after eviction %d: %s", status, body)
	}
	status, body = get("/h/k?history&cursor=" + page.Cursor)
	if status != http.StatusGone || !strings.Contains(body, `"code":"history_gone"`) {
		t.Fatalf("below the retained history %d: %s", status, body)
	}
	ws = c.call(map[string]any{"op": "history", "key": "/h/k", "cursor": page.Cursor})
	if ws.OK || ws.Status != http.StatusGone || ws.Code != "history_gone" {
		t.Fatalf("websocket below the retained history: %s", ws.raw)
	}

	// Bad requests.
	for _, q := range []string{"/h/k?history&limit=0", "/h/k?history&cursor=abc", "/h/k?history&since=1"} {
		if status, body := get(q); status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", q, status, body)
		}
	}
}
