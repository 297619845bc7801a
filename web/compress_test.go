package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/jslib"
	"github.com/statehub/statehub/web"
)

// rawGet sends GET path with the given Accept-Encoding ("" sends none) and the admin token
// through a transport that never decodes, and returns the answer with its body as sent.
func rawGet(t *testing.T, ts *testServer, path, acceptEncoding string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken) // for /.snapshot
	// A transport that sends no Accept-Encoding of its own and decodes nothing.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func gunzip(t *testing.T, s string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(s))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(b)
}

// TestCompressedAnswers: listings, large values, the client script and snapshots are gzipped for
// a client that accepts gzip, and the same bytes come plain to one that does not; small answers
// and compressed formats are never gzipped; ETags are the same either way.
func TestCompressedAnswers(t *testing.T) {
	t.Parallel()
	client, err := jslib.Build()
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, hub.Config{}, web.Config{Client: client})
	for i := range 200 {
		ts.must(t, "PUT", fmt.Sprintf("/big/k%03d", i), fmt.Sprintf(`{"name":"entry %d","tags":["a","b","c"],"score":%d}`, i, i*7))
	}
	ts.must(t, "PUT", "/large", `"`+strings.Repeat("statehub ", 1000)+`"`)
	ts.must(t, "PUT", "/small", `{"a":1}`)
	png := "\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 4096)
	ts.must(t, "PUT", "/img", png, "Content-Type", "image/png")

	tests := []struct {
		name    string
		path    string
		gzipped bool // when the client accepts gzip
	}{
		{"listing", "/big/", true},
		{"listing page", "/big/?limit=100", true},
		{"large value", "/large", true},
		{"client script", "/statehub.js", true},
		{"client module", "/statehub.mjs", true},
		{"snapshot", "/.snapshot", true},
		{"small value", "/small", false},
		{"png file", "/img", false},
		{"health", "/.health", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain := rawGet(t, ts, tc.path, "")
			if plain.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tc.path, plain.status, plain.body)
			}
			if ce := plain.header.Get("Content-Encoding"); ce != "" {
				t.Fatalf("GET %s without Accept-Encoding: Content-Encoding %q", tc.path, ce)
			}
			zipped := rawGet(t, ts, tc.path, "gzip")
			if zipped.status != http.StatusOK {
				t.Fatalf("GET %s with gzip: %d %s", tc.path, zipped.status, zipped.body)
			}
			body := zipped.body
			if ce := zipped.header.Get("Content-Encoding"); tc.gzipped != (ce == "gzip") {
				t.Fatalf("GET %s with gzip: Content-Encoding %q, want gzip %v", tc.path, ce, tc.gzipped)
			}
			if tc.gzipped {
				if !strings.Contains(strings.Join(zipped.header.Values("Vary"), ","), "Accept-Encoding") {
					t.Errorf("GET %s: Vary %q lacks Accept-Encoding", tc.path, zipped.header.Values("Vary"))
				}
				if len(body) >= len(plain.body) {
					t.Errorf("GET %s: %d bytes gzipped, %d plain", tc.path, len(body), len(plain.body))
				}
				body = gunzip(t, body)
			}
			if tc.path != "/.snapshot" && body != plain.body { // a snapshot differs by its time
				t.Errorf("GET %s: the gzipped body decodes to %d bytes, the plain one is %d", tc.path, len(body), len(plain.body))
			}
			if a, b := plain.header.Get("ETag"), zipped.header.Get("ETag"); a != b {
				t.Errorf("GET %s: ETag %q plain, %q gzipped", tc.path, a, b)
			}
		})
	}

	// A gzipped listing is the listing: its first page.
	var list web.ListAnswer
	if err := json.Unmarshal([]byte(gunzip(t, rawGet(t, ts, "/big/", "gzip").body)), &list); err != nil || len(list.Entries) == 0 ||
		list.Entries[0].Key != "/big/k000" || list.Cursor == "" {
		t.Fatalf("gzipped listing: %d entries, cursor %q, %v", len(list.Entries), list.Cursor, err)
	}
	// A gzipped value's ETag still makes a conditional write.
	etag := rawGet(t, ts, "/large", "gzip").header.Get("ETag")
	if r := ts.do(t, "PUT", "/large", `1`, "If-Match", etag); r.status != http.StatusOK {
		t.Fatalf("PUT If-Match %s (the gzipped answer's ETag): %d %s", etag, r.status, r.body)
	}
}

// TestCompressedSSEUnbuffered: a client that accepts gzip gets a plain stream whose events arrive
// one at a time: event 1 is read before event 2 is written.
func TestCompressedSSEUnbuffered(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	s := ts.subscribe(t, "/s/", "", "Accept-Encoding", "gzip")
	if ce := s.res.Header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("stream Content-Encoding %q", ce)
	}
	s.expect(t, `ready 0 {"seq":0}`)
	ts.must(t, "PUT", "/s/a", `1`)
	s.expect(t, `- /s/a:0:1 1`)
	ts.must(t, "PUT", "/s/b", `2`)
	s.expect(t, `- /s/b:0:2 2`)
	// The whole tree's stream too (the root route).
	root := ts.subscribe(t, "/", "", "Accept-Encoding", "gzip", "Authorization", "Bearer "+testAdminToken)
	root.expect(t, `ready 2 {"seq":2}`)
	ts.must(t, "PUT", "/s/c", `3`)
	root.expect(t, `- /s/c:0:3 3`)
}

// TestCompressedWebSocket: the upgrade of a client that accepts gzip still works, and large
// answers come whole over the socket.
func TestCompressedWebSocket(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.srv.URL, "http") + "/.ws"
	c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Accept-Encoding": {"gzip"}}})
	if err != nil {
		t.Fatalf("dial %s with Accept-Encoding gzip: %v", url, err)
	}
	defer c.CloseNow()
	if ce := res.Header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("upgrade Content-Encoding %q", ce)
	}
	c.SetReadLimit(-1)
	big := strings.Repeat("x", 8<<10)
	for i, req := range []string{
		`{"id":1,"op":"set","key":"/w/a","value":"` + big + `"}`,
		`{"id":2,"op":"get","key":"/w/a"}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"ok":true`)) || i == 1 && !bytes.Contains(b, []byte(big)) {
			t.Fatalf("answer to %.40s...: %.200s", req, b)
		}
	}
}
