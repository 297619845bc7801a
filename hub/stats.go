package hub

import (
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/statehub/statehub/hub/wal"
)

// Stats is a snapshot of the hub's counters and gauges, for metrics. Counters count since the hub
// was created or opened.
type Stats struct {
	Keys          int
	Seq           uint64 // the last durable seq
	Subscribers   int    // open subscriptions
	SlowConsumers uint64 // subscriptions closed because their queue overflowed (ErrSlowConsumer)

	HistoryEvents   int    // changes retained for resuming streams
	HistoryCapacity int    // the most that are retained (Config.HistorySize)
	HistoryFloor    uint64 // seq of the newest change no longer retained: a resume from before it resets
	HistoryBytes    int    // bytes of keys, types and values of the retained changes (at most Config.HistoryBytes)

	Durable   bool       // a disk log backs the hub (Open); the fields below are zero otherwise
	WAL       wal.Stats  // the log's counters: records, bytes, fsyncs (Records/Syncs is the batch size)
	Snapshots int        // snapshots written since Open
	Fsync     *SyncStats // fsync latencies of the log and snapshot files; nil without a disk log
}

// Stats returns the hub's current statistics. Safe to call from any goroutine at any time.
func (h *Local) Stats() Stats {
	h.mu.RLock()
	st := Stats{
		Keys: h.tree.Len(),
		Seq:  h.durable.Load(),
	}
	s := h.store
	h.mu.RUnlock()
	if s != nil {
		st.Durable = true
		st.WAL = s.log.Stats()
		s.mu.Lock()
		st.Snapshots = s.snapshots
		s.mu.Unlock()
		ss := s.fs.stats()
		st.Fsync = &ss
	}
	return st
}

// SyncBuckets are the upper bounds, in seconds, of the fsync latency histogram.
var SyncBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// SyncStats is a histogram of fsync latencies.
type SyncStats struct {
	Count   uint64
	Sum     time.Duration
	Buckets map[float64]uint64 // cumulative count of fsyncs that took at most that many seconds
}

// timedFS is the wal.FS a store works through: it times every file fsync (the log's group
// commits and snapshot files) for the fsync latency histogram of Stats. It measures real time: the
// latency of the disk, not of the hub's clock.
type timedFS struct {
	wal.FS
	count  atomic.Uint64
	sumNs  atomic.Int64
	counts [16]atomic.Uint64 // per SyncBuckets index; the last is +Inf
}

func newTimedFS(fsys wal.FS) *timedFS { return &timedFS{FS: fsys} }

// OpenFile opens a file whose Sync is timed.
func (t *timedFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	f, err := t.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return timedFile{f, t}, nil
}

func (t *timedFS) observe(d time.Duration) {
	t.count.Add(1)
	t.sumNs.Add(int64(d))
	i := 0
	for i < len(SyncBuckets) && d.Seconds() > SyncBuckets[i] {
		i++
	}
	t.counts[i].Add(1)
}

// stats returns the histogram so far.
func (t *timedFS) stats() SyncStats {
	s := SyncStats{Count: t.count.Load(), Sum: time.Duration(t.sumNs.Load()), Buckets: make(map[float64]uint64, len(SyncBuckets))}
	var cum uint64
	for i, ub := range SyncBuckets {
		cum += t.counts[i].Load()
		s.Buckets[ub] = cum
	}
	return s
}

type timedFile struct {
	wal.File
	t *timedFS
}

func (f timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.t.observe(time.Since(start))
	return err
}
