// Package web is Statehub's HTTP face: the key API (AtomKV's protocol and its extensions), SSE
// streams, the WebSocket (/.ws), broadcasts, the client script and the operational endpoints, on
// echo. PROTOCOL.md at the repository
// root is the contract it implements.
//
// # Invariants
//
//   - Handlers never touch hub state directly: they call hub methods that return copies.
//   - Every operation exists once, in the operation layer (ops.go; the WebSocket-only
//     on-disconnect writes in ondisconnect.go), for HTTP and the WebSocket alike: the transports
//     decode requests into its types and encode its answers. Every request
//     is authorized in one place (permit) before it reaches the hub.
//   - Every error reaches the client through one mapping (classify, errorBody in errors.go), over
//     HTTP (handleError, echo's HTTPErrorHandler) and the WebSocket alike: JSON {"error","code"}
//     with a 4xx status for anything the client did wrong; 5xx only for faults of the server
//     itself, such as a failed disk, whose message never names a server path.
//   - Every request passes one middleware (wrapRoute): the CORS headers, then the preflight's
//     answer or protected mode's refusal, the limits and the handler, the error mapping, then its
//     metrics and log line.
//   - Every response allows any origin (CORS "*", no credentials) and exposes every header ("*").
//     A Private Network Access preflight is allowed only with Config.AllowPrivateNetwork.
//   - Protected mode (protected.go): with no auth configured, a request holding only the local
//     principal (no token) is served to clients on loopback only; any other address gets 403
//     protected_mode (over HTTP before its route runs; on a WebSocket per request). The client's
//     address is the TCP peer, or what trusted proxies name, never a header anyone may send.
//   - A connection is timed (Limits' header and idle timeouts, net/http's ReadHeaderTimeout and
//     IdleTimeout) only while it waits for a request or reads its headers; never in a handler,
//     never once hijacked. A body has its own deadline (Limits.BodyTimeout), lifted once it is
//     read, so a lock's wait is not cut. No http.Server.WriteTimeout or ReadTimeout: they would end
//     streams.
//   - Streams have no whole-response timeout; each write to a stream or socket has a deadline
//     between WriteTimeout and twice it, moved only when less than WriteTimeout is left
//     (writeDeadline), so it costs nothing per message.
//     A stream, a WebSocket subscription or a whole socket ends with a reason from one catalogue
//     (disconnect.go: slow, shutdown, unauthorized, token_expired, unavailable, closed), and the
//     client resumes from its last position. No stream or socket outlives its token's exp
//     (tokenexpiry.go).
//   - One WebSocket's writes apply in the order it sent them and are pipelined: each is applied
//     as it arrives, and its answer leaves, in request order, once its commit is durable
//     (hub.WriteOptions.Pending); a read waits for every earlier answer, so it sees the
//     connection's earlier writes and only durable state.
//   - A live change is encoded once per transport and the bytes shared by every stream and
//     socket it reaches (hub.Event.AppendEncoded); a WebSocket message adds only its "sub" in
//     front, and the writer frames it itself. What a socket's writer finds queued leaves in one
//     write (corkConn).
//   - A throttled stream or subscription (throttle.go) sends per key at most one event per
//     interval, the key's latest change with its own position, on one timer of the server's Clock
//     per subscription; positions never go backwards, so a resume stays exact.
//   - A broadcast (broadcast.go) reaches streams and subscriptions through their hub queues like a
//     change, but carries no position: an SSE "broadcast" event has no id (Last-Event-ID never
//     moves for it) and a WebSocket "broadcast" event no seq; throttling never holds it back.
//     Its rate is bounded per WebSocket connection, and over HTTP per token or client address.
//   - Streams and WebSocket upgrades are never compressed or buffered (compress.go): each event
//     leaves as it commits.
//   - The WebSocket accepts any origin: access is by token, never by cookie, so a cross-site page
//     gains nothing from a browser's ambient credentials (ws.go).
//   - No token or secret reaches a log line: the request log redacts secret-looking query
//     parameters (redactURI) and never logs headers or WebSocket messages.
//
// # Concurrency
//
// One goroutine per request, as net/http gives, but for SSE streams (sse.go). On HTTP/1.x a
// stream takes its connection over from net/http once its headers are out, and its handler
// returns: an idle stream has no goroutine and no buffer. Its subscription, its timers and its
// client's leaving wake it, and a goroutine runs it only while it has something to write; at most
// one at a time, which alone reads the subscription and writes the connection. One goroutine of
// the process waits in epoll for the clients of all of them to leave (closewatch_linux.go). On
// HTTP/2 the handler stays until the stream ends. A WebSocket's handler returns once the socket
// is upgraded, and the connection keeps its place among the open ones (connLease); an idle
// WebSocket has one goroutine, its reader (ws.go), which runs its requests one at a time in
// arrival order: a write is applied at once and its answer handed to the pipeline
// (ws_pipeline.go); any other request first waits until every earlier answer has been sent.
//
// Others run only while needed: the socket's writer, which alone writes data frames (the answers
// from a bounded queue and the events of every subscription of the socket, which it takes from
// their hub queues itself, ws_events.go), while it has something to write, at most one at a time
// (the reader runs it itself for the answers it gave at once, once no request is buffered); an
// answer goroutine while any write's answer waits for durability, which sends those answers in
// request order (at most 256 waiting; then the reader stops reading the socket); a ping's wait for
// its pong (a timer sends one every 20 s); and each lock request with a wait (at most 64 per
// socket). One goroutine of the server waits for the hub's shutdown and ends every socket then
// (draining).
package web
