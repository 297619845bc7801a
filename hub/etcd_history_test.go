package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestEtcdHistoryBelowCompaction: a node started after a key's changes reads their history from
// etcd, with the writing node's times; once etcd has compacted, the pages reach down to the
// compaction and the page below it is 410 naming the oldest retained seq.
func TestEtcdHistoryBelowCompaction(t *testing.T) {
	t.Parallel()
	// An etcd of its own: the test compacts it, which would disturb the other tests' reads.
	endpoints := ownEtcd(t)
	clock := fakeclock.New(t0)
	open := func() *hub.Hub {
		return openEtcdHub(t, hub.Config{Clock: clock}, hub.EtcdConfig{Endpoints: endpoints, Prefix: "/hist/"})
	}
	a := open()
	var seqs []uint64
	for i := range 10 {
		clock.Advance(time.Minute)
		seqs = append(seqs, set(t, a, "/k", string(rune('0'+i))).Seq)
		set(t, a, "/other", `0`)
	}

	b := open() // its history starts after every write above
	page := must(b.History("/k", 0, 4))
	if len(page.Entries) != 4 || page.Entries[0].Seq != seqs[9] || page.Entries[3].Seq != seqs[6] || page.Before != seqs[6] {
		t.Fatalf("first page on a fresh node: %v, cursor %d", confEvents(page.Entries), page.Before)
	}
	for i, e := range page.Entries {
		if want := t0.Add(time.Duration(10-i) * time.Minute); !time.Unix(0, e.Time).Equal(want) {
			t.Fatalf("entry %d: time %v, want %v", i, time.Unix(0, e.Time).UTC(), want)
		}
	}
	all := must(b.History("/k", 0, 100))
	if len(all.Entries) != 10 || all.Before != 0 {
		t.Fatalf("the whole history: %d entries, cursor %d", len(all.Entries), all.Before)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Compact(context.Background(), int64(seqs[5])); err != nil {
		t.Fatal(err)
	}
	c := open()
	var got []hub.Event
	var before uint64
	for {
		page, err := c.History("/k", before, 3)
		var gone *hub.HistoryGoneError
		if errors.As(err, &gone) {
			if gone.Oldest != seqs[5]+1 || gone.Key != "/k" {
				t.Fatalf("below the compaction: %+v, want oldest %d", gone, seqs[5]+1)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Entries...)
		if page.Before == 0 {
			t.Fatalf("pages end without a 410 below etcd's compaction: %v", confEvents(got))
		}
		before = page.Before
	}
	// The changes after the compaction revision remain.
	if len(got) != 4 || got[0].Seq != seqs[9] || got[3].Seq != seqs[6] {
		t.Fatalf("history after compaction: %v", confEvents(got))
	}
}
