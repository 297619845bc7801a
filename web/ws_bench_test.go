package web

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal"
)

// BenchmarkWSIncr measures pipelined increments of one key over one WebSocket on loopback TCP: the
// client sends 64 requests, then reads their 64 answers, as redis-benchmark -P does. "memory" keeps
// the data in memory only, "durable" in a log fsynced before each answer (-sync=always).
// cpu-ns/op is the process's CPU time per increment, the client's included.
func BenchmarkWSIncr(b *testing.B) {
	b.Run("memory", func(b *testing.B) { wsIncr(b, hub.New(hub.Config{Logger: wsQuiet})) })
	b.Run("durable", func(b *testing.B) {
		h, err := hub.Open(hub.Config{Logger: wsQuiet}, hub.StoreConfig{Dir: b.TempDir(), Sync: wal.SyncAlways})
		if err != nil {
			b.Fatal(err)
		}
		wsIncr(b, h)
	})
}

func wsIncr(b *testing.B, h *hub.Hub) {
	const window = 64
	srv := httptest.NewServer(New(h, Config{Logger: wsQuiet}).Handler())
	b.Cleanup(srv.Close)
	b.Cleanup(func() { h.Close() })
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/.ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	reqs := make([][]byte, window)
	for i := range reqs {
		reqs[i] = []byte(`{"id":` + strconv.Itoa(i) + `,"op":"incr","key":"/bench/incr"}`)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for done := 0; done < b.N; done += window {
		for _, r := range reqs {
			if err := c.Write(ctx, websocket.MessageText, r); err != nil {
				b.Fatal(err)
			}
		}
		for range window {
			_, m, err := c.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if !bytes.Contains(m, []byte(`"ok":true`)) {
				b.Fatalf("answer %s", m)
			}
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
