package wal_test

import (
	"sync"
	"testing"

	"github.com/statehub/statehub/hub/wal"
)

// BenchmarkAppendWait measures one acknowledged write, as the hub does it: Append under the hub's
// lock, Wait outside it, from many goroutines, on the real file system (a temp dir). It reports
// records per fsync, the group-commit batch size.
func BenchmarkAppendWait(b *testing.B) {
	data := []byte(`{"op":"set","key":"/users/42/settings","value":{"theme":"dark","size":14}}`)
	for _, mode := range []wal.SyncMode{wal.SyncAlways, wal.SyncInterval, wal.SyncNone} {
		b.Run(mode.String(), func(b *testing.B) {
			l, err := wal.Open(wal.Options{Dir: b.TempDir(), Sync: mode, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var next uint64
			b.SetParallelism(16) // 16 writers per CPU, like concurrent HTTP requests
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					next++
					tk := l.Append(next, data)
					mu.Unlock()
					if err := tk.Wait(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			st := l.Stats()
			if st.Syncs > 0 {
				b.ReportMetric(float64(st.Records)/float64(st.Syncs), "records/fsync")
			}
		})
	}
}

// BenchmarkAppendWaitOne: one writer, one record at a time, under SyncAlways: the latency of a
// durable write, fsync included, and what the log adds to it (the leader writes and fsyncs on its
// own goroutine, with no hand-off).
func BenchmarkAppendWaitOne(b *testing.B) {
	data := []byte(`{"op":"set","key":"/users/42/settings","value":{"theme":"dark","size":14}}`)
	l, err := wal.Open(wal.Options{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	var next uint64
	for b.Loop() {
		next++
		if err := l.Append(next, data).Wait(); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppend measures Append alone (what the hub pays under its lock): encode and buffer.
func BenchmarkAppend(b *testing.B) {
	data := []byte(`{"op":"set","key":"/users/42/settings","value":{"theme":"dark","size":14}}`)
	l, err := wal.Open(wal.Options{Dir: b.TempDir(), Sync: wal.SyncNone, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Append(uint64(i+1), data)
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}
