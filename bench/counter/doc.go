// Package counter holds the yardsticks of Statehub's increment benchmark: Handler, the least an
// HTTP counter can do on net/http, an atomic add and a small answer; and Like, the same counter
// with what Statehub adds around an increment that is not its own work: the response headers of
// the protocol, CORS and Prometheus request metrics, served with Statehub's http.Server limits.
// bench/baseline serves them for bench/incr.sh, and web's BenchmarkServeIncr runs them beside the
// server.
//
// Invariant: the ratios are stated against these handlers, so they never gain work of their own
// (Handler stays that trivial; Like does what Statehub does around an increment, no more), nor
// lose the work any net/http handler does (the Content-Type header, the body).
package counter
