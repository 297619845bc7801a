package web

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/hub"
)

// BenchmarkFanout measures the delivery of changes of one key to 200 subscribers over loopback
// TCP, each on its own connection: SSE streams, and WebSockets with one subscription each. The
// writer keeps 8 changes in flight. ns/delivery is the wall time per delivery, cpu-ns/delivery the
// process's CPU time (user and system) per delivery, the clients' included; other load on the
// machine disturbs the second less.
func BenchmarkFanout(b *testing.B) {
	const subs, window = 200, 8
	for _, transport := range []string{"SSE", "WS"} {
		b.Run(transport, func(b *testing.B) {
			ts := newWSServer(b, hub.Config{}, Config{}, false)
			base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got atomic.Int64
			for range subs {
				if transport == "SSE" {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/bench/k", nil)
					req.Header.Set("Accept", "text/event-stream")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					go func() {
						defer res.Body.Close()
						sc := bufio.NewScanner(res.Body)
						for sc.Scan() {
							if bytes.HasPrefix(sc.Bytes(), []byte(`data: {"n"`)) {
								got.Add(1)
							}
						}
					}()
					continue
				}
				c, _, err := websocket.Dial(ctx, ts.url, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.CloseNow()
				if err := c.Write(ctx, websocket.MessageText, []byte(`{"op":"sub","id":1,"path":"/bench/k"}`)); err != nil {
					b.Fatal(err)
				}
				go func() {
					for {
						_, m, err := c.Read(ctx)
						if err != nil {
							return
						}
						if bytes.Contains(m, []byte(`"value":{"n"`)) {
							got.Add(1)
						}
					}
				}()
			}
			write := func(i int) {
				if _, err := ts.h.Set("/bench/k", []byte(`{"n":`+strconv.Itoa(i)+`}`), hub.Cond{}, hub.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			wait := func(n int64) {
				deadline := time.Now().Add(30 * time.Second)
				for got.Load() < n {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d deliveries", got.Load(), n)
					}
					time.Sleep(20 * time.Microsecond)
				}
			}
			for got.Load() < subs { // until every subscriber has one
				write(-1)
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			got.Store(0)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				wait(int64(i-window) * subs)
				write(i)
			}
			wait(int64(b.N) * subs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*subs), "cpu-ns/delivery")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
