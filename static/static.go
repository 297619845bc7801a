package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed *.html *.js *.css
var files embed.FS

// PagePrefix is the path under which Pages serves the demo pages and the pages' assets.
const PagePrefix = "/.demo/"

// csp lets a page load scripts, styles and images and open connections only on its own origin
// (the Statehub server that served it); no inline script runs.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	etag        string
	contentType string
}

var assets = func() map[string]asset {
	m := map[string]asset{}
	names, _ := fs.Glob(files, "*")
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		m[name] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: contentTypes[path.Ext(name)]}
	}
	return m
}()

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Names lists the embedded files.
func Names() []string {
	names := make([]string, 0, len(assets))
	for name := range assets {
		names = append(names, name)
	}
	return names
}

// Console answers a browser navigation to "/" with the console page (web.Config.Console).
var Console http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	serve(w, r, "console.html")
})

// Pages serves GET and HEAD PagePrefix+<name>: <name>.html for a name without an extension (the
// demo pages: counter, board), and the .js and .css files the pages load (web.Config.Pages).
func Pages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, PagePrefix)
		if !ok || strings.Contains(name, "/") || name == "console" {
			notFound(w)
			return
		}
		switch path.Ext(name) {
		case "":
			name += ".html"
		case ".js", ".css":
		default:
			notFound(w)
			return
		}
		if _, ok := assets[name]; !ok {
			notFound(w)
			return
		}
		serve(w, r, name)
	})
}

func serve(w http.ResponseWriter, r *http.Request, name string) {
	a := assets[name]
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if path.Ext(name) == ".html" {
		h.Set("Content-Security-Policy", csp)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"error":"no such page","code":"not_found"}` + "\n"))
}
