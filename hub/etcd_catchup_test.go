package hub_test

import (
	"context"
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/statehub/statehub/hub"
)

// TestEtcdResumeOnAFreshNode: a node started after a client's position resumes it from etcd
// (exactly the later changes, no reset), as long as etcd still holds them; once etcd has
// compacted past the position, the resume resets.
func TestEtcdResumeOnAFreshNode(t *testing.T) {
	t.Parallel()
	// An etcd of its own: the test compacts it, which would disturb the other tests' reads.
	endpoints := ownEtcd(t)
	prefix := "/catchup/"
	open := func() *hub.Hub {
		return openEtcdHub(t, hub.Config{}, hub.EtcdConfig{Endpoints: endpoints, Prefix: prefix})
	}
	a := open()
	first := set(t, a, "/r/a", `1`)
	set(t, a, "/other", `0`)
	second := set(t, a, "/r/b", `2`)
	third := must(a.Incr("/r/a", 5, hub.WriteOptions{}))

	b := open() // its history starts after every write above
	sub := must(b.Subscribe("/r/", hub.SubscribeOptions{Since: &hub.Position{Seq: first.Seq, Key: "/r/a"}}))
	defer sub.Close()
	if sub.Reset {
		t.Fatal("a resume etcd still holds reset on a fresh node")
	}
	want := []string{fmt.Sprintf("/r/b@%d", second.Seq), fmt.Sprintf("/r/a@%d", third.Seq)}
	var got []string
	for _, e := range sub.TestInitial() {
		got = append(got, fmt.Sprintf("%s@%d", e.Key, e.Seq))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if sub.TestInitial()[1].Revision != 1 || string(sub.TestInitial()[1].Value) != "6" {
		t.Errorf("replayed incr %+v, want revision 1 value 6", sub.TestInitial()[1])
	}

	// Compact past the position: the resume resets, with the current state.
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Compact(context.Background(), int64(third.Seq)); err != nil {
		t.Fatal(err)
	}
	c := open()
	sub2 := must(c.Subscribe("/r/", hub.SubscribeOptions{Since: &hub.Position{Seq: first.Seq, Key: "/r/a"}}))
	defer sub2.Close()
	if !sub2.Reset || len(sub2.TestInitial()) != 2 {
		t.Fatalf("a resume below etcd's compaction: reset %v, %d entries; want a reset with the 2 keys", sub2.Reset, len(sub2.TestInitial()))
	}
}
