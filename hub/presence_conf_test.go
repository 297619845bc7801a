package hub_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// confPresenceEvent checks an event's presence and reason.
func confPresenceEvent(t *testing.T, e hub.Event, key string, deleted bool, pres *hub.Presence, reason string) {
	t.Helper()
	if e.Key != key || e.Deleted != deleted || fmt.Sprint(e.Presence) != fmt.Sprint(pres) || e.Reason != reason {
		t.Fatalf("event %s deleted %v presence %+v reason %q; want %s deleted %v presence %+v reason %q",
			e.Key, e.Deleted, e.Presence, e.Reason, key, deleted, pres, reason)
	}
}

// confPresence: an ephemeral key's entry, listing and events carry its owner (subject and
// connection); a write from another connection says "replaced"; a departure's delete event says
// why the connection ended (closed, timeout) and who left; a client's own delete has no reason;
// a resume replays the same presences and reasons.
func confPresence(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	const grace = 10 * time.Second
	h := mk(hub.Config{Clock: clock, EphemeralGrace: grace})
	eph := func(key string, s *hub.Session, sub string) hub.Result {
		t.Helper()
		return must(h.Set(key, []byte(`{"here":true}`), hub.Cond{}, hub.WriteOptions{Session: s, Subject: sub}))
	}
	s1, s2 := h.NewSession(), h.NewSession()
	if s1.Conn() == s2.Conn() || len(s1.Conn()) != 16 {
		t.Fatalf("connection ids %q and %q: want two different ids of 16 characters", s1.Conn(), s2.Conn())
	}
	ann := &hub.Presence{Sub: "ann", Conn: s1.Conn()}
	bob := &hub.Presence{Sub: "bob", Conn: s2.Conn()}
	start := set(t, h, "/pr/start", `0`)
	eph("/pr/a", s1, "ann")
	if e := confEntry(t, h, "/pr/a"); fmt.Sprint(e.Presence) != fmt.Sprint(ann) {
		t.Fatalf("entry presence %+v, want %+v", e.Presence, ann)
	}
	if e := confEntry(t, h, "/pr/start"); e.Presence != nil {
		t.Fatalf("a plain key has presence %+v", e.Presence)
	}
	page := must(h.List("/pr/", hub.ListOptions{}))
	if len(page.Entries) != 2 || fmt.Sprint(page.Entries[0].Presence) != fmt.Sprint(ann) || page.Entries[1].Presence != nil {
		t.Fatalf("listing %+v", page.Entries)
	}
	s := confSubscribe(t, h, "/pr/", hub.SubscribeOptions{})

	eph("/pr/a", s1, "ann") // the owner again: no reason
	confPresenceEvent(t, s.next(), "/pr/a", false, ann, "")
	eph("/pr/a", s2, "bob") // taken over
	confPresenceEvent(t, s.next(), "/pr/a", false, bob, hub.ReasonReplaced)
	eph("/pr/b", s1, "ann")
	confPresenceEvent(t, s.next(), "/pr/b", false, ann, "")
	set(t, h, "/pr/b", `"plain"`) // a plain write replaces the owner too; the key is plain now
	confPresenceEvent(t, s.next(), "/pr/b", false, nil, hub.ReasonReplaced)
	eph("/pr/c", s1, "ann")
	confPresenceEvent(t, s.next(), "/pr/c", false, ann, "")
	eph("/pr/d", s1, "ann")
	confPresenceEvent(t, s.next(), "/pr/d", false, ann, "")
	must(h.Delete("/pr/d", hub.Cond{}, hub.WriteOptions{})) // a client's delete: who, but no reason
	confPresenceEvent(t, s.next(), "/pr/d", true, ann, "")

	s1.EndWith(hub.ReasonTimeout)
	clock.Advance(grace)
	confPresenceEvent(t, s.next(), "/pr/c", true, ann, hub.ReasonTimeout)
	s2.End()
	clock.Advance(grace)
	confPresenceEvent(t, s.next(), "/pr/a", true, bob, hub.ReasonClosed)
	s.quiet("/pr/marker", "after both grace periods")

	// A resume from before replays the same presences and reasons.
	r := confSubscribe(t, h, "/pr/", hub.SubscribeOptions{Since: &hub.Position{Seq: start.Seq, Key: "/pr/start"}})
	var got []string
	for _, e := range r.sub.Initial {
		got = append(got, fmt.Sprintf("%s %v %+v %q", e.Key, e.Deleted, e.Presence, e.Reason))
	}
	want := []string{
		fmt.Sprintf("/pr/a false %+v \"\"", ann),
		fmt.Sprintf("/pr/a false %+v \"\"", ann),
		fmt.Sprintf("/pr/a false %+v \"replaced\"", bob),
		fmt.Sprintf("/pr/b false %+v \"\"", ann),
		"/pr/b false <nil> \"replaced\"",
		fmt.Sprintf("/pr/c false %+v \"\"", ann),
		fmt.Sprintf("/pr/d false %+v \"\"", ann),
		fmt.Sprintf("/pr/d true %+v \"\"", ann),
		fmt.Sprintf("/pr/c true %+v \"timeout\"", ann),
		fmt.Sprintf("/pr/a true %+v \"closed\"", bob),
		"/pr/marker false <nil> \"\"",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("resume replays\n%v\nwant\n%v", got, want)
	}
}
