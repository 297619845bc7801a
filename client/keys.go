package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Entry is one key's state.
type Entry struct {
	Key      string
	Value    json.RawMessage // the JSON value; nil in a KeysOnly listing and for a child subtree
	Revision int64           // 0 when the key was created, +1 on every change
	Seq      uint64          // the seq of the key's last change
	Presence *Presence       // an ephemeral key's owner; nil for other keys
}

// Presence is the owner of an ephemeral key (PROTOCOL.md, "Ephemeral keys and presence"): the
// subject of its writer's token ("" when that principal has none) and its connection's id
// (Session.Conn).
type Presence struct {
	Sub  string `json:"sub,omitempty"`
	Conn string `json:"conn"`
}

// Result is the outcome of a write.
type Result struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"` // the key's new revision (a delete: the deleted revision + 1)
	Seq      uint64 `json:"seq"`      // the seq of the commit
}

// WriteOption qualifies a write. Each write says which options it takes; another is an error.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ttl       time.Duration
	rev       *int64
	idem      string
	hasTTL    bool
	fence     uint64
	fenceLock string
}

// TTL deletes the key d after the write (with a delete event). Set, Incr, PutFile.
func TTL(d time.Duration) WriteOption {
	return func(o *writeOptions) { o.ttl, o.hasTTL = d, true }
}

// IfRevision makes the write conditional: it is applied only if the key's current revision is
// current (-1: only if the key is absent), else it fails with ErrConflict, whose *Error names the
// current revision. Set, Delete, PutFile.
func IfRevision(current int64) WriteOption {
	return func(o *writeOptions) { o.rev = &current }
}

// IdempotencyKey makes a retried write safe: the server answers a repeat with the same key (within
// its window) with the first answer instead of writing again. Every write.
func IdempotencyKey(k string) WriteOption {
	return func(o *writeOptions) { o.idem = k }
}

// Fenced makes the write hold only while the lock at lockKey is held with fence (a Lock's Fence,
// or WithLock's): once that lock has been released, has expired or was taken again, the write
// fails with ErrFenceStale (its *Error's Key is lockKey) and changes nothing. So a holder that
// stalled past its lock's TTL cannot overwrite the next holder's work. The server checks the lock
// atomically with the write. Set, Update, Delete, PutFile.
func Fenced(lockKey string, fence uint64) WriteOption {
	return func(o *writeOptions) { o.fenceLock, o.fence = lockKey, fence }
}

// Fenced is the option that makes a write hold only while l is held (Fenced(l.Key, l.Fence)).
func (l *Lock) Fenced() WriteOption { return Fenced(l.Key, l.Fence) }

// The options a write takes, for writeOpts.
const (
	optTTL = 1 << iota
	optRev
	optIdem
	optFence
)

// writeOpts applies opts and refuses any that the write op does not take (allowed).
func writeOpts(op string, opts []WriteOption, allowed int) (writeOptions, error) {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.hasTTL && allowed&optTTL == 0:
		return o, fmt.Errorf("client: %s takes no TTL", op)
	case o.rev != nil && allowed&optRev == 0:
		return o, fmt.Errorf("client: %s takes no IfRevision", op)
	case o.idem != "" && allowed&optIdem == 0:
		return o, fmt.Errorf("client: %s takes no IdempotencyKey", op)
	case (o.fence != 0 || o.fenceLock != "") && allowed&optFence == 0:
		return o, fmt.Errorf("client: %s takes no Fenced", op)
	case o.fence != 0 || o.fenceLock != "":
		if o.fence == 0 {
			return o, errors.New("client: Fenced needs the lock's fence, which is never 0")
		}
		if err := checkKey(o.fenceLock); err != nil {
			return o, fmt.Errorf("client: Fenced: the lock key: %w", err)
		}
	}
	return o, nil
}

func (o writeOptions) apply(r *request) {
	if o.hasTTL {
		r.query = r.query.add("ttl", o.ttl.String())
	}
	if o.idem != "" {
		r.header.Set("Idempotency-Key", o.idem)
	}
	if o.fence != 0 {
		r.header.Set("If-Fence", strconv.FormatUint(o.fence, 10)+"; lock="+o.fenceLock)
	}
}

// Get returns the key's JSON value, revision and seq. An absent key is ErrNotFound; a stored file
// is ErrFile (read it with GetFile).
func (c *Client) Get(ctx context.Context, key string) (Entry, error) {
	if err := checkKey(key); err != nil {
		return Entry{}, err
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: key})
	if err != nil {
		return Entry{}, err
	}
	defer res.Body.Close()
	if !isJSON(res.Header.Get("Content-Type")) {
		return Entry{}, fmt.Errorf("%w: %s (%s): read it with GetFile", ErrFile, key, res.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Key: key, Value: json.RawMessage(b)}
	if conn := res.Header.Get("X-Presence-Conn"); conn != "" {
		sub, _ := url.PathUnescape(res.Header.Get("X-Presence-Sub"))
		e.Presence = &Presence{Sub: sub, Conn: conn}
	}
	e.Revision, e.Seq, err = entryHeaders(res.Header)
	return e, err
}

// isJSON reports whether a content type is the server's JSON (not a stored file's).
func isJSON(ct string) bool {
	t, _, err := mime.ParseMediaType(ct)
	return err == nil && (t == "application/json" || strings.HasSuffix(t, "+json"))
}

func entryHeaders(h http.Header) (rev int64, seq uint64, err error) {
	rev, err1 := strconv.ParseInt(h.Get("X-Revision"), 10, 64)
	seq, err2 := strconv.ParseUint(h.Get("X-Seq"), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: X-Revision %q, X-Seq %q", errNoAnswer, h.Get("X-Revision"), h.Get("X-Seq"))
	}
	return rev, seq, nil
}

// Set stores value (marshaled with encoding/json; a json.RawMessage is sent as it is) at key.
// Options: TTL, IfRevision, IdempotencyKey, Fenced.
func (c *Client) Set(ctx context.Context, key string, value any, opts ...WriteOption) (Result, error) {
	if err := checkKey(key); err != nil {
		return Result{}, err
	}
	o, err := writeOpts("Set", opts, optTTL|optRev|optIdem|optFence)
	if err != nil {
		return Result{}, err
	}
	body, err := jsonBody(value)
	if err != nil {
		return Result{}, err
	}
	r := request{method: http.MethodPost, path: key, body: body, header: http.Header{"Content-Type": {"application/json"}}}
	if o.rev != nil {
		// PUT's X-Revision is the revision the write makes: the current one + 1 (0 creates).
		r.method = http.MethodPut
		r.header.Set("X-Revision", strconv.FormatInt(*o.rev+1, 10))
	}
	o.apply(&r)
	var out Result
	_, err = c.doJSON(ctx, r, &out)
	return out, err
}

// Update sets key to what fn makes of its current value (nil when the key is absent), with a
// compare-and-set on the revision fn saw: when another writer got in between, it reads the key
// again and calls fn again, until the write succeeds, fn fails, or ctx ends. fn may thus run
// several times and must only compute. Options: TTL, Fenced (an idempotency key cannot cover
// several attempts).
func (c *Client) Update(ctx context.Context, key string, fn func(current json.RawMessage) (any, error), opts ...WriteOption) (Result, error) {
	if _, err := writeOpts("Update", opts, optTTL|optFence); err != nil {
		return Result{}, err
	}
	for {
		var cur json.RawMessage
		rev := int64(-1)
		e, err := c.Get(ctx, key)
		switch {
		case err == nil:
			cur, rev = e.Value, e.Revision
		case !errors.Is(err, ErrNotFound):
			return Result{}, err
		}
		next, err := fn(cur)
		if err != nil {
			return Result{}, err
		}
		res, err := c.Set(ctx, key, next, append(opts[:len(opts):len(opts)], IfRevision(rev))...)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return res, err
	}
}

// Delete deletes key; an absent key is ErrNotFound. Options: IfRevision, IdempotencyKey, Fenced.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (Result, error) {
	if err := checkKey(key); err != nil {
		return Result{}, err
	}
	o, err := writeOpts("Delete", opts, optRev|optIdem|optFence)
	if err != nil {
		return Result{}, err
	}
	r := request{method: http.MethodDelete, path: key, header: http.Header{}}
	if o.rev != nil {
		r.header.Set("X-Revision", strconv.FormatInt(*o.rev, 10)) // DELETE's is the current one
	}
	o.apply(&r)
	var out Result
	_, err = c.doJSON(ctx, r, &out)
	return out, err
}

// DeleteTree deletes every key under prefix (which ends in "/") in one commit and returns how
// many it deleted and the commit's seq. Options: IdempotencyKey.
func (c *Client) DeleteTree(ctx context.Context, prefix string, opts ...WriteOption) (deleted int, seq uint64, err error) {
	if err := checkPrefix(prefix); err != nil {
		return 0, 0, err
	}
	o, err := writeOpts("DeleteTree", opts, optIdem)
	if err != nil {
		return 0, 0, err
	}
	r := request{method: http.MethodDelete, path: prefix, header: http.Header{}}
	o.apply(&r)
	var out struct {
		Deleted int    `json:"deleted"`
		Seq     uint64 `json:"seq"`
	}
	_, err = c.doJSON(ctx, r, &out)
	return out.Deleted, out.Seq, err
}

// Incr adds by to the integer at key (an absent key counts as 0) and returns the new value.
// A value that is not an integer is ErrNotInteger; leaving the int64 range, ErrOverflow.
// Options: TTL, IdempotencyKey.
func (c *Client) Incr(ctx context.Context, key string, by int64, opts ...WriteOption) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	o, err := writeOpts("Incr", opts, optTTL|optIdem)
	if err != nil {
		return 0, err
	}
	r := request{method: http.MethodPost, path: key, query: query{}.add("incr", strconv.FormatInt(by, 10)), header: http.Header{}}
	o.apply(&r)
	res, err := c.do(ctx, r)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("client: the answer to incr %s is not an integer: %q", key, b)
	}
	return n, nil
}

// ListOptions shape a listing.
type ListOptions struct {
	Limit    int  // entries per page; 0: the server's default (100); at most 1000
	KeysOnly bool // leave the values out
	// Children lists the prefix's immediate children only: a child subtree comes as an Entry
	// whose Key ends in "/" and has no value, revision or seq.
	Children bool
}

// List returns the keys under prefix (which ends in "/"), in key order, fetching page after page
// as the loop asks for more. An error ends the sequence. Each page is consistent; the pages
// together are not one snapshot when writes come between them.
func (c *Client) List(ctx context.Context, prefix string, opts ListOptions) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if err := checkPrefix(prefix); err != nil {
			yield(Entry{}, err)
			return
		}
		if prefix == "/" {
			// GET / serves the browser client; the root is listed over the WebSocket only.
			yield(Entry{}, errors.New("client: the root / cannot be listed over HTTP; list its subtrees"))
			return
		}
		cursor := ""
		for {
			q := query{}
			if opts.Limit > 0 {
				q = q.add("limit", strconv.Itoa(opts.Limit))
			}
			if opts.KeysOnly {
				q = q.flag("keys")
			}
			if opts.Children {
				q = q.flag("children")
			}
			if cursor != "" {
				q = q.add("cursor", cursor)
			}
			var page struct {
				Entries []struct {
					Key      string          `json:"key"`
					Value    json.RawMessage `json:"value"`
					Revision int64           `json:"revision"`
					Seq      uint64          `json:"seq"`
					Presence *Presence       `json:"presence"`
				} `json:"entries"`
				Cursor string `json:"cursor"`
			}
			if _, err := c.doJSON(ctx, request{method: http.MethodGet, path: prefix, query: q}, &page); err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(Entry{Key: e.Key, Value: e.Value, Revision: e.Revision, Seq: e.Seq, Presence: e.Presence}, nil) {
					return
				}
			}
			if page.Cursor == "" {
				return
			}
			cursor = page.Cursor
		}
	}
}

// PutFile stores body's bytes at key as a file of contentType (which must not be a JSON type):
// a GET serves them back with it, and the key's value in lists and events is the file's
// description {"type","size","sha256"}. Options: TTL, IfRevision, IdempotencyKey, Fenced.
func (c *Client) PutFile(ctx context.Context, key, contentType string, body io.Reader, opts ...WriteOption) (Result, error) {
	if err := checkKey(key); err != nil {
		return Result{}, err
	}
	if isJSON(contentType) || contentType == "" {
		return Result{}, fmt.Errorf("client: PutFile needs a content type that is not JSON, not %q: store JSON with Set", contentType)
	}
	o, err := writeOpts("PutFile", opts, optTTL|optRev|optIdem|optFence)
	if err != nil {
		return Result{}, err
	}
	r := request{method: http.MethodPost, path: key, body: body, header: http.Header{"Content-Type": {contentType}}}
	if o.rev != nil {
		r.method = http.MethodPut
		r.header.Set("X-Revision", strconv.FormatInt(*o.rev+1, 10))
	}
	o.apply(&r)
	var out Result
	_, err = c.doJSON(ctx, r, &out)
	return out, err
}

// File is a key's bytes as GET serves them: a stored file's, or a JSON value's text.
type File struct {
	io.ReadCloser        // the bytes; the caller closes it
	ContentType   string // as stored; application/json for a JSON value
	Size          int64  // -1 when the server did not say
	Revision      int64
	Seq           uint64
}

// GetFile returns the bytes of key, streamed: a stored file as it was stored, or a JSON value.
func (c *Client) GetFile(ctx context.Context, key string) (*File, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: key, accept: "*/*"})
	if err != nil {
		return nil, err
	}
	f := &File{ReadCloser: res.Body, ContentType: res.Header.Get("Content-Type"), Size: res.ContentLength}
	if f.Revision, f.Seq, err = entryHeaders(res.Header); err != nil {
		res.Body.Close()
		return nil, err
	}
	return f, nil
}

// Backup writes a consistent backup of the whole server (GET /.snapshot; the token must be an
// admin's) to w and returns its size. Start a data directory from it with
// "statehub -data DIR -restore FILE" (or "statehub restore"). The server cannot report a failure
// once the backup streams, so check the file: "statehub restore -check FILE".
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/.snapshot", accept: "application/octet-stream"})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return io.Copy(w, res.Body)
}
