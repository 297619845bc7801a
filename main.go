// Command statehub serves a revisioned tree of JSON values over HTTP, SSE and WebSockets.
//
// Every flag but -version and -healthcheck can also be set by an environment variable
// STATEHUB_<NAME> (upper case, "-" as "_"); a flag on the command line wins over the variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/internal/buildinfo"
	"github.com/statehub/statehub/internal/cli"
	"github.com/statehub/statehub/jslib"
	"github.com/statehub/statehub/static"
	"github.com/statehub/statehub/web"
)

func main() {
	if len(os.Args) > 1 && cli.IsCommand(os.Args[1]) {
		os.Exit(cli.Main(os.Args[1:])) // statehub get|set|del|incr|ls|watch|broadcast|lock|backup|restore|help
	}
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "statehub:", err)
		os.Exit(1)
	}
}

// config is everything the flags set.
type config struct {
	addr                string
	data                string
	sync                wal.SyncMode
	historySize         int
	historyBytes        int
	queueSize           int
	queueBytes          int
	logFormat           string
	limits              hub.Limits
	restore             string
	snapshotRecords     int
	snapshotBytes       int64
	allowRepair         bool
	logLevel            slog.Level
	auth                auth.Config
	web                 web.Limits
	writeTimeout        time.Duration
	ephemeralGrace      time.Duration
	maxFileBytes        int64
	maxLockWait         time.Duration
	allowPrivateNetwork bool
	tls                 tlsConfig    // tls.go
	version             bool         // print the version and exit
	healthcheck         string       // a URL to check, then exit (healthcheck.go)
	cluster             clusterFlags // -store and the etcd flags (cluster.go)
}

// commandLineOnly are the flags that no STATEHUB_* variable sets: they make the binary do
// something else than serve, which a variable in a server's environment must not.
var commandLineOnly = map[string]bool{"version": true, "healthcheck": true}

// parseFlags reads args over the STATEHUB_* environment.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("statehub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", ":8000", "address to listen on")
	fs.StringVar(&c.data, "data", "./data", `data directory; "" keeps everything in memory only`)
	fs.TextVar(&c.sync, "sync", wal.SyncAlways, "when a write is durable: always (fsync before the answer, group commit), interval (fsync at least every second), none")
	fs.IntVar(&c.historySize, "history", hub.DefaultHistorySize, "changes retained for resuming streams")
	fs.IntVar(&c.historyBytes, "history-bytes", hub.DefaultHistoryBytes, "the most bytes of keys and values those changes hold; a bigger change is never retained")
	fs.IntVar(&c.queueSize, "queue", hub.DefaultQueueSize, "events buffered per subscriber before a slow one is disconnected")
	fs.IntVar(&c.queueBytes, "queue-bytes", hub.DefaultQueueBytes, "the most bytes of keys and values buffered per subscriber before a slow one is disconnected; one event always fits")
	fs.StringVar(&c.restore, "restore", "", "start an empty -data directory from this backup file (made by GET /.snapshot), then serve")
	fs.IntVar(&c.snapshotRecords, "snapshot-records", hub.DefaultSnapshotRecords, "log records between snapshots")
	fs.Int64Var(&c.snapshotBytes, "snapshot-bytes", hub.DefaultSnapshotBytes, "log bytes between snapshots")
	fs.BoolVar(&c.allowRepair, "repair", false, "cut the log at a corrupt record (keeping a .broken copy) instead of refusing to start")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "least important log level shown: debug (logs every request, tokens redacted), info, warn or error")
	fs.StringVar(&c.auth.JWTSecret, "jwt-secret", "", "HS256 secret (at least 32 bytes) for verifying JWTs; prefer STATEHUB_JWT_SECRET to a flag, which other users can see")
	fs.StringVar(&c.auth.JWTKeys, "jwt-keys", "", "file of public keys for verifying JWTs (RS256, ES256, EdDSA), chosen by kid: PEM blocks (a \"kid\" PEM header, else the RFC 7638 thumbprint) or a JWKS")
	fs.StringVar(&c.auth.JWKSURL, "jwt-jwks-url", "", "URL of a JWKS (as Auth0, Clerk, Cognito, Supabase and Firebase publish) whose keys verify JWTs (RS256, ES256, EdDSA), chosen by kid; fetched at start, hourly, and when a token names an unknown kid")
	fs.StringVar(&c.auth.Audience, "jwt-audience", "", "when set, JWTs must carry this aud")
	fs.StringVar(&c.auth.Issuer, "jwt-issuer", "", "when set, JWTs must carry this iss")
	fs.StringVar(&c.auth.AdminToken, "admin-token", "", "a static bearer token (at least 16 bytes) with every grant, for operators and CI; prefer STATEHUB_ADMIN_TOKEN")
	fs.StringVar(&c.auth.MetricsToken, "metrics-token", "", "a static bearer token (at least 16 bytes) that may only read /.metrics, for Prometheus; prefer STATEHUB_METRICS_TOKEN")
	anon := fs.String("anon", "", `grants of requests without a token, e.g. '{"read": ["/public/"]}'; none by default once any auth is configured`)
	fs.BoolVar(&c.auth.Open, "open", false, "give every request every grant, admin included, from any address (AtomKV's behaviour); without it and without auth only clients on loopback are served")
	fs.BoolVar(&c.allowPrivateNetwork, "allow-private-network", false, "answer Private Network Access preflights, so that public web pages may call this server on a private or loopback address")
	fs.Float64Var(&c.web.Rate, "rate", web.DefaultRate, "requests per second per client IP; 0: no limit")
	fs.IntVar(&c.web.Burst, "rate-burst", 0, "requests a client IP may make at once (default 2×rate)")
	fs.Float64Var(&c.web.TokenRate, "token-rate", web.DefaultTokenRate, "requests per second per token subject; 0: no limit")
	fs.IntVar(&c.web.TokenBurst, "token-burst", 0, "requests a token may make at once (default 2×token-rate)")
	fs.IntVar(&c.web.MaxConns, "max-conns", web.DefaultMaxConns, "open SSE streams and WebSockets per client address (its IP); 0: no limit")
	fs.IntVar(&c.web.MaxSocketSubs, "max-socket-subs", web.DefaultMaxSocketSubs, "subscriptions per WebSocket")
	fs.Float64Var(&c.web.BroadcastRate, "broadcast-rate", web.DefaultBroadcastRate, "broadcasts per second per WebSocket, and over HTTP per token (else per client IP); 0: no limit")
	fs.IntVar(&c.web.BroadcastBurst, "broadcast-burst", 0, "broadcasts a client may send at once (default 2×broadcast-rate)")
	fs.DurationVar(&c.web.ReadHeaderTimeout, "read-header-timeout", web.DefaultReadHeaderTimeout, "time allowed to send a request's headers")
	fs.DurationVar(&c.web.BodyTimeout, "body-timeout", web.DefaultBodyTimeout, "time allowed to send a request's body")
	fs.DurationVar(&c.web.IdleTimeout, "idle-timeout", web.DefaultIdleTimeout, "how long an idle keep-alive connection is kept")
	fs.DurationVar(&c.writeTimeout, "write-timeout", web.DefaultWriteTimeout, "deadline of each write to a stream or socket; a client slower than that is cut off and resumes")
	trusted := fs.String("trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client IP; none: the peer is the client")
	fs.IntVar(&c.limits.MaxKeyBytes, "max-key-bytes", hub.DefaultMaxKeyBytes, "longest key in bytes")
	fs.IntVar(&c.limits.MaxKeyDepth, "max-key-depth", hub.DefaultMaxKeyDepth, "most components in a key")
	fs.IntVar(&c.limits.MaxValueBytes, "max-value-bytes", hub.DefaultMaxValueBytes, "largest JSON value in bytes")
	fs.IntVar(&c.limits.MaxJSONDepth, "max-json-depth", hub.DefaultMaxJSONDepth, "deepest nesting of JSON arrays and objects")
	fs.IntVar(&c.limits.MaxBroadcastBytes, "max-broadcast-bytes", hub.DefaultMaxBroadcastBytes, "largest broadcast message (POST /path?broadcast) in bytes")
	fs.DurationVar(&c.ephemeralGrace, "ephemeral-grace", hub.DefaultEphemeralGrace, "how long an ephemeral key outlives the WebSocket connection that wrote it")
	fs.Int64Var(&c.maxFileBytes, "max-file-bytes", hub.DefaultMaxFileBytes, "largest stored file (a write with a non-JSON Content-Type) in bytes")
	fs.DurationVar(&c.maxLockWait, "max-lock-wait", web.DefaultMaxLockWait, "longest a lock request may wait (?wait=) for a held lock")
	fs.StringVar(&c.tls.certFile, "tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate chain; needs -tls-key")
	fs.StringVar(&c.tls.keyFile, "tls-key", "", "PEM private key of -tls-cert")
	tlsDomains := fs.String("tls-domain", "", "serve HTTPS (and HTTP/2) with certificates obtained and renewed over ACME (Let's Encrypt) for these comma-separated names; the CA must reach this server on port 443 of each; cached in <data>/autocert")
	fs.BoolVar(&c.version, "version", false, "print the version, the commit and the Go version, and exit")
	fs.StringVar(&c.healthcheck, "healthcheck", "", "GET this URL (e.g. http://127.0.0.1:8000/.health), exit 0 if it answers 200 and 1 if not; for container health checks")
	c.cluster.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: statehub [flags]\n\nEvery flag but -version and -healthcheck may also be set as STATEHUB_<NAME>, e.g. STATEHUB_ADDR=:9000.\n\n")
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if commandLineOnly[f.Name] {
			return
		}
		name := "STATEHUB_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("-log-format must be text or json, not %q", c.logFormat)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: statehub takes only flags (see -h)", fs.Arg(0))
	}
	if err := c.cluster.validate(); err != nil {
		return c, err
	}
	if c.restore != "" && c.data == "" {
		return c, errors.New("-restore needs a -data directory")
	}
	if err := c.tls.setup(*tlsDomains, c.data); err != nil {
		return c, err
	}
	if *anon != "" {
		g, err := auth.ParseGrants(*anon)
		if err != nil {
			return c, fmt.Errorf("-anon: %w", err)
		}
		c.auth.Anonymous = g
	}
	for _, s := range strings.Split(*trusted, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return c, fmt.Errorf("-trusted-proxies: %w", err)
		}
		c.web.TrustedProxies = append(c.web.TrustedProxies, n)
	}
	if c.web.Rate < 0 || c.web.TokenRate < 0 || c.web.MaxConns < 0 || c.web.BroadcastRate < 0 {
		return c, errors.New("-rate, -token-rate, -broadcast-rate and -max-conns must not be negative")
	}
	return c, nil
}

func newLogger(format string, level slog.Level, w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format must be text or json, not %q", format)
}

// run starts the server and blocks until SIGINT or SIGTERM, then shuts down in order: streams end
// with a reconnect hint, in-flight requests finish, the journal is flushed. A failed final flush
// (or an earlier failure of the journal) is returned, so the exit status is not 0.
func run(args []string, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.version {
		fmt.Println(buildinfo.Read())
		return nil
	}
	if cfg.healthcheck != "" {
		return healthcheck(cfg.healthcheck, healthcheckTimeout)
	}
	log, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	h, err := openHub(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := h.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("flushing the data directory at shutdown: %w", cerr))
		}
	}()
	client, err := jslib.Build()
	if err != nil {
		return fmt.Errorf("bundling the client: %w", err)
	}
	if err := setupAdminToken(&cfg.auth, cfg.data, log, stderr); err != nil {
		return err
	}
	cfg.auth.Logger = log
	authn, err := auth.New(cfg.auth)
	if err != nil {
		return err
	}
	defer authn.Close()
	srv := web.New(h, web.Config{Logger: log, Client: client, Auth: authn, Limits: cfg.web, WriteTimeout: cfg.writeTimeout, MaxLockWait: cfg.maxLockWait,
		Console: static.Console, Pages: static.Pages(), AllowPrivateNetwork: cfg.allowPrivateNetwork})
	tlsCfg, err := cfg.tls.config()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer()
	hs.TLSConfig = tlsCfg
	log.Info("statehub listening", "addr", ln.Addr().String(), "data", cfg.data, "sync", cfg.sync, "tls", cfg.tls.mode(), "version", buildinfo.Read().Version)
	logMode(log, authn, ln.Addr(), hs.TLSConfig != nil)
	served := make(chan error, 1)
	go func() { served <- serve(hs, ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	h.Drain() // streams end with event: close, reason shutdown
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("connections did not finish in time", "err", err)
	}
	if err := srv.WaitStreams(shutCtx); err != nil {
		log.Warn("event streams did not finish in time", "err", err)
	}
	return nil
}

// openHub restores a backup when asked, then opens the data directory (or a memory-only hub).
func openHub(cfg config, log *slog.Logger) (*hub.Hub, error) {
	hc := hub.Config{Limits: cfg.limits, HistorySize: cfg.historySize, HistoryBytes: cfg.historyBytes, QueueSize: cfg.queueSize, QueueBytes: cfg.queueBytes, MaxFileBytes: cfg.maxFileBytes, EphemeralGrace: cfg.ephemeralGrace, Logger: log}
	if cfg.cluster.store == "etcd" {
		ec, err := cfg.cluster.config()
		if err != nil {
			return nil, err
		}
		return hub.OpenEtcd(hc, ec)
	}
	if cfg.data == "" {
		log.Warn("no -data directory: state is in memory only and is lost at exit")
		return hub.New(hc), nil
	}
	sc := hub.StoreConfig{Dir: cfg.data, Sync: cfg.sync, SnapshotRecords: cfg.snapshotRecords, SnapshotBytes: cfg.snapshotBytes, AllowRepair: cfg.allowRepair}
	if cfg.restore != "" {
		f, err := os.Open(cfg.restore)
		if err != nil {
			return nil, err
		}
		seq, err := hub.Restore(sc, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("restoring %s: %w", cfg.restore, err)
		}
		log.Info("restored backup", "file", cfg.restore, "seq", seq)
	}
	return hub.Open(hc, sc)
}
