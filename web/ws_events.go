package web

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/statehub/statehub/hub"
)

// WebSocket subscriptions' events (PROTOCOL.md, "WebSocket", events). The connection's writer
// (runWriter) alone writes them: its subscriptions wake it (wake), and it takes each one's queued
// events and writes them, so an event goes from the hub's queue to the socket with no goroutine
// in between. A live change is encoded once for every socket
// (hub.Event.AppendEncoded); each message adds only its subscription's id in front.
//
// A subscription starts when the writer meets its start in the outgoing queue, after the answers
// queued before it: the sub's answer, then its reset, replay or snapshot and ready; from then on
// each time the writer runs, its live events. It ends with a close event when the hub closes it
// (slow, shutdown) or reauth ends it; after an unsub nothing more of it is written.

// startSub queues the answer of sub request and, behind it, the start of sb's events.
func (c *wsConn) startSub(sb *wsSub, answer wsAnswer) {
	b, err := answer.appendJSON(nil)
	if err != nil { // cannot happen: every field is already valid JSON
		c.s.log.Error("encoding a websocket answer", "err", err)
		return
	}
	c.queue(wsOut{body: b, start: sb})
}

// begin writes the start of sb's events and makes it active. Only the writer calls it.
func (c *wsConn) begin(sb *wsSub) error {
	hs := sb.hs
	if hs.Reset {
		c.scratch = appendMark(c.scratch[:0], sb.id, "reset", hs.Start)
		if err := c.writeMsg(c.scratch); err != nil {
			return err
		}
	}
	initial := hs.Initial                           // a replay
	sb.th = newThrottle(c.s.cfg.Clock, sb.throttle) // nil for an unthrottled sub (throttle.go)
	if sb.th != nil {
		sb.th.wake = c.wake
		initial = coalesce(initial)
	}
	if err := c.writeEvents(sb, initial); err != nil {
		return err
	}
	sent := len(initial)
	// A snapshot or reset: read page by page, never whole in memory.
	for {
		var err error
		c.taken, err = hs.NextEntries(c.taken[:0])
		if err != nil { // the store lost the state it fixed: the client subscribes again
			sb.th.Stop()
			hs.Close()
			c.mu.Lock()
			if c.subs[string(sb.id)] == sb {
				delete(c.subs, string(sb.id))
			}
			c.mu.Unlock()
			return c.writeMsg([]byte(`{"sub":` + string(sb.id) + `,"type":"close","reason":"` + disconnectFor(err).reason + `"}`))
		}
		if len(c.taken) == 0 {
			break
		}
		sent += len(c.taken)
		err = c.writeEvents(sb, c.taken)
		clear(c.taken)
		if err != nil {
			return err
		}
	}
	sb.th.started(sent)
	c.scratch = appendMark(c.scratch[:0], sb.id, "ready", hs.Start)
	if err := c.writeMsg(c.scratch); err != nil {
		return err
	}
	c.active = append(c.active, sb)
	return nil
}

// writeSubs writes what every active subscription has queued, and the close event of those the
// hub has closed. Only the writer calls it.
func (c *wsConn) writeSubs() error {
	for i := 0; i < len(c.active); {
		sb := c.active[i]
		ended, err := c.writeSub(sb)
		if err != nil {
			return err
		}
		if ended {
			sb.th.Stop()
			c.active = slices.Delete(c.active, i, i+1)
			continue
		}
		i++
	}
	return nil
}

// writeSub writes sb's queued events (a throttled sub's due ones) and reports whether it has
// ended.
func (c *wsConn) writeSub(sb *wsSub) (ended bool, err error) {
	hs, th := sb.hs, sb.th
	c.mu.Lock()
	gone := sb.ended.reason == "" && c.subs[string(sb.id)] != sb
	c.mu.Unlock()
	if gone { // unsubscribed: nothing more of it after the unsub's answer
		return true, nil
	}
	if th != nil {
		select {
		case <-th.C():
			c.due = th.flush(c.due[:0], false)
			err := c.writeEvents(sb, c.due)
			clear(c.due)
			if err != nil {
				return false, err
			}
		default:
		}
	}
	batch, done := hs.Take(c.taken[:0])
	c.taken = batch
	var d disconnect
	if done {
		if err := hs.Err(); err != nil {
			d = disconnectFor(err)
		} else {
			c.mu.Lock()
			d = sb.ended
			c.mu.Unlock()
		}
	}
	if th != nil {
		c.due = th.add(c.due[:0], batch)
		clear(batch)
		if done && d.reason != "" {
			c.due = th.flush(c.due, true)
		}
		batch = c.due
	}
	err = c.writeEvents(sb, batch)
	clear(batch)
	if err != nil || !done {
		return false, err
	}
	if d.reason == "" {
		return true, nil // the connection is closing (token expiry): no close event
	}
	c.mu.Lock()
	if c.subs[string(sb.id)] == sb {
		delete(c.subs, string(sb.id))
	}
	c.mu.Unlock()
	return true, c.writeMsg([]byte(`{"sub":` + string(sb.id) + `,"type":"close","reason":"` + d.reason + `"}`))
}

func (c *wsConn) writeEvents(sb *wsSub, events []hub.Event) error {
	for i := range events {
		if err := c.writeEvent(sb, &events[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeEvent writes a change or snapshot entry of sb.
func (c *wsConn) writeEvent(sb *wsSub, e *hub.Event) error {
	c.scratch = e.AppendEncoded(append(append(c.scratch[:0], `{"sub":`...), sb.id...), encWS, appendWSEvent)
	return c.writeMsg(c.scratch)
}

// The encodings of an event the transports share (hub.Event.AppendEncoded).
const (
	encSSE = iota // an SSE event (appendSSEEvent)
	encWS         // a WebSocket event after its "sub" (appendWSEvent)
)

// appendEvent encodes a change or snapshot entry of subscription sub.
func appendEvent(b []byte, sub json.RawMessage, e hub.Event) []byte {
	b = append(b, `{"sub":`...)
	b = append(b, sub...)
	return appendWSEvent(b, &e)
}

// appendWSEvent encodes a change, a snapshot entry or a broadcast after the "sub" field that
// starts a subscription's event: the part every subscription of the event shares.
func appendWSEvent(b []byte, e *hub.Event) []byte {
	if e.Broadcast {
		return appendWSBroadcast(b, e)
	}
	if e.Deleted {
		b = append(b, `,"type":"delete","key":`...)
	} else {
		b = append(b, `,"type":"set","key":`...)
	}
	b = appendJSONString(b, e.Key)
	if !e.Deleted {
		b = append(b, `,"value":`...)
		b = append(b, e.Value...)
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, e.Revision, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.Snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	b = appendPresenceFields(b, e)
	return append(b, '}')
}

// appendMark encodes a reset or ready event.
func appendMark(b []byte, sub json.RawMessage, typ string, seq uint64) []byte {
	b = append(b, `{"sub":`...)
	b = append(b, sub...)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Keys hold only letters, digits, "-", "_" and "/",
// which need no escaping; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
