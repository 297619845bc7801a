package static_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/jslib"
	"github.com/statehub/statehub/static"
	"github.com/statehub/statehub/web"
)

func TestEmbeddedFiles(t *testing.T) {
	names := static.Names()
	for _, want := range []string{"console.html", "console.js", "console.css", "counter.html", "counter.js", "board.html", "board.js", "style.css"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is not embedded (have %v)", want, names)
		}
	}
}

// The pages must not write data as HTML: no innerHTML, outerHTML, insertAdjacentHTML or document.write.
func TestPagesNeverWriteHTML(t *testing.T) {
	srv := newServer(t)
	bad := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`)
	for _, name := range []string{"console.js", "board.js", "counter.js"} {
		res, body := get(t, srv, "/.demo/"+name, "")
		if res.StatusCode != 200 {
			t.Fatalf("/.demo/%s: %d", name, res.StatusCode)
		}
		if m := bad.FindString(body); m != "" {
			t.Errorf("%s uses %s", name, m)
		}
	}
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	client, err := jslib.Build()
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{})
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(web.New(h, web.Config{Client: client, Console: static.Console, Pages: static.Pages()}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestRoot(t *testing.T) {
	srv := newServer(t)
	browser := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	res, body := get(t, srv, "/", browser)
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("navigation to /: %d %s", res.StatusCode, ct)
	}
	if !strings.Contains(body, "<title>Statehub console</title>") || !strings.Contains(body, `src="/.demo/console.js"`) {
		t.Errorf("navigation to / is not the console:\n%s", body)
	}
	if regexp.MustCompile(`<(script|img|link)[^>]+(src|href)="(https?:)?//`).MatchString(body) {
		t.Errorf("the console loads something from elsewhere:\n%s", body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("console CSP %q", csp)
	}
	if !slices.Contains(res.Header.Values("Vary"), "Accept") {
		t.Errorf("/ does not vary by Accept: %v", res.Header.Values("Vary"))
	}
	for _, accept := range []string{"", "*/*", "application/javascript"} {
		res, body := get(t, srv, "/", accept)
		if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.Contains(ct, "javascript") || strings.Contains(body, "<html") {
			t.Errorf("GET / with Accept %q: %d %s, want the script", accept, res.StatusCode, ct)
		}
	}
}

func TestPages(t *testing.T) {
	srv := newServer(t)
	for path, want := range map[string]string{
		"/.demo/counter":     "text/html",
		"/.demo/board":       "text/html",
		"/.demo/board.js":    "text/javascript",
		"/.demo/style.css":   "text/css",
		"/.demo/console.css": "text/css",
		"/.demo/console.js":  "text/javascript",
	} {
		res, body := get(t, srv, path, "")
		if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.HasPrefix(ct, want) || body == "" {
			t.Errorf("%s: %d %q, want 200 %s", path, res.StatusCode, ct, want)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("ETag") == "" {
			t.Errorf("%s: headers %v", path, res.Header)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("If-None-Match", res.Header.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", path, again.StatusCode)
		}
	}
	for _, path := range []string{"/.demo/nope", "/.demo/counter.html", "/.demo/console", "/.demo/x/board", "/.demo/static.go", "/.demo/"} {
		if res, _ := get(t, srv, path, ""); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, res.StatusCode)
		}
	}
	// Pages use the server's own script and style, nothing from elsewhere.
	external := regexp.MustCompile(`<(script|img|link)[^>]+(src|href)="(https?:)?//`)
	for _, page := range []string{"/.demo/counter", "/.demo/board"} {
		_, body := get(t, srv, page, "")
		if !strings.Contains(body, `<script src="/statehub.js"></script>`) || external.MatchString(body) {
			t.Errorf("%s does not load the server's own /statehub.js only", page)
		}
	}
}
