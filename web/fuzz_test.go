package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// FuzzHandler sends fuzzed requests straight to the handler: whatever arrives, the answer is never
// a 5xx, and every error is a JSON {"error","code"}. Streams run under a short deadline. The seeds
// under testdata/fuzz/FuzzHandler cover every route and header of the API.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		method, path, query, accept, revision, ifMatch, ifNoneMatch, idem, lastEventID string
		body                                                                           string
	}{
		{"GET", "/a", "", "", "", "", "", "", "", ""},
		{"POST", "/a/b", "", "", "", "", "", "", "", `{"x":[1,2.50,"y"]}`},
		{"PUT", "/a", "", "", "0", "", "", "", "", `12345678901234567890`},
		{"PUT", "/a", "", "", "", `"1", W/"2"`, "", "", "", `true`},
		{"PUT", "/a", "", "", "", "", "*", "", "", `null`},
		{"DELETE", "/a", "", "", "3", "", "", "", "", ""},
		{"DELETE", "/a/", "", "", "", "", "", "k", "", ""},
		{"POST", "/n", "incr=-5&ttl=1m", "", "", "", "", "idem", "", ""},
		{"GET", "/a/", "limit=2&cursor=L2EvYg&keys&children", "", "", "", "", "", "", ""},
		{"GET", "/a/", "snapshot", "text/event-stream", "", "", "", "", "", ""},
		{"GET", "/a/", "since=/a/b:1:2", "text/event-stream", "", "", "", "", "/a/b:0:1:s", ""},
		{"GET", "/", "", "text/event-stream", "", "", "", "", "7", ""},
		{"OPTIONS", "/a", "", "", "", "", "", "", "", ""},
		{"HEAD", "/a.b", "", "", "", "", "", "", "", ""},
		{"PATCH", "/a//b", "ttl=", "", "x", "abc", "1", "", "", "{"},
		{"POST", "/a", "", "", "", "", "", "", "", strings.Repeat("[", 70)},
		{"GET", "/.health", "", "", "", "", "", "", "", ""},
		{"GET", "/%E2%82%AC/x", "", "text/html", "", "", "", "", "", ""},
		{"POST", "/u8/raw", "", "", "", "", "", "", "", "\"\xff\xfe\""},
		{"PUT", "/u8/raw", "", "", "0", "", "", "", "", "{\"k\xed\xa0\x80\":[\"\xc0\xaf\",\"€\xe2\x82\"]}"},
		{"POST", "/u8/raw", "lock&owner=ci%FF", "", "", "", "", "", "", ""},
		{"0", "/a", "", "", "", "", "", "", "", ""},
		{"POST", "/room/1/", "broadcast", "", "", "", "", "", "", `{"x":10,"y":[1,2]}`},
		{"POST", "/room/1/cursor", "broadcast&ttl=1s", "", "", "", "", "", "", "\"\xff\""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.accept, s.revision, s.ifMatch, s.ifNoneMatch, s.idem, s.lastEventID, []byte(s.body))
	}
	h := hub.New(hub.Config{Logger: quiet, HistorySize: 8, QueueSize: 4, Limits: hub.Limits{MaxValueBytes: 4 << 10, MaxJSONDepth: 16, MaxKeyDepth: 8, MaxKeyBytes: 128}})
	defer h.Close()
	handler := web.New(h, web.Config{Logger: quiet, KeepAlive: time.Millisecond}).Handler()

	f.Fuzz(func(t *testing.T, method, path, query, accept, revision, ifMatch, ifNoneMatch, idem, lastEventID string, body []byte) {
		var raw strings.Builder
		raw.WriteString(method + " /" + strings.TrimPrefix(path, "/"))
		if query != "" {
			raw.WriteString("?" + query)
		}
		raw.WriteString(" HTTP/1.1\r\nHost: statehub.test\r\n")
		for _, h := range [][2]string{{"Accept", accept}, {"X-Revision", revision}, {"If-Match", ifMatch},
			{"If-None-Match", ifNoneMatch}, {"Idempotency-Key", idem}, {"Last-Event-ID", lastEventID}} {
			if h[1] != "" {
				raw.WriteString(h[0] + ": " + h[1] + "\r\n")
			}
		}
		raw.WriteString("\r\n")
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
		if err != nil {
			t.Skip("not a request a server would accept:", err)
		}
		req.RemoteAddr = "127.0.0.1:1234" // a client on loopback, which a protected server serves
		req.Body = http.NoBody
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)

		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, req.URL, res.StatusCode, rec.Body)
		}
		if res.StatusCode >= 400 && req.Method != http.MethodHead {
			var eb web.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" || eb.Code == "" {
				t.Fatalf("%s %s: status %d with body %q, want JSON {error, code}", method, req.URL, res.StatusCode, rec.Body)
			}
		}
		// JSON answers and streams are UTF-8 whatever was sent: so is everything they carry over a
		// WebSocket. (A stored file is served as the bytes it was stored with.)
		if ct := res.Header.Get("Content-Type"); (strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "text/event-stream")) && !utf8.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: status %d, %s answer %q is not UTF-8", method, req.URL, res.StatusCode, ct, rec.Body)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s %s: status %d without Access-Control-Allow-Origin", method, req.URL, res.StatusCode)
		}
	})
}
