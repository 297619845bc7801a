package hub_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal/waltest"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestPresenceNodeLostLocal: an ephemeral key found at start-up (its connection died with the
// process) is deleted one grace period later with reason node_lost and its owner; the reason is
// journaled, so a resume after a further restart replays it.
func TestPresenceNodeLostLocal(t *testing.T) {
	t.Parallel()
	fs := waltest.New(1)
	clock := fakeclock.New(t0)
	const grace = 10 * time.Second
	open := func() *hub.Hub {
		h, err := hub.Open(hub.Config{Clock: clock, EphemeralGrace: grace, Logger: slog.New(slog.DiscardHandler)},
			hub.StoreConfig{Dir: "/data", FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := open()
	sess := h.NewSession()
	start := set(t, h, "/n/start", `0`)
	must(h.Set("/n/ann", []byte(`1`), hub.Cond{}, hub.WriteOptions{Session: sess, Subject: "ann"}))
	if err := h.Close(); err != nil { // the session never ends: the process is gone
		t.Fatal(err)
	}

	h = open()
	s := confSubscribe(t, h, "/n/", hub.SubscribeOptions{})
	clock.Advance(grace)
	e := s.next()
	confPresenceEvent(t, e, "/n/ann", true, &hub.Presence{Sub: "ann", Conn: sess.Conn()}, hub.ReasonNodeLost)
	s.sub.Close()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	h = open()
	defer h.Close()
	r := must(h.Subscribe("/n/", hub.SubscribeOptions{Since: &hub.Position{Seq: start.Seq, Key: "/n/start"}}))
	defer r.Close()
	if r.Reset || len(r.TestInitial()) != 2 {
		t.Fatalf("resume after a restart: reset %v, %d events; want the set and the delete", r.Reset, len(r.TestInitial()))
	}
	confPresenceEvent(t, r.TestInitial()[1], "/n/ann", true, &hub.Presence{Sub: "ann", Conn: sess.Conn()}, hub.ReasonNodeLost)
}

// TestPresenceNodeLostEtcd: two nodes share a prefix; when node A's etcd lease ends (as when A
// dies), etcd deletes A's ephemeral keys and node B's subscribers see each delete with reason
// node_lost and its owner.
func TestPresenceNodeLostEtcd(t *testing.T) {
	t.Parallel()
	endpoints := etcdEndpoints(t)
	prefix := "/lost" + time.Now().Format("150405.000000") + "/"
	open := func() *hub.Hub {
		return openEtcdHub(t, hub.Config{}, hub.EtcdConfig{Endpoints: endpoints, Prefix: prefix})
	}
	a, b := open(), open()
	sess := a.NewSession()
	must(a.Set("/room/ann", []byte(`1`), hub.Cond{}, hub.WriteOptions{Session: sess, Subject: "ann"}))
	if err := a.OnDisconnect(sess, hub.DisconnectWrite{Key: "/room/status/ann", Value: []byte(`"offline"`)}); err != nil {
		t.Fatal(err)
	}
	// A snapshot: B's watch may not have delivered the set yet, and the live part starts after it.
	s := confSubscribe(t, b, "/room/", hub.SubscribeOptions{Snapshot: true})
	if len(s.sub.TestInitial()) != 1 {
		t.Fatalf("snapshot %+v, want /room/ann", s.sub.TestInitial())
	}

	// A's lease ends: revoke it, as etcd does once A stops renewing it.
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	resp, err := cli.Get(ctx, prefix+"k/room/ann")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("the ephemeral key in etcd: %v %+v", err, resp)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	confPresenceEvent(t, s.next(), "/room/ann", true, &hub.Presence{Sub: "ann", Conn: sess.Conn()}, hub.ReasonNodeLost)
	// B (or A, which lives on here) makes A's on-disconnect write, once.
	e := s.next()
	if e.Key != "/room/status/ann" || string(e.Value) != `"offline"` || e.Reason != hub.ReasonNodeLost || e.Revision != 0 {
		t.Fatalf("event %+v, want the on-disconnect write with reason node_lost", e)
	}
	s.quiet("/room/marker", "after the on-disconnect write")
}

// TestOnDisconnectOrphanEtcd: the registrations of a node that was lost while no node watched
// are made by the next node that starts.
func TestOnDisconnectOrphanEtcd(t *testing.T) {
	t.Parallel()
	endpoints := etcdEndpoints(t)
	prefix := "/orphan" + time.Now().Format("150405.000000") + "/"
	open := func() *hub.Hub {
		return openEtcdHub(t, hub.Config{}, hub.EtcdConfig{Endpoints: endpoints, Prefix: prefix})
	}
	x := open()
	sess := x.NewSession()
	if err := x.OnDisconnect(sess, hub.DisconnectWrite{Key: "/st/x", Value: []byte(`"gone"`)}); err != nil {
		t.Fatal(err)
	}
	x.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	resp, err := cli.Get(ctx, prefix+"k!", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("x's marker: %v %+v", err, resp)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	y := open()
	s := confSubscribe(t, y, "/st/", hub.SubscribeOptions{Snapshot: true})
	for _, e := range s.sub.TestInitial() {
		if e.Key == "/st/x" && string(e.Value) == `"gone"` {
			return
		}
	}
	e := s.next()
	if e.Key != "/st/x" || string(e.Value) != `"gone"` || e.Reason != hub.ReasonNodeLost {
		t.Fatalf("event %+v, want x's on-disconnect write with reason node_lost", e)
	}
}

// TestEtcdHistoryAfterBookkeeping: a history read waits for the store's seq to be delivered; the
// revisions of this node's reason marker (at start) and of an on-disconnect registration carry no
// event, and the read must not wait for one. On a fake clock a wait for an event that never comes
// would never end (its bound, resumeWait, is on the clock): the deadline here only guards
// against that hang. An etcd of its own: the other tests' revisions on the shared one are
// outside this node's prefix, and a read waits for them.
func TestEtcdHistoryAfterBookkeeping(t *testing.T) {
	t.Parallel()
	endpoints := ownEtcd(t)
	clock := fakeclock.New(t0)
	h := openEtcdHub(t, hub.Config{Clock: clock}, hub.EtcdConfig{Endpoints: endpoints})
	read := func(what string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { _, err := h.History("/x", 0, 10); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("History %s: %v", what, err)
			}
		case <-time.After(confDeadline):
			t.Fatalf("History %s waits for an event that never comes", what)
		}
	}
	read("after the node started")
	if err := h.OnDisconnect(h.NewSession(), hub.DisconnectWrite{Key: "/y", Value: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	read("after an on-disconnect registration")
}
