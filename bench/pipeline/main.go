// Command pipeline measures pipelined WebSocket writes against a running Statehub: each of -conns
// sockets keeps -inflight increments of one key in flight for -d, checks that the answers come in
// request order with values counting up, and prints one line of key=value figures: increments per
// second, answer latency (p50, p99), and the log's records per fsync over the run, from the
// server's /.metrics (statehub_wal_records_total, statehub_wal_fsyncs_total; 0 fsyncs when the
// server keeps its data in memory only).
//
// By default a socket sends its next request as each answer comes, as a browser that writes fast
// does. With -burst it sends -inflight requests in one write and waits for all their answers before
// the next burst, as redis-benchmark -P does.
//
//	statehub -data /tmp/d -sync always -admin-token bench-admin-token-0123456789 &
//	go run ./bench/pipeline -url http://127.0.0.1:8000 -token bench-admin-token-0123456789 -inflight 64 -d 5s
//
// bench/pipeline.sh runs it against -sync=always and a memory-only server, alternating with
// redis-benchmark, and prints the ratios.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/statehub/statehub/bench/scrape"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8000", "the server")
	token := flag.String("token", "", "a token that may increment the key and read /.metrics (the admin token)")
	inflight := flag.Int("inflight", 64, "requests in flight per socket")
	conns := flag.Int("conns", 1, "sockets")
	dur := flag.Duration("d", 5*time.Second, "how long to run")
	key := flag.String("key", "/bench/pipeline", "the key to increment")
	burst := flag.Bool("burst", false, "send -inflight requests in one write, then wait for all their answers (redis-benchmark -P)")
	flag.Parse()
	*base = strings.TrimSuffix(*base, "/")

	before := metrics(*base, *token)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*dur)
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := rolling
			if *burst {
				send = bursts
			}
			l := socket(*base, *token, *key, *inflight, deadline, send)
			mu.Lock()
			lat = append(lat, l...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := metrics(*base, *token)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	records := after["statehub_wal_records_total"] - before["statehub_wal_records_total"]
	fsyncs := after["statehub_wal_fsyncs_total"] - before["statehub_wal_fsyncs_total"]
	perFsync := 0.0
	if fsyncs > 0 {
		perFsync = records / fsyncs
	}
	fmt.Printf("ops_per_s=%.0f p50_us=%.0f p99_us=%.0f records=%.0f fsyncs=%.0f records_per_fsync=%.1f\n",
		float64(len(lat))/elapsed.Seconds(), pct(0.50), pct(0.99), records, fsyncs, perFsync)
}

// A sender writes requests to c until deadline, reserving a slot for each before it is sent and
// telling its time on sent, which it closes at the end.
type sender func(c *websocket.Conn, cork *corkConn, key string, slots chan struct{}, sent chan<- time.Time, deadline time.Time)

// rolling sends each request as soon as a slot is free.
func rolling(c *websocket.Conn, _ *corkConn, key string, slots chan struct{}, sent chan<- time.Time, deadline time.Time) {
	for id := 1; time.Now().Before(deadline); id++ {
		slots <- struct{}{}
		sent <- time.Now()
		if err := c.Write(context.Background(), websocket.MessageText, incr(id, key)); err != nil {
			log.Fatal(err)
		}
	}
	close(sent)
}

// bursts waits until every slot is free, then sends as many requests in one write.
func bursts(c *websocket.Conn, cork *corkConn, key string, slots chan struct{}, sent chan<- time.Time, deadline time.Time) {
	for id := 1; time.Now().Before(deadline); {
		for range cap(slots) {
			slots <- struct{}{}
		}
		for range cap(slots) {
			<-slots
		}
		cork.cork()
		now := time.Now()
		for range cap(slots) {
			slots <- struct{}{}
			sent <- now
			if err := c.Write(context.Background(), websocket.MessageText, incr(id, key)); err != nil {
				log.Fatal(err)
			}
			id++
		}
		if err := cork.uncork(); err != nil {
			log.Fatal(err)
		}
	}
	close(sent)
}

func incr(id int, key string) []byte {
	return []byte(`{"id":` + strconv.Itoa(id) + `,"op":"incr","key":"` + key + `"}`)
}

// socket increments key over one WebSocket with inflight requests outstanding until deadline, and
// returns each answer's latency. It exits the program if an answer fails or comes out of order.
func socket(base, token, key string, inflight int, deadline time.Time, send sender) []time.Duration {
	ctx := context.Background()
	u := "ws" + strings.TrimPrefix(base, "http") + "/.ws?token=" + token
	var cork *corkConn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cork = &corkConn{Conn: conn}
		return cork, nil
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dial}}
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	slots := make(chan struct{}, inflight)
	sent := make(chan time.Time, inflight)
	go send(c, cork, key, slots, sent, deadline)
	var lat []time.Duration
	var answer struct {
		ID    int             `json:"id"`
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
	}
	last := int64(-1)
	for t := range sent {
		_, data, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		lat = append(lat, time.Since(t))
		answer.OK = false
		if err := json.Unmarshal(data, &answer); err != nil || !answer.OK || answer.ID != len(lat) {
			log.Fatalf("answer %s to request %d: want ok, in request order", data, len(lat))
		}
		v, _ := strconv.ParseInt(string(answer.Value), 10, 64)
		if v <= last {
			log.Fatalf("answer %s after value %d: the writes were not applied in order", data, last)
		}
		last = v
		<-slots
	}
	return lat
}

// corkConn holds a burst's writes back until uncork writes them at once.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// metrics reads the server's unlabelled metrics.
func metrics(base, token string) map[string]float64 {
	m, err := scrape.Metrics(base, token)
	if err != nil {
		log.Fatal(err)
	}
	return m
}
