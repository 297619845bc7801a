package main

import (
	"net/http"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newWSServer is the yardstick of the idle-socket benchmark (go run ./bench/subscribers -idle): a
// bare coder/websocket server. GET /.ws accepts a socket from any origin and reads it in a loop on
// the handler's goroutine, answering each message with its copy; /.metrics serves the Go
// runtime's and the process's standard metrics, as Statehub's /.metrics does.
func newWSServer() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	mux.Handle("GET /.metrics", promhttp.Handler())
	return mux
}
