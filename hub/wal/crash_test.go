package wal_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

// TestCrashRecovery runs thousands of random crash points. Each scenario (one seed) runs several
// rounds on one simulated disk: open and replay, maybe RemoveBefore, then concurrent writers
// Append and Wait while the disk crashes at a random operation; then reopen on what survived.
// After every crash:
//   - what is replayed is the previously recovered log followed by a prefix of what was appended
//     in this round, in order (no reordering, no holes, no invented or altered records);
//   - that prefix includes every record whose Wait returned nil under SyncAlways.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	const shards, perShard, rounds = 8, 64, 5 // 2560 crash points
	var midway atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d crash points, %d of them during writes (the rest after a clean Close)",
			shards*perShard*rounds, midway.Load())
	})
	for s := range shards {
		t.Run(fmt.Sprint("shard", s), func(t *testing.T) {
			t.Parallel()
			for i := range perShard {
				midway.Add(int64(crashScenario(t, uint64(s*perShard+i), rounds)))
			}
		})
	}
}

// crashScenario runs one seed and returns how many of its crashes hit the log mid-operation.
func crashScenario(t *testing.T, seed uint64, rounds int) (midway int) {
	rng := rand.New(rand.NewPCG(seed, 42))
	fsys := waltest.New(seed)
	var truth []rec // the recovered log, all of it
	var floor uint64
	for round := range rounds {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d round %d: %s", seed, round, fmt.Sprintf(format, args...))
		}
		mode := wal.SyncAlways
		if rng.IntN(4) == 0 {
			mode = []wal.SyncMode{wal.SyncInterval, wal.SyncNone}[rng.IntN(2)]
		}
		opts := wal.Options{Dir: dir, FS: fsys, Sync: mode, SegmentSize: int64(64 + rng.IntN(400)),
			SyncInterval: time.Millisecond, Logger: quiet}
		l, err := wal.Open(opts)
		if err != nil {
			fail("Open after crash: %v", err)
		}
		var got []rec
		if err := l.Replay(floor, func(index uint64, data []byte) error {
			got = append(got, rec{index, string(data)})
			return nil
		}); err != nil {
			fail("Replay: %v", err)
		}
		var want []rec
		for _, r := range truth {
			if r.index > floor {
				want = append(want, r)
			}
		}
		if len(got) != len(want) {
			fail("replayed %v, want %v", short(got), short(want))
		}
		for i := range got {
			if got[i] != want[i] {
				fail("record %d: got %v, want %v", i, got[i], want[i])
			}
		}
		next := uint64(1)
		if len(truth) > 0 {
			next = truth[len(truth)-1].index + 1
		}

		// Arm the crash; it may hit RemoveBefore, rotations, writes or fsyncs.
		fsys.CrashAfter(1 + rng.IntN(80))
		if len(truth) > 0 && rng.IntN(3) == 0 {
			floor = max(floor, truth[rng.IntN(len(truth))].index)
			_ = l.RemoveBefore(floor) // may fail in the crash; records above floor stay either way
		}

		var (
			mu       sync.Mutex // the hub's lock: fixes index order
			appended []rec
			acked    = map[uint64]bool{}
			wg       sync.WaitGroup
		)
		writers, perWriter := 1+rng.IntN(4), 1+rng.IntN(30)
		for range writers {
			wg.Go(func() {
				for range perWriter {
					mu.Lock()
					r := rec{next, fmt.Sprint(seed, "/", next, "/", rng.Uint32()%1000)}
					next++
					tk := l.Append(r.index, []byte(r.data))
					appended = append(appended, r)
					mu.Unlock()
					err := tk.Wait()
					if err != nil {
						if !errors.Is(err, wal.ErrSyncFailed) {
							t.Errorf("seed %d: Wait = %v, want ErrSyncFailed", seed, err)
						}
						return
					}
					if mode == wal.SyncAlways {
						mu.Lock()
						acked[r.index] = true
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		err = l.Close()
		crashedEarly := fsys.Crashed()
		if crashedEarly {
			midway++
		}
		if err != nil && !crashedEarly {
			fail("Close without a crash: %v", err)
		}
		fsys = fsys.Crash() // if it has not crashed yet, crash after a clean Close

		// The next round's replay checks that the log is truth + a prefix of appended that holds
		// every acked record. Find that prefix from the disk itself.
		l, err = wal.Open(wal.Options{Dir: dir, FS: fsys, Logger: quiet})
		if err != nil {
			fail("Open after crash: %v", err)
		}
		var all []rec
		if err := l.Replay(0, func(index uint64, data []byte) error {
			all = append(all, rec{index, string(data)})
			return nil
		}); err != nil {
			fail("Replay: %v", err)
		}
		if err := l.Close(); err != nil {
			fail("Close: %v", err)
		}
		// all = (truth restricted to what RemoveBefore left) + prefix(appended).
		var lastTruth uint64
		if len(truth) > 0 {
			lastTruth = truth[len(truth)-1].index
		}
		k := 0
		for k < len(all) && all[k].index <= lastTruth {
			k++
		}
		newPart := all[k:]
		if len(newPart) > len(appended) {
			fail("replayed %d new records, only %d appended", len(newPart), len(appended))
		}
		for i, r := range newPart {
			if r != appended[i] {
				fail("new record %d: got %v, want %v (not a prefix of what was appended)", i, r, appended[i])
			}
		}
		for _, r := range appended[len(newPart):] {
			if acked[r.index] {
				fail("record %d was acknowledged but lost (kept %d of %d appended, crash early=%v)",
					r.index, len(newPart), len(appended), crashedEarly)
			}
		}
		if !crashedEarly && len(newPart) != len(appended) {
			fail("clean Close lost records: kept %d of %d", len(newPart), len(appended))
		}
		truth = append(truth, newPart...)
	}
	return midway
}
