// Command baseline is the yardstick for Statehub's increment benchmark: the least an HTTP counter
// can do on net/http, an atomic add and a small answer. bench/incr.sh runs wrk against it and
// against Statehub in the same run and reports the ratio.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18100", "address to listen on")
	flag.Parse()
	var n atomic.Int64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(strconv.AppendInt(nil, v, 10))
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
