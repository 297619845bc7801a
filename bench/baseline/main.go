// Command baseline serves a yardstick of Statehub's increment benchmark (package counter):
// bench/incr.sh runs wrk against it and against Statehub in the same run and reports the ratios.
// By default it serves the bare counter on a plain http.Server; with -like, the like-for-like
// counter on an http.Server with Statehub's limits (web.NewHTTPServer). With -sse it serves the
// fan-out benchmark's yardstick instead (go run ./bench/subscribers -fanout): a trivial net/http
// SSE broadcaster (broadcast.go). With -ws it serves the idle-socket benchmark's yardstick
// (go run ./bench/subscribers -idle): a bare coder/websocket server (ws.go).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statehub/statehub/bench/counter"
	"github.com/statehub/statehub/web"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18100", "address to listen on")
	like := flag.Bool("like", false, "serve the like-for-like counter: Statehub's headers, CORS, request metrics and http.Server limits")
	sse := flag.Bool("sse", false, "serve a trivial SSE broadcaster: GET /events, POST /publish")
	ws := flag.Bool("ws", false, "serve a bare coder/websocket server: GET /.ws answers each message with its copy; GET /.metrics")
	flag.Parse()
	hs := &http.Server{Addr: *addr, Handler: counter.Handler()}
	switch {
	case *sse:
		hs.Handler = newBroadcaster()
	case *ws:
		hs.Handler = newWSServer()
	case *like:
		hs = web.NewHTTPServer(counter.Like(prometheus.NewRegistry()), web.Limits{})
		hs.Addr = *addr
	}
	log.Fatal(hs.ListenAndServe())
}
