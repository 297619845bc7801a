package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Client talks to one Statehub server over HTTP. It is safe for concurrent use; its methods
// hold no state between calls but the configuration New gave them.
type Client struct {
	base  *url.URL
	hc    *http.Client
	token func(context.Context) (string, error)
	log   *slog.Logger
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes every request carry the bearer token that f returns, asked anew for each
// request, stream (re)connection and WebSocket dial, so f can refresh an expiring token. An empty
// token sends none; an error fails the request with it.
func WithToken(f func(ctx context.Context) (string, error)) Option {
	return func(c *Client) { c.token = f }
}

// StaticToken is a token function for WithToken that always returns tok.
func StaticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// WithHTTPClient makes the client send its requests with hc (default: a client on
// http.DefaultTransport). hc must have no Timeout: streams stay open, and a lock request may
// wait up to the server's -max-lock-wait. Bound single calls with their context instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithLogger makes Watch and Session log their reconnections at level Info (default: no log).
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) { c.log = l }
}

// New returns a client of the server at rawURL, e.g. "http://127.0.0.1:8000" or
// "https://statehub.example/prefix" (a server behind a reverse proxy under a path).
func New(rawURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q: want http://host[:port] or https://host[:port]", rawURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: server URL %q: no query or fragment, please", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, hc: &http.Client{}, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// request is one HTTP request to the server.
type request struct {
	method string
	path   string // a key, a prefix or a route such as "/.tx"
	query  query
	header http.Header
	body   io.Reader
	accept string // default application/json
}

// query is a request's query string, in order; a parameter with an empty value is written bare
// ("?lock&ttl=30s"), as PROTOCOL.md writes flags.
type query []string

func (q query) flag(name string) query { return append(q, name) }

func (q query) add(name, value string) query {
	return append(q, name+"="+url.QueryEscape(value))
}

func (c *Client) url(path string, q query) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = strings.Join(q, "&")
	return u.String()
}

// newRequest builds r with the token of the moment.
func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r.path, r.query), r.body)
	if err != nil {
		return nil, err
	}
	for name, vs := range r.header {
		req.Header[name] = vs
	}
	if r.accept == "" {
		r.accept = "application/json"
	}
	req.Header.Set("Accept", r.accept)
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: getting the token: %w", err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return req, nil
}

// do sends r and returns the response of a 2xx answer, whose body the caller closes; any other
// answer is read and returned as an *Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	return nil, readError(res)
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// readError turns a failed answer into an *Error.
func readError(res *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	if err != nil && len(b) == 0 {
		return fmt.Errorf("client: reading the %d answer: %w", res.StatusCode, err)
	}
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Code != "" {
		e := eb.toError(res.StatusCode)
		if eb.Revision == nil { // the header carries it too
			if rev, err := strconv.ParseInt(res.Header.Get("X-Revision"), 10, 64); err == nil && (eb.Code == "revision_conflict" || eb.Code == "precondition_failed") {
				e.Revision = rev
			}
		}
		return e
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
		msg += "..."
	}
	if msg == "" {
		msg = http.StatusText(res.StatusCode)
	}
	return &Error{Status: res.StatusCode, Message: msg}
}

// doJSON sends r and decodes a 2xx answer's JSON body into v.
func (c *Client) doJSON(ctx context.Context, r request, v any) (*http.Response, error) {
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return res, fmt.Errorf("client: decoding the answer to %s %s: %w", r.method, r.path, err)
	}
	return res, nil
}

// jsonBody marshals a value to send: a json.RawMessage is sent as it is (the server checks it).
func jsonBody(v any) (io.Reader, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if raw == nil {
			raw = json.RawMessage("null")
		}
		return bytes.NewReader(raw), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encoding the value: %w", err)
	}
	return bytes.NewReader(b), nil
}

// checkKey refuses what is not a key: the server would treat a prefix as a subtree.
func checkKey(key string) error {
	if !strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: %q", ErrNotKey, key)
	}
	return nil
}

// checkPrefix refuses what is not a subtree path.
func checkPrefix(prefix string) error {
	if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("client: a prefix must start and end with /, not %q", prefix)
	}
	return nil
}

var errNoAnswer = errors.New("client: the server's answer lacks a field")
