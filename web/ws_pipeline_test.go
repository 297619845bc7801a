package web

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/hubtest"
)

// TestWSPipelineKeepsOrder: one socket sends more writes than the pipeline holds, with a bad frame
// and a read among them, without reading; every request is answered, in request order, and the
// writes applied in the order sent (the increments count up, the journal's commits follow the ids).
func TestWSPipelineKeepsOrder(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGroupJournal(t)
	ts := newWSServer(t, hub.Config{Journal: j}, Config{}, false)
	c := ts.dial(t)
	n := wsMaxPipeline + 50
	for i := 1; i <= n; i++ {
		switch i {
		case 7:
			c.sendRaw(`{"id":7,"op":"incr","key":"/n","by":"one"}`) // a field of the wrong type
		case 100:
			c.sendRaw(`{"id":100,"op":"get","key":"/n"}`)
		default:
			c.sendRaw(fmt.Sprintf(`{"id":%d,"op":"incr","key":"/n"}`, i))
		}
	}
	count := 0
	for i := 1; i <= n; i++ {
		a := c.read()
		if string(a.ID) != strconv.Itoa(i) {
			t.Fatalf("answer %s, want id %d: answers out of request order", a.raw, i)
		}
		switch i {
		case 7:
			if a.Code != "bad_field" {
				t.Fatalf("bad frame answered %s", a.raw)
			}
		case 100:
			if !a.OK || string(a.Value) != strconv.Itoa(count) {
				t.Fatalf("get after %d increments: %s", count, a.raw)
			}
		default:
			count++
			if !a.OK || string(a.Value) != strconv.Itoa(count) || *a.Revision != int64(count-1) {
				t.Fatalf("increment %d answered %s", count, a.raw)
			}
		}
	}
	var prev uint64
	for _, cm := range j.Commits() {
		if cm.Seq <= prev || string(cm.Changes[0].Value) != strconv.FormatUint(cm.Seq, 10) {
			t.Fatalf("commit %+v after seq %d: not in the order sent", cm, prev)
		}
		prev = cm.Seq
	}
}

// TestWSPipelineMemoryOnly: a memory-only hub answers each write at once, and the reader writes
// the answers itself once it has no request buffered (writeOwn): a socket that sends many writes
// without reading, over small socket buffers too, gets every answer in request order.
func TestWSPipelineMemoryOnly(t *testing.T) {
	t.Parallel()
	for _, small := range []bool{false, true} {
		t.Run(fmt.Sprintf("small buffers %v", small), func(t *testing.T) {
			t.Parallel()
			ts := newWSServer(t, hub.Config{}, Config{}, small)
			c := ts.dial(t)
			const n = 2000
			sent := make(chan error, 1)
			go func() { // writes while the test reads, as a pipelining client does
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for i := 1; i <= n; i++ {
					if err := c.c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"id":%d,"op":"incr","key":"/n"}`, i)); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			for i := 1; i <= n; i++ {
				a := c.read()
				if string(a.ID) != strconv.Itoa(i) || !a.OK || string(a.Value) != strconv.Itoa(i) {
					t.Fatalf("answer %d: %s", i, a.raw)
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWSPipelineAppliesWhileWaiting: the writes of one socket are applied while the first still
// waits for its fsync; when that fsync fails, every waiting write is answered 503, in order, and
// so are later ones.
func TestWSPipelineAppliesWhileWaiting(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	ts := newWSServer(t, hub.Config{Journal: j}, Config{}, false)
	c := ts.dial(t)
	for i := 1; i <= 5; i++ {
		c.sendRaw(fmt.Sprintf(`{"id":%d,"op":"set","key":"/k%d","value":%d}`, i, i, i))
	}
	for range 5 {
		<-j.Appended // all five applied, none durable
	}
	for range 5 {
		j.Release <- errors.New("fsync failed")
	}
	for i := 1; i <= 5; i++ {
		if a := c.read(); string(a.ID) != strconv.Itoa(i) || a.Status != 503 || a.Code != "unavailable" {
			t.Fatalf("answer %d: %s, want 503 unavailable", i, a.raw)
		}
	}
	if a := c.call(m{"op": "set", "key": "/later", "value": 1}); a.Status != 503 {
		t.Fatalf("a write after the failure: %s, want 503", a.raw)
	}
}

// TestWSPipelineReadShowsOnlyDurableState: a read sent after a write, before that write is
// durable, sees the write once it is durable, and fails with 503 when its fsync fails instead of
// showing it.
func TestWSPipelineReadShowsOnlyDurableState(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		j := hubtest.NewGateJournal()
		ts := newWSServer(t, hub.Config{Journal: j}, Config{}, false)
		c := ts.dial(t)
		c.sendRaw(`{"id":1,"op":"set","key":"/a","value":1}`)
		c.sendRaw(`{"id":2,"op":"get","key":"/a"}`)
		<-j.Appended
		if fail {
			j.Release <- errors.New("fsync failed")
		} else {
			j.Release <- nil
		}
		w, r := c.read(), c.read()
		if string(w.ID) != "1" || string(r.ID) != "2" {
			t.Fatalf("answers %s, %s: out of order", w.raw, r.raw)
		}
		switch {
		case !fail && (!w.OK || !r.OK || string(r.Value) != "1"):
			t.Fatalf("durable write: %s, then get %s; want the get to show it", w.raw, r.raw)
		case fail && (w.Status != 503 || r.Status != 503):
			t.Fatalf("failed fsync: %s, then get %s; want both 503", w.raw, r.raw)
		}
	}
}
