// Package web is Statehub's HTTP face: the key API (AtomKV's protocol and its extensions), SSE
// streams, the client script and the operational endpoints, on echo. PROTOCOL.md at the repository
// root is the contract it implements.
//
// # Invariants
//
//   - Handlers never touch hub state directly: they call hub methods that return copies.
//   - Every operation exists once, in the operation layer (ops.go), for HTTP and the WebSocket
//     alike: the transports decode requests into its types and encode its answers. Every request
//     is authorized in one place (permit) before it reaches the hub.
//   - Every error reaches the client through one mapping (classify, errorBody), over HTTP and the
//     WebSocket alike.
//   - Every error reaches the client through one mapping (handleError) as JSON
//     {"error","code"} with a 4xx status for anything the client did wrong; 5xx only for faults
//     of the server itself, such as a failed disk.
//   - Every request passes one middleware (wrapRoute): the CORS headers, the limits, the error
//     mapping, then its metrics and log line.
//   - Every response allows any origin (CORS "*", no credentials) and exposes every header ("*").
//     A Private Network Access preflight is allowed only with Config.AllowPrivateNetwork.
//   - Protected mode (protected.go): with no auth configured, a request holding only the local
//     principal (no token) is served to clients on loopback only; any other address gets 403
//     protected_mode (over HTTP before its route runs; on a WebSocket per request). The client's
//     address is the TCP peer, or what trusted proxies name, never a header anyone may send.
//   - A connection is timed (Limits' header and idle timeouts, net/http's ReadHeaderTimeout and
//     IdleTimeout) only while it waits for a request or reads its headers; never in a handler,
//     never once hijacked.
//   - Streams have no whole-response timeout; each write has its own deadline. A stream ends with
//     an `event: close` that says why (slow, shutdown, token_expired), and the client resumes from
//     its last id. No stream or socket outlives its token's exp (tokenexpiry.go).
//   - No token or secret reaches a log line: the request log redacts secret-looking query
//     parameters (redactURI) and never logs headers or WebSocket messages.
//
// # Concurrency
//
// One goroutine per request, as net/http gives. A stream goroutine owns its hub.Subscription and
// is the only reader of its channel; it closes the subscription when the client goes away.
package web
