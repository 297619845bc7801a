package counter

import (
	"net/http"
	"strconv"
	"sync/atomic"
)

// Handler counts every request and answers the new count as JSON. With headers it also answers
// with the headers Statehub's protocol puts on an increment (CORS, X-Revision, X-Seq, ETag),
// which shows how much of the gap the response format alone costs.
func Handler(headers bool) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		if headers {
			s := strconv.FormatInt(v, 10)
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Expose-Headers", "*")
			h.Set("X-Revision", s)
			h.Set("X-Seq", s)
			h.Set("ETag", `"`+s+`"`)
		}
		w.Write(strconv.AppendInt(nil, v, 10))
	})
}
