// Package counter is the yardstick of Statehub's increment benchmark: the least an HTTP counter
// can do on net/http, an atomic add and a small answer. bench/baseline serves it for bench/incr.sh,
// and web's BenchmarkServeIncr runs it beside the server.
//
// Invariant: the handler stays that trivial. The benchmark's target (0.85 of its increments per
// second) is stated against it, so it must never gain work of its own, nor lose the work any
// net/http handler does (the Content-Type header, the body).
package counter
