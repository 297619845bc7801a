// Command startup measures how long Statehub takes to open a data directory holding many keys, and
// the heap they take once loaded.
//
//	go run ./bench/startup -keys 1000000
//
// It writes the keys through a hub (sync none, for speed), then opens the directory twice: once
// with every key in the log (a server that never snapshotted) and once after a snapshot.
package main

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal"
)

func main() {
	n := flag.Int("keys", 1_000_000, "keys to write")
	flag.Parse()
	dir, err := os.MkdirTemp("", "statehub-startup-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := hub.Config{Logger: slog.New(slog.DiscardHandler)}
	sc := hub.StoreConfig{Dir: dir, Sync: wal.SyncNone, SnapshotRecords: 1 << 40, SnapshotBytes: 1 << 40}

	h, err := hub.Open(quiet, sc)
	if err != nil {
		log.Fatal(err)
	}
	for i := range *n {
		v := `{"n":` + strconv.Itoa(i) + `,"name":"user-` + strconv.Itoa(i) + `"}`
		if _, err := h.Set("/users/"+strconv.Itoa(i)+"/profile", []byte(v), hub.Cond{}, hub.WriteOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	h.Close()

	open := func(what string) *hub.Hub {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		h, err := hub.Open(quiet, sc)
		if err != nil {
			log.Fatal(err)
		}
		took := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		fmt.Printf("%-22s %d keys in %v, heap %.0f MiB\n", what+":", h.Len(), took.Round(time.Millisecond),
			float64(after.HeapInuse-before.HeapInuse)/(1<<20))
		return h
	}
	h = open("open from the log")
	if err := h.Checkpoint(); err != nil {
		log.Fatal(err)
	}
	h.Close()
	open("open from a snapshot").Close()
}
