package hub_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/hubtest"
)

// TestPipelinedWritesApplyInOrderBeforeDurable: writes made with a Pending return once applied,
// in the order made, while none is durable yet; their events reach subscribers only after Wait.
func TestPipelinedWritesApplyInOrderBeforeDurable(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	h := newHub(t, hub.Config{Journal: j})
	sub, err := h.Subscribe("/", hub.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ps := make([]hub.Pending, 3)
	for i := range ps {
		res, err := h.Incr("/n", 1, hub.WriteOptions{Pending: &ps[i]})
		if err != nil {
			t.Fatal(err)
		}
		<-j.Appended
		if res.Revision != int64(i) || res.Seq != uint64(i+1) || string(res.Value) != string(rune('1'+i)) {
			t.Fatalf("write %d = %+v, want revision %d, seq %d, value %d", i, res, i, i+1, i+1)
		}
		if ps[i].Ready() {
			t.Fatalf("write %d left nothing to wait for, before its fsync", i)
		}
	}
	if got := h.Seq(); got != 0 {
		t.Fatalf("Seq() = %d before any fsync, want 0", got)
	}
	if n := sub.Len(); n != 0 {
		t.Fatalf("%d events before their commits are durable", n)
	}
	for i := range ps {
		j.Release <- nil
		if err := ps[i].Wait(); err != nil {
			t.Fatalf("Wait %d = %v", i, err)
		}
		if e, _ := sub.Next(); e.Seq != uint64(i+1) {
			t.Fatalf("event %+v, want seq %d", e, i+1)
		}
	}
	if err := ps[0].Wait(); err != nil {
		t.Fatalf("a second Wait = %v, want nil", err)
	}
}

// TestPipelinedWritesFailTogether: a journal failure fails the Wait of every pending write, and
// the writes after it are refused.
func TestPipelinedWritesFailTogether(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	h := newHub(t, hub.Config{Journal: j})
	ps := make([]hub.Pending, 3)
	for i := range ps {
		if _, err := h.Set("/k", []byte(`1`), hub.Cond{}, hub.WriteOptions{Pending: &ps[i]}); err != nil {
			t.Fatal(err)
		}
		<-j.Appended
	}
	boom := errors.New("fsync failed")
	for i := range ps {
		j.Release <- boom
		if err := ps[i].Wait(); !errors.Is(err, hub.ErrUnavailable) {
			t.Fatalf("Wait %d = %v, want ErrUnavailable", i, err)
		}
	}
	var p hub.Pending
	if _, err := h.Set("/k", []byte(`2`), hub.Cond{}, hub.WriteOptions{Pending: &p}); !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("a write after the failure = %v, want ErrUnavailable", err)
	}
}

// TestPipelinedConflictShowsOnlyDurableState: a pipelined write that fails its precondition
// against a pending commit leaves the wait for that commit: its error, which shows the commit's
// revision, may be shown only if that commit becomes durable.
func TestPipelinedConflictShowsOnlyDurableState(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		j := hubtest.NewGateJournal()
		h := newHub(t, hub.Config{Journal: j})
		var first, second hub.Pending
		if _, err := h.Set("/k", []byte(`1`), hub.Cond{}, hub.WriteOptions{Pending: &first}); err != nil {
			t.Fatal(err)
		}
		<-j.Appended
		_, err := h.Set("/k", []byte(`2`), hub.Cond{NextRevision: ptr[int64](0)}, hub.WriteOptions{Pending: &second})
		if !errors.Is(err, hub.ErrRevisionConflict) {
			t.Fatalf("cas = %v, want a conflict", err)
		}
		if second.Ready() {
			t.Fatal("the conflict, which shows a commit not yet durable, left nothing to wait for")
		}
		if fail {
			j.Release <- errors.New("fsync failed")
		} else {
			j.Release <- nil
		}
		first.Wait()
		if err := second.Wait(); (err != nil) != fail || (fail && !errors.Is(err, hub.ErrUnavailable)) {
			t.Fatalf("fsync failed %v: the conflict's Wait = %v", fail, err)
		}
	}
}

// TestPipelinedWriteMemoryOnly: without a journal a write is durable once applied: nothing is
// left to wait for, and its event is published at once.
func TestPipelinedWriteMemoryOnly(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	sub, err := h.Subscribe("/", hub.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var p hub.Pending
	if _, err := h.Set("/k", []byte(`1`), hub.Cond{}, hub.WriteOptions{Pending: &p}); err != nil || !p.Ready() {
		t.Fatalf("Set = %v, Ready %v; want nil, true", err, p.Ready())
	}
	if n := sub.Len(); n != 1 {
		t.Fatalf("%d events queued, want the write's one", n)
	}
	if e, _ := sub.Next(); e.Key != "/k" {
		t.Fatalf("event %+v", e)
	}
}

// TestReadOfUnwaitedPipelinedWrite: a read that shows a pipelined write whose Wait has not run
// (its answer waits behind a slow one, or is no longer wanted) makes the write durable itself
// and answers; it does not wait for that Wait. The write's event is published with it.
func TestReadOfUnwaitedPipelinedWrite(t *testing.T) {
	t.Parallel()
	h := newDiskHub(t, hub.Config{})
	sub, err := h.Subscribe("/", hub.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var p hub.Pending
	if _, err := h.Set("/k", []byte(`1`), hub.Cond{}, hub.WriteOptions{Pending: &p}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := h.Get("/k")
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Get = %v", err)
		}
	case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatal("Get of a pipelined write blocks until its Pending is waited on")
	}
	if n := sub.Len(); n != 1 {
		t.Fatalf("%d events published once the write is durable, want 1", n)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if n := sub.Len(); n != 1 {
		t.Fatalf("%d events after Wait, want the one (published once)", n)
	}
}

// TestOpenFileAfterUnwaitedPipelinedDelete: OpenFile, which holds the stored files' lock while it
// reads, makes a pipelined delete of a file durable itself without sweeping its bytes under that
// lock (a self-deadlock); the delete's own Wait sweeps them.
func TestOpenFileAfterUnwaitedPipelinedDelete(t *testing.T) {
	t.Parallel()
	h := newDiskHub(t, hub.Config{})
	if _, err := h.SetFile("/f", "text/plain", strings.NewReader("bytes"), hub.Cond{}, hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var p hub.Pending
	if _, err := h.Delete("/f", hub.Cond{}, hub.WriteOptions{Pending: &p}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, f, err := h.OpenFile("/f")
		if f != nil {
			f.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		if !errors.Is(err, hub.ErrNotFound) {
			t.Fatalf("OpenFile of the deleted file = %v, want ErrNotFound", err)
		}
	case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatal("OpenFile after a pipelined delete of a file deadlocks")
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
}
