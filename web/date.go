package web

import (
	"net/http"
	"sync/atomic"
	"time"
)

// dateHeader is the Date header of the current second, formatted once a second and shared by the
// answers of that second. net/http formats it anew for every answer that has none, which was a
// measurable part of an increment's time (README, Performance).
type dateHeader struct {
	cur atomic.Pointer[dateValue]
}

type dateValue struct {
	unix   int64
	header []string // shared by every answer of the second: never modified
}

// at returns the header value for now. Writers racing at a second's turn each format it; the last
// store wins, and every one of them is right.
func (d *dateHeader) at(now time.Time) []string {
	u := now.Unix()
	if v := d.cur.Load(); v != nil && v.unix == u {
		return v.header
	}
	v := &dateValue{unix: u, header: []string{now.UTC().Format(http.TimeFormat)}}
	d.cur.Store(v)
	return v.header
}
