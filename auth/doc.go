// Package auth decides who a request is and what it may do: it turns a raw token into a Principal
// (Authenticator.Principal) and checks a Principal's grants for an operation on a path
// (Principal.Allow). It knows nothing of HTTP: the transports find the token in their requests
// (an Authorization header, a "token" query parameter, a WebSocket message) and hand it over.
//
// # Tokens
//
// A token is the admin token (compared in constant time), or a JWT: HS256 with the configured
// secret, or RS256, ES256 or EdDSA with the public key its "kid" names. Public keys come from a
// file (Config.JWTKeys: PEM blocks or a JWK Set) and/or a JWK Set URL (Config.JWKSURL: what
// Auth0, Clerk, Cognito, Supabase and Firebase publish), loaded through
// github.com/MicahParks/keyfunc/v3 and its jwkset storage. A URL's set is fetched at New (which
// fails if that fetch does), again every Config.JWKSRefresh, and again when a token names a kid
// the set does not hold (at most once per Config.JWKSRefreshLimit), so a provider's rotated keys
// are picked up and its revoked keys dropped.
//
// Only the algorithms of configured keys are accepted; exp, nbf and iat are checked with
// Config.Leeway of skew (DefaultLeeway), aud and iss when configured. A missing or bad token
// where one is needed is ErrUnauthorized (401 over HTTP); a good token without the grant is
// ErrForbidden (403).
//
// # Grants
//
// A JWT's "grants" claim maps operations to paths:
//
//	{"grants": {"read": ["/public/"], "write": ["/users/{sub}/"], "incr": ["/views/"],
//	            "lock": ["/ci/deploy"], "broadcast": ["/rooms/"], "admin": [], "metrics": ["/"]}}
//
// A path is a key ("/a/b": that key only) or a prefix ending in "/" ("/a/b/": every key and
// subtree below it, never "/a/bc" nor the key "/a/b" itself). "{sub}" is replaced by the token's
// subject, which must then be a single key component (letters, digits, "-", "_"); otherwise that
// grant is dropped, so a subject cannot widen or redirect it. Grant paths that are not valid
// paths are dropped too.
//
// Which operations imply which (the decision):
//
//   - admin implies every operation (read, write, incr, lock, broadcast, admin) on its paths. Admin on "/" is
//     needed for the root "/" itself (listing, streaming or deleting everything) and GET
//     /.snapshot. The admin token holds admin on "/".
//   - metrics is reading GET /.metrics, and nothing else; admin on "/" implies it. Metrics are not
//     per path: the grant is written ["/"] (the shape of every other grant), any other path is
//     refused in the anonymous grants and dropped from a token's. The metrics token
//     (Config.MetricsToken) holds it alone, so Prometheus needs no admin credentials.
//   - write implies read, incr, lock and broadcast: a writer can already replace or delete the
//     value, so reading it, adding to it, fencing it or telling its subscribers something
//     without storing it gives nothing more; and compare-and-swap (the client's update) needs
//     the read.
//   - read, incr, lock and broadcast imply nothing else. In particular incr does not imply read:
//     a page may count views without reading other keys; grant both for a live counter. And
//     broadcast does not imply read: to receive the messages too, grant read as well.
//   - Streams (SSE, WebSocket subscriptions) need read on their path.
//
// # Modes
//
// With no auth configured at all (no secret, no keys, no JWKS URL, no admin token of the
// operator's, no anonymous grants) the server is protected (ModeProtected), as Redis's protected
// mode: a request without a token holds every grant but admin and metrics (the local principal),
// AtomKV's open API, and the transports give that principal only to clients on loopback, refusing
// every other address with an explanation. The admin token the server generates for itself
// (Config.AdminTokenGenerated) and the metrics token work from anywhere; any other token is
// ignored, as an open server ignores tokens. Once anything is configured (ModeAuth), requests
// without a token hold only the anonymous grants (none by default), from anywhere. Config.Open
// (ModeOpen) opens everything to everyone deliberately: every request holds every grant, admin
// included (OpenPrincipal).
//
// # Invariants
//
//   - HS256 is verified with the secret only, never with a public key's bytes (the
//     algorithm-confusion attack); a public-key algorithm only with a public key of its own type,
//     the one the token's kid names, or the only key there is when the token names none.
//   - A key that cannot verify (a private or symmetric key, RSA under 2048 bits, a curve other
//     than P-256 or Ed25519, an "alg" that does not fit the key, a "use" other than "sig") is
//     never used: a key file that holds one is refused at New; in a URL's set it is passed over.
//   - A token longer than MaxTokenBytes is refused before it is parsed.
//   - No error, Describe or String holds a token or a secret.
//   - Every failure of Principal wraps ErrUnauthorized; every failure of Allow wraps
//     ErrUnauthorized (an anonymous or local principal: a token would help) or ErrForbidden.
//   - Only Config.Open gives admin or metrics to a request without a token, or anonymous grants
//     that name them.
//   - A Principal is immutable once made, and so are its grants; a principal's Expires is its
//     token's exp plus the leeway, the instant from which Principal refuses that token.
//
// # Concurrency
//
// An Authenticator is safe for concurrent use; its configuration never changes after New. With a
// JWKS URL it owns one refresh goroutine (keyfunc's), which Close ends, and a token with an
// unknown kid may wait for a fetch of the set, at most DefaultJWKSTimeout. Principals may be
// shared between goroutines.
package auth
