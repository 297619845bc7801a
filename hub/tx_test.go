package hub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/statehub/statehub/hub"
)

func TestTx(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, mk func(hub.Config) *hub.Hub) {
		h := mk(hub.Config{})
		set(t, h, "/a", `1`)
		set(t, h, "/b", `"x"`)
		set(t, h, "/gone", `0`)
		sub := must(h.Subscribe("/", hub.SubscribeOptions{}))
		defer sub.Close()

		// A failed check changes nothing and names its key.
		before := h.Seq()
		_, err := h.Tx([]hub.TxCheck{{Key: "/a", Revision: 0}, {Key: "/b", Revision: 5}},
			[]hub.TxOp{{Op: hub.TxSet, Key: "/a", Value: []byte(`2`)}}, hub.WriteOptions{})
		var ce *hub.ConflictError
		if !errors.As(err, &ce) || ce.Key != "/b" || ce.Revision != 0 || !errors.Is(err, hub.ErrRevisionConflict) {
			t.Fatalf("failed check: %v", err)
		}
		if _, err := h.Tx([]hub.TxCheck{{Key: "/new", Revision: 0}}, nil, hub.WriteOptions{}); !errors.As(err, &ce) || ce.Revision != -1 {
			t.Fatalf("check of an absent key: %v", err)
		}
		// A failing op changes nothing either.
		_, err = h.Tx(nil, []hub.TxOp{{Op: hub.TxSet, Key: "/a", Value: []byte(`9`)}, {Op: hub.TxIncr, Key: "/b", By: 1}}, hub.WriteOptions{})
		if !errors.Is(err, hub.ErrNotInteger) {
			t.Fatalf("incr of a string: %v", err)
		}
		if h.Seq() != before || string(must(h.Get("/a")).Value) != "1" {
			t.Fatalf("a failed transaction changed something: seq %d -> %d", before, h.Seq())
		}

		res, err := h.Tx(
			[]hub.TxCheck{{Key: "/a", Revision: 0}, {Key: "/new", Revision: -1}},
			[]hub.TxOp{
				{Op: hub.TxSet, Key: "/new", Value: []byte(`{"n":1}`)},
				{Op: hub.TxIncr, Key: "/a", By: 41},
				{Op: hub.TxDelete, Key: "/gone"},
				{Op: hub.TxDelete, Key: "/never"},
			}, hub.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Seq != before+1 || h.Seq() != res.Seq {
			t.Fatalf("tx at seq %d, hub at %d, before %d", res.Seq, h.Seq(), before)
		}
		want := []hub.TxOpResult{{Key: "/new", Revision: 0}, {Key: "/a", Revision: 1, Value: []byte("42")}, {Key: "/gone", Revision: 1}, {Key: "/never", Revision: -1}}
		for i, w := range want {
			if g := res.Ops[i]; g.Key != w.Key || g.Revision != w.Revision || string(g.Value) != string(w.Value) {
				t.Errorf("op %d: %+v, want %+v", i, g, w)
			}
		}
		// One event per changed key, all at the one seq, in key order.
		var keys []string
		for range 3 {
			ev, _ := sub.Next()
			if ev.Seq != res.Seq {
				t.Fatalf("event %+v not at seq %d", ev, res.Seq)
			}
			keys = append(keys, ev.Key)
		}
		if keys[0] != "/a" || keys[1] != "/gone" || keys[2] != "/new" {
			t.Fatalf("events in order %v", keys)
		}
	})
}

func TestTxInvalid(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	lk := must(h.Lock(context.Background(), "/lock", hub.LockOptions{}))
	for _, tc := range []struct {
		name   string
		checks []hub.TxCheck
		ops    []hub.TxOp
		want   error
	}{
		{"repeated key", nil, []hub.TxOp{{Op: "set", Key: "/a", Value: []byte(`1`)}, {Op: "incr", Key: "/a"}}, hub.ErrInvalidTx},
		{"unknown op", nil, []hub.TxOp{{Op: "append", Key: "/a"}}, hub.ErrInvalidTx},
		{"set without value", nil, []hub.TxOp{{Op: "set", Key: "/a"}}, hub.ErrInvalidTx},
		{"bad key", nil, []hub.TxOp{{Op: "delete", Key: "a"}}, hub.ErrInvalidKey},
		{"bad check key", []hub.TxCheck{{Key: "/a/", Revision: 0}}, nil, hub.ErrInvalidKey},
		{"bad revision", []hub.TxCheck{{Key: "/a", Revision: -2}}, nil, hub.ErrInvalidTx},
		{"held lock", nil, []hub.TxOp{{Op: "delete", Key: "/lock"}}, hub.ErrLocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.Tx(tc.checks, tc.ops, hub.WriteOptions{}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := h.Unlock("/lock", lk.Token); err != nil {
		t.Fatal(err)
	}
}

func TestTxIdempotent(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	ops := []hub.TxOp{{Op: hub.TxIncr, Key: "/n", By: 2}}
	first := must(h.Tx(nil, ops, hub.WriteOptions{Idempotency: "k"}))
	again := must(h.Tx(nil, ops, hub.WriteOptions{Idempotency: "k"}))
	if !again.Replayed || again.Seq != first.Seq || string(again.Ops[0].Value) != "2" {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	if v := string(must(h.Get("/n")).Value); v != "2" {
		t.Fatalf("/n = %s after a replayed tx", v)
	}
}
