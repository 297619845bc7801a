package hub_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/hubtest"
)

// TestAnswersShowOnlyDurableState: whatever leaves the hub (a value, a revision, a listing, a
// snapshot, a conflict's current state, a backup) shows only commits that are durable. Each case
// reads while a commit is applied but its fsync is in flight; the fsync then fails, so that commit
// is lost to a restart. A read that showed it would answer; a read that waits for it must fail
// with ErrUnavailable, whichever of the two goroutines runs first.
func TestAnswersShowOnlyDurableState(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		inFlight func(h *hub.Hub) error
		read     func(h *hub.Hub) error
	}{
		{"get of a changed key",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.Get("/a"); return err }},
		{"get of a deleted key",
			func(h *hub.Hub) error { _, err := h.Delete("/a", hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.Get("/a"); return err }},
		{"get of a created key",
			func(h *hub.Hub) error {
				_, err := h.Set("/new", []byte(`1`), hub.Cond{}, hub.WriteOptions{})
				return err
			},
			func(h *hub.Hub) error { _, err := h.Get("/new"); return err }},
		{"open file",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, _, err := h.OpenFile("/a"); return err }},
		{"list",
			func(h *hub.Hub) error { _, err := h.Set("/b", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.List("/", hub.ListOptions{}); return err }},
		{"snapshot subscription",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.Subscribe("/", hub.SubscribeOptions{Snapshot: true}); return err }},
		{"reset subscription",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error {
				_, err := h.Subscribe("/", hub.SubscribeOptions{Since: &hub.Position{Seq: 1, Key: "/a", Snapshot: true}})
				return err
			}},
		{"compare-and-swap conflict",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error {
				_, err := h.Set("/a", []byte(`3`), hub.Cond{NextRevision: ptr[int64](1)}, hub.WriteOptions{})
				return err
			}},
		{"if-match failure",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error {
				_, err := h.Set("/a", []byte(`3`), hub.Cond{MatchSeqs: []uint64{1}}, hub.WriteOptions{})
				return err
			}},
		{"increment of a value that is not an integer",
			func(h *hub.Hub) error {
				_, err := h.Set("/a", []byte(`"text"`), hub.Cond{}, hub.WriteOptions{})
				return err
			},
			func(h *hub.Hub) error { _, err := h.Incr("/a", 1, hub.WriteOptions{}); return err }},
		{"delete of a key being deleted",
			func(h *hub.Hub) error { _, err := h.Delete("/a", hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.Delete("/a", hub.Cond{}, hub.WriteOptions{}); return err }},
		{"lock held by an in-flight lock",
			func(h *hub.Hub) error { _, err := h.Lock(context.Background(), "/l", hub.LockOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.Lock(context.Background(), "/l", hub.LockOptions{}); return err }},
		{"transaction check",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error {
				_, err := h.Tx([]hub.TxCheck{{Key: "/a", Revision: 0}}, []hub.TxOp{{Op: hub.TxSet, Key: "/b", Value: []byte(`1`)}}, hub.WriteOptions{})
				return err
			}},
		{"backup",
			func(h *hub.Hub) error { _, err := h.Set("/a", []byte(`2`), hub.Cond{}, hub.WriteOptions{}); return err },
			func(h *hub.Hub) error { _, err := h.WriteBackup(io.Discard); return err }},
	}
	boom := errors.New("fsync failed")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := hubtest.NewGateJournal()
			h := newHub(t, hub.Config{Journal: j})
			j.Release <- nil
			set(t, h, "/a", `1`) // durable at seq 1
			<-j.Appended

			wrote := make(chan error, 1)
			go func() { wrote <- tc.inFlight(h) }()
			<-j.Appended // applied, its fsync not yet done

			read := make(chan error, 1)
			go func() { read <- tc.read(h) }()
			j.Release <- boom
			if err := <-wrote; !errors.Is(err, hub.ErrUnavailable) {
				t.Fatalf("in-flight write = %v, want ErrUnavailable", err)
			}
			if err := <-read; !errors.Is(err, hub.ErrUnavailable) {
				t.Fatalf("read during the failed fsync = %v, want ErrUnavailable: it showed a commit a restart takes back", err)
			}
		})
	}
}

// TestReadsOfDurableStateAfterFailure: once the journal has failed, reads of state that was
// durable before go on answering.
func TestReadsOfDurableStateAfterFailure(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	h := newHub(t, hub.Config{Journal: j})
	j.Release <- nil
	set(t, h, "/a", `1`)
	<-j.Appended
	j.Release <- errors.New("fsync failed")
	if _, err := h.Set("/b", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("Set = %v, want ErrUnavailable", err)
	}
	<-j.Appended
	e, err := h.Get("/a")
	if err != nil || string(e.Value) != "1" || e.Seq != 1 {
		t.Fatalf("Get(/a) = %+v, %v; want the durable value 1 at seq 1", e, err)
	}
	if got := h.Seq(); got != 1 {
		t.Fatalf("Seq() = %d, want the durable seq 1", got)
	}
}

// TestReadWaitsForInFlightCommit: a read of a commit whose fsync is in flight answers once the
// fsync succeeds, with the new state (it waits rather than refusing).
func TestReadWaitsForInFlightCommit(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	h := newHub(t, hub.Config{Journal: j})
	wrote := make(chan error, 1)
	go func() { _, err := h.Set("/a", []byte(`1`), hub.Cond{}, hub.WriteOptions{}); wrote <- err }()
	<-j.Appended
	type reply struct {
		e   hub.Entry
		err error
	}
	read := make(chan reply, 1)
	go func() { e, err := h.Get("/a"); read <- reply{e, err} }()
	j.Release <- nil
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	r := <-read
	if r.err != nil || string(r.e.Value) != "1" || r.e.Seq != 1 {
		t.Fatalf("Get = %+v, %v; want 1 at seq 1", r.e, r.err)
	}
}
