package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/jslib"
)

// Header names of the API.
const (
	hdrRevision    = "X-Revision"
	hdrSeq         = "X-Seq"
	hdrIdempotency = "Idempotency-Key"
	hdrReplayed    = "Idempotent-Replayed"
)

// Defaults for Config's zero fields.
const (
	DefaultKeepAlive    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultRetry        = 2 * time.Second
)

// Config configures a Server. Zero fields take the Default constants.
type Config struct {
	KeepAlive    time.Duration       // SSE keep-alive comment interval (default 15 s)
	WriteTimeout time.Duration       // deadline for each write to a stream (default 10 s)
	Retry        time.Duration       // SSE retry hint (default 2 s)
	Client       *jslib.Bundle       // the browser client; nil serves none
	Logger       *slog.Logger        // default slog.Default()
	Clock        hub.Clock           // default hub.SystemClock
	Console      http.Handler        // answers a browser navigation to "/"; nil serves the script
	Pages        http.Handler        // serves GET and HEAD /.demo/* (demo pages, the pages' assets); nil serves none
	Auth         *auth.Authenticator // who may do what (auth.go); nil: protected, as auth.New(auth.Config{}) (protected.go)
	Limits       Limits              // rate, connection and timeout limits (limits.go); zero: none beyond the defaults
	MaxLockWait  time.Duration       // longest ?wait of a lock request (default 60 s)
	// AllowPrivateNetwork answers Private Network Access preflights with
	// Access-Control-Allow-Private-Network, so that public web pages may call this server on a
	// private or loopback address (protected.go). Off: browsers refuse them.
	AllowPrivateNetwork bool
}

// Server is Statehub's HTTP API over a hub.
type Server struct {
	hub     *hub.Hub
	cfg     Config
	log     *slog.Logger
	echo    *echo.Echo
	handler http.Handler // serveHTTP behind the compression (compress.go)
	// refuse answers a request whose method the API does not take (refuseMethod in wrapRoute).
	refuse  echo.HandlerFunc
	auth    *auth.Authenticator
	limits  *limiter
	metrics *metrics
	// preflight answers OPTIONS requests (echo's CORS middleware with corsConfig).
	preflight echo.HandlerFunc
	streams   sync.WaitGroup // the SSE streams (sse.go) and the WebSockets (ws.go) taken over from net/http
	drainOnce sync.Once
	drainCtx  context.Context // ends when the hub drains (draining, ws.go)
}

// New builds the HTTP server for h.
func New(h *hub.Hub, cfg Config) *Server {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.MaxLockWait <= 0 {
		cfg.MaxLockWait = DefaultMaxLockWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = hub.SystemClock{}
	}
	if cfg.Auth == nil {
		var err error
		if cfg.Auth, err = auth.New(auth.Config{}); err != nil {
			panic(err) // a zero Config has nothing to refuse
		}
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{hub: h, cfg: cfg, log: cfg.Logger, echo: echo.New(), auth: cfg.Auth, limits: newLimiter(cfg.Limits), metrics: newMetrics(h, cfg.Logger)}
	s.handler = compressed(http.HandlerFunc(s.serveHTTP))
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(cfg.Limits)
	s.preflight = middleware.CORSWithConfig(corsConfig)(func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	// Every handler is wrapped in wrapRoute once, here, with its route's metrics. The key route
	// takes every path and method no other route does, so every request reaches wrapRoute.
	f := s.wrapRoute
	e.GET("/.health", f("/.health", s.health))
	e.GET("/.metrics", f("/.metrics", s.serveMetrics))
	e.GET("/.snapshot", f("/.snapshot", s.backup))
	e.POST("/.tx", f("/.tx", s.tx))
	e.GET("/.ws", f("/.ws", s.ws))
	root := f("/", s.root)
	e.GET("/", root)
	e.HEAD("/", root)
	if cfg.Pages != nil {
		pages := f("/.demo/*", echo.WrapHandler(cfg.Pages))
		e.GET("/.demo/*", pages)
		e.HEAD("/.demo/*", pages)
	}
	if b := cfg.Client; b != nil {
		for path, a := range map[string]jslib.Asset{"/statehub.js": b.Script, "/statehub.mjs": b.Module, "/statehub.d.ts": b.Types} {
			serve := f(path, func(c echo.Context) error { return serveAsset(c, a) })
			e.GET(path, serve)
			e.HEAD(path, serve)
		}
	}
	e.Any("/*", f("/*", s.keyRoute))
	s.refuse = f("/*", refuseMethod)
	return s
}

// serveHTTP hands a request to echo's routes, or, when its method is none of the API's (any
// token, such as "FOO"), refuses it through wrapRoute without routing it, so that its answer has
// the CORS headers, a JSON error, a metric and a log line as every other. The check is made here,
// not in an echo Pre middleware, for which echo makes two closures per request
// (BenchmarkGetHandler).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(apiMethods, r.Method) {
		s.refuse(s.echo.NewContext(r, w)) // wrapRoute answers every error itself
		return
	}
	s.echo.ServeHTTP(w, r)
}

// apiMethods are the methods of the API; echo routes every other to its own 405, which
// refuseMethod replaces.
var apiMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions}

// refuseMethod answers a request whose method the API does not take.
func refuseMethod(c echo.Context) error {
	c.Response().Header().Set("Allow", strings.Join(apiMethods, ", "))
	return &apiError{http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %q is not allowed: the API takes %s", c.Request().Method, strings.Join(apiMethods, ", "))}
}

// corsConfig lets any origin use every method and header of the API, without credentials: access
// is by token, never by cookie. echo's CORS middleware answers the preflights with it; wrapRoute puts
// the headers of every other answer.
var corsConfig = middleware.CORSConfig{
	AllowOrigins: []string{"*"},
	AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions},
	AllowHeaders: []string{"Content-Type", "Authorization", "Last-Event-ID", hdrRevision, hdrIdempotency,
		"If-Match", "If-None-Match", "If-Fence", "X-Lock-Token", "Cache-Control"},
	MaxAge: 86400,
}

// anyValue is the value "*" of the two CORS headers wrapRoute puts on every answer, assigned under
// their canonical names and shared by every answer as jsonType is: a handler may replace a
// header's values or add to them (append copies the full slice), never change them in place
// (BenchmarkGetHandler: about 0.87 of the CPU time of Header.Set, two allocations fewer).
var anyValue = []string{"*"}

// wrapRoute is the one middleware, run for every request of the route registered at path, in this
// order: the CORS headers, which every answer carries, also to requests without an Origin; the
// preflight answer (OPTIONS), or protected mode's refusal (protect), the limits and the handler;
// the one error mapping (c.Error); the request's metrics and log line.
// Whether the request is a stream is decided once, here, for the limits and the metrics.
func (s *Server) wrapRoute(path string, next echo.HandlerFunc) echo.HandlerFunc {
	rm := s.metrics.route(path)
	return func(c echo.Context) error {
		start := time.Now()
		kind := streamKind(c.Request())
		h := c.Response().Header()
		h["Access-Control-Allow-Origin"] = anyValue
		// The wildcard exposes every header of an answer to a request without credentials, and
		// no request to Statehub carries credentials (access is by token): X-Revision, X-Seq,
		// ETag, Idempotent-Replayed, Retry-After, Location and any added later.
		h["Access-Control-Expose-Headers"] = anyValue
		var err error
		if c.Request().Method == http.MethodOptions {
			s.privateNetworkPreflight(c)
			err = s.preflight(c)
		} else if err = s.protect(c); err == nil {
			err = s.enforceLimits(c, kind, next)
		}
		if err != nil {
			c.Error(err) // the status is known after it
		}
		s.observe(c, rm, kind, start, err)
		return nil
	}
}

// Handler returns the server's http.Handler: the API, its answers gzip-compressed for clients that
// accept it, never its streams (compress.go).
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server serving the server with the limits a public server needs
// (NewHTTPServer).
func (s *Server) HTTPServer() *http.Server { return NewHTTPServer(s.handler, s.cfg.Limits) }

// NewHTTPServer returns an http.Server serving h with l's header and idle timeouts (zero fields:
// the defaults) and at most 64 KiB of request headers. A connection is timed only while it waits
// for a request (IdleTimeout) or reads a request's headers (ReadHeaderTimeout); never while a
// handler runs, never once hijacked. It sets no WriteTimeout: streams use a deadline per write
// instead; and no ReadTimeout, which would end streams too: bodies have their own deadline
// (Limits.BodyTimeout).
func NewHTTPServer(h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeaderTimeout, IdleTimeout: l.IdleTimeout, MaxHeaderBytes: 64 << 10}
}

// WaitStreams returns once every SSE stream and WebSocket taken over from net/http has ended, or
// when ctx ends. http.Server.Shutdown does not wait for them; after hub.Drain each ends at once,
// with its close event.
func (s *Server) WaitStreams(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.streams.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// health answers 200 {"status":"ok","seq","keys"} while the store can take writes, else 503
// {"status":"unavailable","error"}: a failed journal, or in a cluster an etcd without quorum.
func (s *Server) health(c echo.Context) error {
	if err := s.hub.Check(); err != nil {
		_, body := errorBody(err)
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": body.Error})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "seq": s.hub.Seq(), "keys": s.hub.Len()})
}

// backup streams a consistent, self-contained backup of the whole state (admins only): the
// snapshot and the bytes of the stored files it refers to. hub.Restore and the binary's -restore
// flag read it back.
func (s *Server) backup(c echo.Context) error {
	if err := s.authorize(c, auth.Admin, "/"); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="statehub.snapshot"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	if _, err := s.hub.WriteBackup(c.Response()); err != nil {
		// The status is sent: abort the connection, so the client sees a broken transfer rather
		// than a complete-looking backup that is cut short.
		s.log.Warn("backup stream ended early", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// root serves the client script, the console to a browser navigating to "/", or a stream of
// everything to an EventSource.
func (s *Server) root(c echo.Context) error {
	if isEventStream(c.Request()) {
		return s.keyRoute(c) // a stream of the whole tree (admins only)
	}
	c.Response().Header().Add("Vary", "Accept") // the console or the script
	if s.cfg.Console != nil && acceptsHTML(c.Request()) {
		s.cfg.Console.ServeHTTP(c.Response(), c.Request())
		return nil
	}
	if s.cfg.Client == nil {
		return &apiError{http.StatusNotFound, "not_found", "no client script is built into this server"}
	}
	return serveAsset(c, s.cfg.Client.Script)
}

// serveAsset answers with a file held in memory, revalidated by its ETag.
func serveAsset(c echo.Context, a jslib.Asset) error {
	h := c.Response().Header()
	h.Set("ETag", a.ETag)
	h.Set("Cache-Control", "no-cache")
	if etagMatches(c.Request().Header.Get("If-None-Match"), a.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.ContentType, a.Body)
}
