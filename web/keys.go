package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// keyRoute serves every path that is not one of the server's own (which all hold a dot): a key
// ("/a/b") or a subtree ("/a/").
func (s *Server) keyRoute(c echo.Context) error {
	r := c.Request()
	path := r.URL.Path
	if err := s.hub.Limits().CheckPath(path); err != nil {
		return err
	}
	q := c.QueryParams() // parsed once for the request: principalOf reads its token there
	prefix := hub.IsPrefix(path)
	// Each kind of request takes its own query parameters; any other is refused by name.
	only := func(names ...string) error { return onlyParams(q, names...) }
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case isEventStream(r):
			if err := only("since", "snapshot", "throttle", "broadcasts"); err != nil {
				return err
			}
			return s.stream(c, path, q)
		case prefix:
			if err := only("limit", "cursor", "keys", "children"); err != nil {
				return err
			}
			return s.list(c, path, q)
		case q.Has("badge"):
			if err := only("badge", "label", "color", "labelColor", "style", "format", "incr"); err != nil {
				return err
			}
			return s.badge(c, path, q)
		case q.Has("history"):
			if err := only("history", "limit", "cursor"); err != nil {
				return err
			}
			return s.history(c, path, q)
		case q.Has("go"):
			if err := only("go"); err != nil {
				return err
			}
			return s.click(c, path)
		}
		if err := only(); err != nil {
			return err
		}
		return s.get(c, path)
	case http.MethodPost:
		if q.Has("broadcast") { // to a key or a prefix
			if err := only("broadcast"); err != nil {
				return err
			}
			return s.broadcast(c, path)
		}
		if prefix {
			return &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "POST needs a key, not a prefix"}
		}
		switch {
		case q.Has("lock"):
			if err := only("lock", "renew", "ttl", "owner", "wait"); err != nil {
				return err
			}
			return s.lock(c, path, q)
		case q.Has("incr"):
			if err := only("incr", "ttl"); err != nil {
				return err
			}
			return s.incr(c, path, q)
		}
		if err := only("ttl"); err != nil {
			return err
		}
		return s.put(c, path, q, false)
	case http.MethodPut:
		if prefix {
			return &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "PUT needs a key, not a prefix"}
		}
		if err := only("ttl"); err != nil {
			return err
		}
		return s.put(c, path, q, true)
	case http.MethodDelete:
		if q.Has("lock") && !prefix {
			if err := only("lock"); err != nil {
				return err
			}
			return s.unlock(c, path)
		}
		if err := only(); err != nil {
			return err
		}
		return s.delete(c, path, q)
	}
	return &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"}
}

func (s *Server) get(c echo.Context, key string) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	e, err := s.opGet(p, key)
	if errors.Is(err, hub.ErrNotFound) && s.permit(p, auth.Read, key+"/") == nil {
		if page, lerr := s.hub.List(key+"/", hub.ListOptions{Limit: 1, KeysOnly: true}); lerr == nil && len(page.Entries) > 0 {
			return &apiError{http.StatusNotFound, "not_found", key + " is not a key, but " + key + "/ holds keys: GET " + key + "/ lists them"}
		}
	}
	if err != nil {
		return err
	}
	if e.Type != "" {
		return s.serveFile(c, key)
	}
	setEntryHeaders(c, e.Revision, e.Seq)
	setPresenceHeaders(c, e.Presence)
	c.Response().Header()["Cache-Control"] = noCache
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag(e.Seq)) {
		return c.NoContent(http.StatusNotModified)
	}
	return writeStoredJSON(c, http.StatusOK, e.Value)
}

// put is POST (plain set, AtomKV) and PUT (set with the preconditions of its headers).
func (s *Server) put(c echo.Context, key string, q url.Values, conditional bool) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	opt, err := writeOptions(c, q)
	if err != nil {
		return err
	}
	var cond hub.Cond
	if conditional {
		if cond, err = precondition(c.Request().Header, true); err != nil {
			return err
		}
	}
	if cond.Fence, cond.FenceLock, err = ifFence(c.Request().Header.Get("If-Fence")); err != nil {
		return err
	}
	if ct := c.Request().Header.Get("Content-Type"); !isJSONType(ct) {
		return s.putFile(c, p, key, ct, cond, opt)
	}
	res, err := s.opSet(p, setRequest{Key: key, Value: c.Request().Body, Cond: cond, Options: opt})
	if err != nil && c.Request().Header.Get("Content-Type") == "" && errors.Is(err, hub.ErrInvalidValue) {
		return badRequest("invalid_json", strings.TrimPrefix(err.Error(), "hub: ")+
			"; to store a file instead, send it with its Content-Type, e.g. curl -T coverage.svg -H 'Content-Type: image/svg+xml' "+key)
	}
	if err != nil {
		return err
	}
	return writeResult(c, res)
}

func (s *Server) incr(c echo.Context, key string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	if c.Request().Header.Get("If-Fence") != "" {
		return badRequest("invalid_fence", "an increment takes no If-Fence")
	}
	by := int64(1)
	if v := q.Get("incr"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return badRequest("invalid_increment", "incr must be a 64-bit integer, got "+strconv.Quote(v))
		}
		by = n
	}
	opt, err := writeOptions(c, q)
	if err != nil {
		return err
	}
	res, err := s.opIncr(p, key, by, opt)
	if err != nil {
		return err
	}
	setEntryHeaders(c, res.Revision, res.Seq)
	markReplayed(c, res)
	return writeStoredJSON(c, http.StatusOK, res.Value)
}

func (s *Server) delete(c echo.Context, path string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	opt, err := writeOptions(c, q)
	if err != nil {
		return err
	}
	var cond hub.Cond
	if !hub.IsPrefix(path) {
		if cond, err = precondition(c.Request().Header, false); err != nil {
			return err
		}
		if cond.Fence, cond.FenceLock, err = ifFence(c.Request().Header.Get("If-Fence")); err != nil {
			return err
		}
	} else if c.Request().Header.Get("If-Fence") != "" {
		return badRequest("invalid_fence", "a subtree delete takes no If-Fence")
	}
	res, err := s.opDelete(p, path, cond, opt)
	if err != nil {
		return err
	}
	if hub.IsPrefix(path) {
		c.Response().Header().Set(hdrSeq, strconv.FormatUint(res.Seq, 10))
		markReplayed(c, res)
		return c.JSON(http.StatusOK, map[string]any{"deleted": res.Deleted, "seq": res.Seq})
	}
	return writeResult(c, res)
}

// WriteAnswer is the JSON answer to a write.
type WriteAnswer struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
	Seq      uint64 `json:"seq"`
}

func writeResult(c echo.Context, res hub.Result) error {
	setEntryHeaders(c, res.Revision, res.Seq)
	markReplayed(c, res)
	return c.JSON(http.StatusOK, WriteAnswer{Key: res.Key, Revision: res.Revision, Seq: res.Seq})
}

func markReplayed(c echo.Context, res hub.Result) {
	if res.Replayed {
		c.Response().Header().Set(hdrReplayed, "true")
	}
}

// setEntryHeaders puts a key's X-Revision, X-Seq and ETag on the answer. It is on the path of every
// read and write, so the three values share one string and one slice, assigned under their
// canonical names ("Etag" is how net/http spells ETag) instead of through Header.Set.
func setEntryHeaders(c echo.Context, revision int64, seq uint64) {
	var buf [48]byte
	b := strconv.AppendInt(buf[:0], revision, 10)
	r := len(b)
	b = append(b, '"')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '"')
	v := string(b) // revision, then the ETag: the seq in quotes
	vals := []string{v[:r], v[r+1 : len(v)-1], v[r:]}
	h := c.Response().Header()
	h[hdrRevision] = vals[0:1:1]
	h[hdrSeq] = vals[1:2:2]
	h["Etag"] = vals[2:3:3]
}

// jsonType is the Content-Type of JSON answers and noCache the Cache-Control of a key's value,
// shared like setEntryHeaders' values.
var (
	jsonType = []string{echo.MIMEApplicationJSON}
	noCache  = []string{"no-cache"}
)

// writeStoredJSON answers status with body, a JSON value as the hub stores it. It writes the answer
// itself: echo's Blob would look the Content-Type up again before setting it.
func writeStoredJSON(c echo.Context, status int, body []byte) error {
	r := c.Response()
	r.Header()[echo.HeaderContentType] = jsonType
	r.WriteHeader(status)
	_, err := r.Write(body)
	return err
}

// etag is a key's entity tag: the seq of its last change, unique across deletes and re-creations.
func etag(seq uint64) string { return `"` + strconv.FormatUint(seq, 10) + `"` }

// etagMatches reports whether an If-None-Match header names tag (or is "*").
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// writeOptions reads ?ttl= and the Idempotency-Key header.
func writeOptions(c echo.Context, q url.Values) (hub.WriteOptions, error) {
	var opt hub.WriteOptions
	if q.Has("ttl") {
		v := q.Get("ttl")
		d, err := parseTTL(v)
		if err != nil {
			return opt, err
		}
		opt.TTL = d
	}
	if k := c.Request().Header.Get(hdrIdempotency); k != "" {
		if err := checkIdempotencyKey(k); err != nil {
			return opt, err
		}
		opt.Idempotency = k
	}
	return opt, nil
}

// precondition reads X-Revision, If-Match and If-None-Match. For a write, X-Revision is the
// revision the write will produce (AtomKV); for a delete it is the current revision.
func precondition(h http.Header, write bool) (hub.Cond, error) {
	var cond hub.Cond
	if v := h.Get(hdrRevision); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return cond, badRequest("invalid_revision", "X-Revision must be a non-negative integer, got "+strconv.Quote(v))
		}
		if write {
			cond.NextRevision = &n
		} else {
			cond.Revision = &n
		}
	}
	if v := h.Get("If-Match"); v != "" {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" {
				cond.MatchAny = true
				continue
			}
			// An entity tag this server never issued matches no key: the precondition fails
			// (412), as RFC 9110 13.1.1 has it. Seq 0 is no key's ETag.
			n, err := strconv.ParseUint(strings.Trim(strings.TrimPrefix(t, "W/"), `"`), 10, 64)
			if err != nil {
				n = 0
			}
			cond.MatchSeqs = append(cond.MatchSeqs, n)
		}
	}
	if v := h.Get("If-None-Match"); v != "" {
		if strings.TrimSpace(v) != "*" {
			return cond, badRequest("invalid_precondition", `a write takes only If-None-Match: *`)
		}
		cond.Absent = true
	}
	return cond, nil
}

// ifFence parses an If-Fence header, "N; lock=/lock/key": the write holds only while the lock at
// that key is held with fence N (0, "": no header).
func ifFence(v string) (uint64, string, error) {
	if v == "" {
		return 0, "", nil
	}
	n, params, _ := strings.Cut(v, ";")
	lock, ok := strings.CutPrefix(strings.TrimSpace(params), "lock=")
	return checkFence(strings.TrimSpace(n), strings.TrimSpace(lock), ok)
}

// checkFence validates a fence and its lock key, over HTTP and the WebSocket alike.
func checkFence(n, lock string, named bool) (uint64, string, error) {
	fence, err := strconv.ParseUint(n, 10, 64)
	if err != nil || fence == 0 {
		return 0, "", badRequest("invalid_fence", "a fence is a positive integer (the fence of a held lock), got "+strconv.Quote(n))
	}
	if !named || lock == "" || hub.IsPrefix(lock) {
		return 0, "", badRequest("invalid_fence", `a fence names its lock key: If-Fence: N; lock=/locks/name (WebSocket: "fence_lock")`)
	}
	return fence, lock, nil
}

// ListAnswer is the JSON answer to a listing.
type ListAnswer struct {
	Entries []ListEntry `json:"entries"`
	Cursor  string      `json:"cursor,omitempty"`
}

// ListEntry is one entry of a listing; a subtree of a children listing has only Key.
type ListEntry struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Revision *int64          `json:"revision,omitempty"`
	Seq      *uint64         `json:"seq,omitempty"`
	Expires  string          `json:"expires,omitempty"`  // a key with a TTL: when it expires, RFC 3339 in UTC
	Presence *PresenceJSON   `json:"presence,omitempty"` // an ephemeral key's owner (presence.go)
}

// listEntry is e as a listing shows it.
func listEntry(e hub.Entry) ListEntry {
	le := ListEntry{Key: e.Key, Value: e.Value}
	if !hub.IsPrefix(e.Key) {
		le.Revision, le.Seq = &e.Revision, &e.Seq
	}
	if !e.Expires.IsZero() {
		le.Expires = formatTime(e.Expires)
	}
	le.Presence = presenceJSON(e.Presence)
	return le
}

func (s *Server) list(c echo.Context, prefix string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	opt := hub.ListOptions{Cursor: q.Get("cursor"), KeysOnly: boolOption(q, "keys"), Children: boolOption(q, "children")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("invalid_limit", "limit must be a positive integer, got "+strconv.Quote(v))
		}
		opt.Limit = n
	}
	page, err := s.opList(p, prefix, opt)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache")
	h.Set(hdrSeq, strconv.FormatUint(page.Seq, 10))
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	writeList(c.Response(), page) // an error here is a client gone: nothing more to tell it
	return nil
}

// writeList writes page as encoding/json writes its ListAnswer, byte for byte (HTML-escaped,
// with a final newline), but an entry at a time: the values go out as the tree holds them,
// never gathered into one answer as large as the page.
func writeList(w io.Writer, page hub.Page) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	b := append(make([]byte, 0, 256), `{"entries":[`...)
	for i, e := range page.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = appendJSONString(b, e.Key)
		if len(e.Value) > 0 {
			b = append(b, `,"value":`...)
			bw.Write(b)
			b = b[:0]
			if bytes.ContainsAny(e.Value, "<>&\u2028\u2029") {
				var esc bytes.Buffer
				json.HTMLEscape(&esc, e.Value)
				bw.Write(esc.Bytes())
			} else {
				bw.Write(e.Value)
			}
		}
		if !hub.IsPrefix(e.Key) {
			b = append(b, `,"revision":`...)
			b = strconv.AppendInt(b, e.Revision, 10)
			b = append(b, `,"seq":`...)
			b = strconv.AppendUint(b, e.Seq, 10)
		}
		if !e.Expires.IsZero() {
			b = append(b, `,"expires":`...)
			b = appendJSONString(b, formatTime(e.Expires))
		}
		if e.Presence != nil { // rare: encoding/json's own bytes
			pj, _ := json.Marshal(presenceJSON(e.Presence))
			b = append(b, `,"presence":`...)
			b = append(b, pj...)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if page.Cursor != "" {
		b = append(b, `,"cursor":`...)
		b = appendJSONString(b, page.Cursor)
	}
	b = append(b, "}\n"...)
	bw.Write(b)
	return bw.Flush()
}

// onlyParams refuses a query parameter that is not one of names, nor one every request may
// carry: token (EventSource and <img> cannot send headers) and _ (a cache buster).
func onlyParams(q url.Values, names ...string) error {
	for name := range q {
		if name == "token" || name == "_" || slices.Contains(names, name) {
			continue
		}
		msg := "unknown query parameter"
		if plainName(name) { // never echo a name that may hold a secret ("token%3D...")
			msg += " " + strconv.Quote(name)
		}
		if len(names) > 0 {
			msg += "; this request takes " + strings.Join(names, ", ")
		} else {
			msg += "; this request takes none"
		}
		return badRequest("unknown_parameter", msg)
	}
	return nil
}

// plainName reports whether a parameter name is short and holds only letters, digits, - and _.
func plainName(name string) bool {
	if len(name) > 32 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// boolOption reads a boolean query option: present without a value, or 1/true/yes.
func boolOption(q url.Values, name string) bool {
	if !q.Has(name) {
		return false
	}
	switch strings.ToLower(q.Get(name)) {
	case "", "1", "true", "yes":
		return true
	}
	return false
}

func isEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
