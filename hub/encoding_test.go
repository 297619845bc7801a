package hub_test

import (
	"strconv"
	"testing"

	"github.com/statehub/statehub/hub"
)

// TestEncodedShared: a delivered change is encoded once per encoding number, and every
// subscription of it gets the same bytes; a snapshot entry is encoded on each call.
func TestEncodedShared(t *testing.T) {
	h := newHub(t, hub.Config{})
	set(t, h, "/enc/old", `1`)
	var subs []*hub.Subscription
	for _, path := range []string{"/enc/k", "/enc/", "/", "/enc/k"} {
		s, err := h.Subscribe(path, hub.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs = append(subs, s)
	}
	calls := [hub.EventEncodings]int{}
	enc := func(n int) func(b []byte, e *hub.Event) []byte {
		return func(b []byte, e *hub.Event) []byte {
			calls[n]++
			return append(b, strconv.Itoa(n)+":"+e.ID()+"="+string(e.Value)...)
		}
	}
	set(t, h, "/enc/k", `{"a":"b"}`)
	var first string
	for i, s := range subs {
		e, ok := s.Next()
		if !ok {
			t.Fatalf("subscription %d closed", i)
		}
		for n := range hub.EventEncodings {
			got := string(e.AppendEncoded([]byte("prefix "), n, enc(n)))
			if want := "prefix " + string(enc(n)(nil, &e)); got != want {
				t.Fatalf("subscription %d, encoding %d: %q, encoded alone %q", i, n, got, want)
			}
			calls[n]--                                                // the call that encoded it alone
			if string(e.Encoded(n, enc(n))) != got[len("prefix "):] { // Encoded gives the same bytes
				t.Fatalf("Encoded differs from AppendEncoded")
			}
		}
		if i == 0 {
			first = string(e.Encoded(0, enc(0)))
		} else if got := string(e.Encoded(0, enc(0))); got != first {
			t.Fatalf("subscription %d got %q, the first %q", i, got, first)
		}
	}
	if calls != [hub.EventEncodings]int{1, 1} {
		t.Fatalf("encoded %v times for %d subscriptions, want once per encoding", calls, len(subs))
	}

	snap, err := h.Subscribe("/enc/", hub.SubscribeOptions{Snapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	calls = [hub.EventEncodings]int{}
	for range 2 {
		for i := range snap.TestInitial() {
			snap.TestInitial()[i].Encoded(0, enc(0))
		}
	}
	if want := 2 * len(snap.TestInitial()); calls[0] != want || want == 0 {
		t.Fatalf("snapshot entries encoded %d times, want %d (each on every call)", calls[0], want)
	}
}
