package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// Stored files. A write whose Content-Type is not JSON stores the body's bytes with that type;
// a GET serves them back byte for byte with it. The bytes stream to the hub's blob store and are
// never held whole in memory. The key's value in listings and events is the file's description,
// {"type": ..., "size": ..., "sha256": ...} (hub.FileInfo).

// isJSONType reports whether a write with this Content-Type stores a JSON value: no type,
// application/json or any +json type, text/plain (AtomKV's script sends JSON as text/plain) and
// the form types browsers send by default.
func isJSONType(ct string) bool {
	if strings.TrimSpace(ct) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false // stored as a file, which refuses the type with a 400
	}
	switch mt {
	case "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return true
	}
	return strings.HasSuffix(mt, "+json")
}

// putFile stores the request body as a file of content type ct.
func (s *Server) putFile(c echo.Context, p *auth.Principal, key, ct string, cond hub.Cond, opt hub.WriteOptions) error {
	r := c.Request()
	limit := s.hub.MaxFileBytes()
	if r.ContentLength > limit {
		return tooLargeFile(limit)
	}
	body := &bodyReader{r: r.Body}
	res, err := s.opSetFile(p, key, ct, body, cond, opt)
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, hub.ErrValueTooLarge) || errors.As(body.err, &mbe):
		return tooLargeFile(limit)
	case body.err != nil:
		return badRequest("bad_body", "reading the body: "+body.err.Error())
	case err != nil:
		return err
	}
	return writeResult(c, res)
}

// bodyReader remembers a failure to read the request, which is the client's, not the hub's.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func tooLargeFile(limit int64) error {
	return &apiError{http.StatusRequestEntityTooLarge, "too_large", "a stored file may hold at most " + strconv.FormatInt(limit, 10) + " bytes"}
}

// serveFile answers a GET or HEAD of a key: a stored file's bytes with its content type, or (if
// the key was rewritten meanwhile) its JSON value.
func (s *Server) serveFile(c echo.Context, key string) error {
	e, f, err := s.hub.OpenFile(key)
	if err != nil {
		return err
	}
	setEntryHeaders(c, e.Revision, e.Seq)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache")
	if f == nil {
		if etagMatches(c.Request().Header.Get("If-None-Match"), etag(e.Seq)) {
			return c.NoContent(http.StatusNotModified)
		}
		return writeStoredJSON(c, http.StatusOK, e.Value)
	}
	defer f.Close()
	h.Set("Content-Type", e.Type)
	h.Set("X-Content-Type-Options", "nosniff")
	// The bytes are the client's: keep a stored page or SVG from running script on this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox")
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, f)
	return nil
}
