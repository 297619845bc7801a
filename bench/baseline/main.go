// Command baseline is the yardstick for Statehub's increment benchmark: the least an HTTP counter
// can do on net/http, an atomic add and a small answer. bench/incr.sh runs wrk against it and
// against Statehub in the same run and reports the ratio. With -headers it answers with the
// headers Statehub's protocol puts on an increment (CORS, X-Revision, X-Seq, ETag), which shows
// how much of the gap the response format alone costs.
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
	headers := flag.Bool("headers", false, "answer with the headers of a Statehub increment")
	flag.Parse()
	var n atomic.Int64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		if *headers {
			s := strconv.FormatInt(v, 10)
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Expose-Headers", "*")
			h.Set("X-Revision", s)
			h.Set("X-Seq", s)
			h.Set("ETag", `"`+s+`"`)
		}
		w.Write(strconv.AppendInt(nil, v, 10))
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
