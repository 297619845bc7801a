// Command subscribers measures what open subscriptions cost a running Statehub: it reads the
// server's memory from /.metrics, opens n subscriptions to one subtree, reads it again once the
// server counts them, and prints the difference per subscription. With -ws the subscriptions share
// -sockets WebSockets; without, each is an SSE stream on its own connection.
//
//	statehub -data "" -max-conns 0 -admin-token bench-admin-token-0123456789 &
//	go run ./bench/subscribers -url http://127.0.0.1:8000 -token bench-admin-token-0123456789 -n 2000
//	go run ./bench/subscribers -url http://127.0.0.1:8000 -token bench-admin-token-0123456789 -n 2000 -ws -sockets 20
//
// The figures are the server's (go_memstats_heap_inuse_bytes, process_resident_memory_bytes and
// go_goroutines); the heap moves with garbage not yet collected, so run it twice.
//
// With -fanout it runs the fan-out benchmark instead, starting its own servers (fanout.go); with
// -snapshot, the benchmark of ?snapshot subscribers of a large subtree (snapshot.go); with -idle,
// idle WebSockets against a bare coder/websocket server (idle.go).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/statehub/statehub/bench/scrape"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8000", "the server")
	token := flag.String("token", "", "a token that may read /.metrics and the subtree (the admin token)")
	n := flag.Int("n", 1000, "subscriptions to open")
	ws := flag.Bool("ws", false, "subscribe over WebSockets instead of SSE")
	sockets := flag.Int("sockets", 1, "WebSockets the subscriptions share (with -ws)")
	path := flag.String("path", "/bench/subscribers/", "the subtree to subscribe to")
	flag.Parse()
	if *fanoutMode || *snapshotMode || *idleMode {
		run := runFanout
		switch {
		case *snapshotMode:
			run = runSnapshot
		case *idleMode:
			run = runIdle
		}
		if err := run(); err != nil {
			log.Fatal(err)
		}
		return
	}
	c := &client{base: strings.TrimSuffix(*url, "/"), token: *token}

	before := c.metrics()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if *ws {
		for i := range *sockets {
			c.socket(ctx, *path, *n / *sockets + boolInt(i < *n%*sockets))
		}
	} else {
		for range *n {
			c.stream(ctx, *path)
		}
	}
	deadline := time.Now().Add(time.Minute)
	var after map[string]float64
	for {
		after = c.metrics()
		if after["statehub_subscribers"]-before["statehub_subscribers"] >= float64(*n) {
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("the server counts %v subscribers, not %d more than %v", after["statehub_subscribers"], *n, before["statehub_subscribers"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	kind := "SSE streams"
	if *ws {
		kind = fmt.Sprintf("WebSocket subscriptions over %d sockets", *sockets)
	}
	fmt.Printf("%d %s:\n", *n, kind)
	for _, m := range []string{"go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		d := after[m] - before[m]
		fmt.Printf("  %-30s %+8.1f MiB, %6.0f bytes per subscription\n", m, d/(1<<20), d/float64(*n))
	}
	fmt.Printf("  %-30s %+8.0f\n", "go_goroutines", after["go_goroutines"]-before["go_goroutines"])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type client struct {
	base, token string
}

func (c *client) request(ctx context.Context, path string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		log.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req
}

// metrics reads the unlabelled samples of /.metrics.
func (c *client) metrics() map[string]float64 {
	m, err := scrape.Metrics(c.base, c.token)
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// stream opens an SSE stream of path on a connection of its own and reads it until ctx ends.
func (c *client) stream(ctx context.Context, path string) {
	req := c.request(ctx, path)
	req.Header.Set("Accept", "text/event-stream")
	tr := &http.Transport{DisableCompression: true}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		log.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		log.Fatalf("stream %s: %s (raise -max-conns on the server, or give -token)", path, res.Status)
	}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
		}
	}()
}

// socket opens one WebSocket with n subscriptions of path and reads it until ctx ends.
func (c *client) socket(ctx context.Context, path string, n int) {
	url := "ws" + strings.TrimPrefix(c.base, "http") + "/.ws"
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	conn.SetReadLimit(-1)
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
			log.Fatal(err)
		}
	}
	if c.token != "" {
		send(map[string]any{"op": "auth", "id": 0, "token": c.token})
	}
	for i := range n {
		send(map[string]any{"op": "sub", "id": i + 1, "path": path})
	}
	go func() {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
}
