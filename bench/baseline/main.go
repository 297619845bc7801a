// Command baseline serves the yardstick of Statehub's increment benchmark (package counter):
// bench/incr.sh runs wrk against it and against Statehub in the same run and reports the ratio.
// With -headers it answers with the headers Statehub's protocol puts on an increment.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/statehub/statehub/bench/counter"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18100", "address to listen on")
	headers := flag.Bool("headers", false, "answer with the headers of a Statehub increment")
	flag.Parse()
	log.Fatal(http.ListenAndServe(*addr, counter.Handler(*headers)))
}
