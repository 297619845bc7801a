package web

import (
	"mime"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// compressMinSize is the smallest answer that is gzip-compressed: below it, the bytes saved do not
// pay for the compression (gzhttp's default, about one packet).
const compressMinSize = gzhttp.DefaultMinSize

// compressed serves h with the answers gzip-compressed for clients that accept it
// (Accept-Encoding: gzip): the client script, listings, snapshots (/.snapshot), stored files of
// compressible types and any other answer of at least compressMinSize bytes. It adds
// "Vary: Accept-Encoding" to every answer it may compress.
//
// Streams are never compressed nor buffered: an SSE request and a WebSocket upgrade (streamKind)
// go to h directly, so each event is written and flushed as it commits and the WebSocket can
// hijack its connection; and an answer whose type is text/event-stream is passed through
// untouched all the same (compressible). ETags are left as they are: they are revisions that
// If-Match and If-None-Match compare, whatever the encoding, and Vary keeps caches apart.
func compressed(h http.Handler) http.Handler {
	gz, err := gzhttp.NewWrapper(
		gzhttp.MinSize(compressMinSize),
		gzhttp.ContentTypeFilter(compressible),
		gzhttp.EnableZstd(false), // gzip, which every client has; one encoding to reason about
	)
	if err != nil {
		panic("web: gzhttp options: " + err.Error()) // the options above are constants
	}
	zipped := gz(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if streamKind(r) != "" || r.Header.Get("Upgrade") != "" {
			h.ServeHTTP(w, r)
			return
		}
		zipped.ServeHTTP(w, r)
	})
}

// compressible reports whether an answer of this Content-Type is worth compressing: not a stream,
// and not a format that is compressed already (gzhttp's list of archives, audio and video, and
// images other than SVG).
func compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch {
	case mt == "text/event-stream":
		return false
	case strings.HasPrefix(mt, "image/") && mt != "image/svg+xml" && mt != "image/bmp" && mt != "image/x-icon":
		return false
	case mt == "font/woff" || mt == "font/woff2":
		return false
	}
	return gzhttp.DefaultContentTypeFilter(contentType)
}
