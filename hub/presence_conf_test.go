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
	for _, e := range r.sub.TestInitial() {
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

// confOnDisconnect: a session's on-disconnect writes are made once it has ended for the grace
// period, as one commit whose events carry the reason it ended; a cancelled one is not, and a
// registration of the same key by another connection replaces it (the reload case); a write that
// cannot be made (a delete of an absent key) changes nothing; at most MaxDisconnectWrites per
// session; an ended session registers nothing.
func confOnDisconnect(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	const grace = 10 * time.Second
	h := mk(hub.Config{Clock: clock, EphemeralGrace: grace})
	s1, s2 := h.NewSession(), h.NewSession()
	reg := func(s *hub.Session, key, value string) {
		t.Helper()
		w := hub.DisconnectWrite{Key: key, Value: []byte(value), Delete: value == ""}
		if value == "" {
			w.Value = nil
		}
		if err := h.OnDisconnect(s, w); err != nil {
			t.Fatalf("OnDisconnect %s: %v", key, err)
		}
	}
	set(t, h, "/od/gone", `1`)
	must(h.Set("/od/here", []byte(`true`), hub.Cond{}, hub.WriteOptions{Session: s1, Subject: "ann"}))
	reg(s1, "/od/status", `"offline"`)
	reg(s1, "/od/gone", "")    // a delete
	reg(s1, "/od/absent", "")  // a delete of an absent key: nothing
	reg(s1, "/od/cancel", `1`) // cancelled below
	reg(s1, "/od/taken", `"s1"`)
	reg(s2, "/od/taken", `"s2"`) // replaces s1's
	if err := h.CancelDisconnect(s1, "/od/cancel"); err != nil {
		t.Fatal(err)
	}
	s := confSubscribe(t, h, "/od/", hub.SubscribeOptions{})
	s1.EndWith(hub.ReasonTimeout)
	if err := h.OnDisconnect(s1, hub.DisconnectWrite{Key: "/od/late", Value: []byte(`1`)}); err == nil {
		t.Fatal("an ended session registered an on-disconnect write")
	}
	clock.Advance(grace - time.Nanosecond)
	s.quiet("/od/marker", "within the grace period")
	clock.Advance(time.Nanosecond)
	got := map[string]hub.Event{}
	for range 3 {
		e := s.next()
		got[e.Key] = e
	}
	if e := got["/od/status"]; e.Deleted || string(e.Value) != `"offline"` || e.Reason != hub.ReasonTimeout || e.Presence != nil {
		t.Fatalf("/od/status: %+v, want the set with reason timeout", e)
	}
	if e := got["/od/gone"]; !e.Deleted || e.Reason != hub.ReasonTimeout {
		t.Fatalf("/od/gone: %+v, want the delete with reason timeout", e)
	}
	if e := got["/od/here"]; !e.Deleted || e.Reason != hub.ReasonTimeout || e.Presence == nil || e.Presence.Sub != "ann" {
		t.Fatalf("/od/here: %+v, want the ephemeral key's delete", e)
	}
	s.quiet("/od/marker", "after s1's writes")
	confAbsent(t, h, "/od/cancel")
	confAbsent(t, h, "/od/absent")
	confAbsent(t, h, "/od/taken")

	s2.End()
	clock.Advance(grace)
	e := s.next()
	if e.Key != "/od/taken" || string(e.Value) != `"s2"` || e.Reason != hub.ReasonClosed {
		t.Fatalf("event %+v, want s2's write of /od/taken with reason closed", e)
	}

	s3 := h.NewSession()
	for i := range hub.MaxDisconnectWrites {
		reg(s3, fmt.Sprintf("/od/many/%d", i), `1`)
	}
	reg(s3, "/od/many/0", `2`) // a registered key again is no new one
	if err := h.OnDisconnect(s3, hub.DisconnectWrite{Key: "/od/many/x", Value: []byte(`1`)}); err != hub.ErrTooManyDisconnectWrites {
		t.Fatalf("registration past the limit: %v, want ErrTooManyDisconnectWrites", err)
	}
	if err := h.CancelDisconnect(s3, ""); err != nil {
		t.Fatal(err)
	}
	s3.End()
	clock.Advance(grace)
	s.quiet("/od/marker", "after s3 cancelled everything")
}
