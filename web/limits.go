package web

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// Defaults for Limits. The rate and connection limits are off in a zero Config (tests, embedding)
// and set by the binary's flags, whose defaults are these constants.
const (
	DefaultRate              = 0    // requests per second per client IP; 0: no limit (AtomKV has none)
	DefaultTokenRate         = 0    // requests per second per token subject; 0: no limit
	DefaultMaxConns          = 256  // concurrent streams and sockets per client IP (the flag's default)
	DefaultMaxSocketSubs     = 1024 // subscriptions per WebSocket
	DefaultBroadcastRate     = 30   // broadcasts per second per client (the flag's default); 0: no limit
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultBodyTimeout       = 5 * time.Minute
)

// Limit errors; classify maps them to 429.
var (
	ErrRateLimited  = errors.New("web: too many requests")
	ErrTooManyConns = errors.New("web: too many open streams and sockets")
)

// Limits bounds what one client may do. Zero fields mean no limit unless their comment gives a
// default.
type Limits struct {
	Rate       float64 // requests per second per client IP; 0: no limit
	Burst      int     // requests a client IP may make at once (default 2×Rate, at least 1)
	TokenRate  float64 // requests per second per token (by issuer and subject); 0: no limit
	TokenBurst int     // (default 2×TokenRate, at least 1)
	MaxConns   int     // concurrent SSE streams and WebSockets per client IP; 0: no limit

	// BroadcastRate bounds the broadcasts of one client, per second: of one WebSocket, or over
	// HTTP of one token (by issuer and subject), else of one client IP. 0: no limit.
	BroadcastRate  float64
	BroadcastBurst int // broadcasts a client may send at once (default 2×BroadcastRate, at least 1)

	// MaxSocketSubs bounds the subscriptions of one WebSocket (default DefaultMaxSocketSubs);
	// ws.go reads it through Server.MaxSocketSubs.
	MaxSocketSubs int

	ReadHeaderTimeout time.Duration // to read a request's headers (default 10 s)
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request (default 120 s)
	BodyTimeout       time.Duration // to read a request's body (default 5 min); never applies to streams

	// TrustedProxies are the networks whose X-Forwarded-For is believed for the client IP. None:
	// the peer address is the client.
	TrustedProxies []*net.IPNet
}

func (l Limits) withDefaults() Limits {
	if l.Rate > 0 && l.Burst <= 0 {
		l.Burst = max(1, int(math.Ceil(2*l.Rate)))
	}
	if l.TokenRate > 0 && l.TokenBurst <= 0 {
		l.TokenBurst = max(1, int(math.Ceil(2*l.TokenRate)))
	}
	if l.BroadcastRate > 0 && l.BroadcastBurst <= 0 {
		l.BroadcastBurst = max(1, int(math.Ceil(2*l.BroadcastRate)))
	}
	if l.MaxSocketSubs <= 0 {
		l.MaxSocketSubs = DefaultMaxSocketSubs
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	return l
}

// MaxSocketSubs is the most subscriptions one WebSocket may hold; ws.go refuses more.
func (s *Server) MaxSocketSubs() int { return s.cfg.Limits.MaxSocketSubs }

// ipExtractor finds the client IP: the peer, or the X-Forwarded-For entry added by the nearest
// untrusted hop when the peer is a trusted proxy.
func ipExtractor(l Limits) echo.IPExtractor {
	if len(l.TrustedProxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range l.TrustedProxies {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// limiter holds the per-client state of Limits. Rate decisions take the time from the server's
// clock, so tests drive them with a fake one.
type limiter struct {
	ip, token *buckets
	broadcast *buckets // HTTP broadcasts, by token or client IP (a WebSocket has a bucket of its own)
	conns     *connCounter
}

func newLimiter(l Limits) *limiter {
	return &limiter{
		ip:        newBuckets(l.Rate, l.Burst),
		token:     newBuckets(l.TokenRate, l.TokenBurst),
		broadcast: newBuckets(l.BroadcastRate, l.BroadcastBurst),
		conns:     &connCounter{max: l.MaxConns, n: map[string]int{}},
	}
}

// enforceLimits applies Limits to a request before handing it to next: the IP's rate, the token's rate,
// the IP's open streams and sockets, and the body deadline. kind is streamKind's for the request.
func (s *Server) enforceLimits(c echo.Context, kind string, next echo.HandlerFunc) error {
	r := c.Request()
	if r.URL.Path == "/.health" {
		return next(c) // liveness probes are never throttled
	}
	var ip string
	if s.limits.ip.limit > 0 || kind != "" {
		ip = c.RealIP()
	}
	if s.limits.ip.limit > 0 || s.limits.token.limit > 0 {
		now := s.cfg.Clock.Now()
		if wait, ok := s.limits.ip.take(ip, now); !ok {
			return s.tooMany(c, "ip", wait)
		}
		if s.limits.token.limit > 0 {
			if p, err := s.principalOf(c); err == nil && p.RateKey() != "" {
				if wait, ok := s.limits.token.take(p.RateKey(), now); !ok {
					return s.tooMany(c, "token", wait)
				}
			}
		}
	}
	if kind != "" {
		if !s.limits.conns.acquire(ip) {
			s.metrics.limited.WithLabelValues("conns").Inc()
			return fmt.Errorf("%w: at most %d per client", ErrTooManyConns, s.limits.conns.max)
		}
		g := s.metrics.streams.WithLabelValues(kind)
		g.Inc()
		l := newConnLease(func() {
			g.Dec()
			s.limits.conns.release(ip)
		})
		c.Set(leaseKey, l)
		defer l.release()
	} else if r.ContentLength != 0 {
		s.bodyDeadline(c)
	}
	return next(c)
}

// tooMany answers 429 with Retry-After in whole seconds (at least 1).
func (s *Server) tooMany(c echo.Context, scope string, wait time.Duration) error {
	s.metrics.limited.WithLabelValues(scope).Inc()
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return fmt.Errorf("%w: over the %s rate limit; retry after %d s", ErrRateLimited, scope, secs)
}

// streamKind names a long-lived request ("sse", "ws"), or "" for an ordinary one.
func streamKind(r *http.Request) string {
	switch {
	case r.URL.Path == "/.ws":
		return "ws"
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && isEventStream(r):
		return "sse"
	}
	return ""
}

// bodyDeadline bounds the time to read the request body. The deadline is lifted once the body is
// read to its end, so a handler that then waits (a lock's long poll) is not cut off.
func (s *Server) bodyDeadline(c echo.Context) {
	rc := http.NewResponseController(c.Response().Writer)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.Limits.BodyTimeout)) != nil {
		return // not a real connection (a test recorder)
	}
	r := c.Request()
	r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { rc.SetReadDeadline(time.Time{}) }}
}

type deadlineBody struct {
	io.ReadCloser
	clear func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.clear)
	}
	return n, err
}

// buckets are token buckets by key (a client IP or a token), created on first use and forgotten
// once idle long enough to have refilled.
type buckets struct {
	limit   rate.Limit // 0: no limit
	burst   int
	idle    time.Duration // after this long unused, a bucket is full again and can be dropped
	mu      sync.Mutex
	m       map[string]*bucket
	sweepAt int
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newBuckets(perSecond float64, burst int) *buckets {
	b := &buckets{limit: rate.Limit(perSecond), burst: burst, m: map[string]*bucket{}, sweepAt: 1024}
	if perSecond > 0 {
		b.idle = max(time.Second, time.Duration(float64(burst)/perSecond*float64(time.Second)))
	}
	return b
}

// take spends one token of key's bucket at now. When none is left it returns false and how long
// until one is.
func (b *buckets) take(key string, now time.Time) (time.Duration, bool) {
	if b.limit <= 0 {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[key]
	if bk == nil {
		if len(b.m) >= b.sweepAt {
			b.sweepLocked(now)
		}
		bk = &bucket{lim: rate.NewLimiter(b.limit, b.burst)}
		b.m[key] = bk
	}
	if now.After(bk.seen) {
		bk.seen = now
	}
	return spend(bk.lim, now)
}

// spend spends one token of lim at now. When none is left it returns false and how long until
// one is.
func spend(lim *rate.Limiter, now time.Time) (time.Duration, bool) {
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

func (b *buckets) sweepLocked(now time.Time) {
	for k, bk := range b.m {
		if now.Sub(bk.seen) > b.idle {
			delete(b.m, k)
		}
	}
	b.sweepAt = max(1024, 2*len(b.m))
}

// leaseKey is the echo.Context key of a stream's or socket's connLease.
const leaseKey = "statehub.lease"

// connLease is a stream's or socket's place among the open ones: in its IP's count and in the
// statehub_open_streams gauge. It ends when the handler returns, unless the handler kept it for
// a stream that outlives it (an SSE stream taken over from net/http): then it ends at the later
// of the handler's return and the stream's release.
type connLease struct {
	refs atomic.Int32 // the handler's, and the stream's once kept
	end  func()
}

func newConnLease(end func()) *connLease {
	l := &connLease{end: end}
	l.refs.Store(1)
	return l
}

// keep holds the lease past the handler's return, until a call of release.
func (l *connLease) keep() { l.refs.Add(1) }

// release lets go of one hold; the last ends the lease.
func (l *connLease) release() {
	if l.refs.Add(-1) == 0 {
		l.end()
	}
}

// connCounter counts open streams and sockets per client IP.
type connCounter struct {
	max int // 0: no limit
	mu  sync.Mutex
	n   map[string]int
}

func (cc *connCounter) acquire(ip string) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.max > 0 && cc.n[ip] >= cc.max {
		return false
	}
	cc.n[ip]++
	return true
}

func (cc *connCounter) release(ip string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.n[ip]--; cc.n[ip] <= 0 {
		delete(cc.n, ip)
	}
}
