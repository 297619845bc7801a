package web

import (
	"encoding/json"
	"strconv"

	"github.com/statehub/statehub/hub"
)

// WebSocket subscriptions' events: each subscription's pump moves its events into the connection's
// queue (PROTOCOL.md, "WebSocket", events). A live change is encoded once for every socket
// (hub.Event.AppendEncoded); each message adds only its subscription's id in front.

// pump moves one subscription's events into the connection's queue, in order.
func (c *wsConn) pump(key string, sb *wsSub) {
	defer c.wg.Done()
	defer close(sb.done)
	hs := sb.hs
	if hs.Reset && !c.send(appendMark(nil, sb.id, "reset", hs.Start)) {
		return
	}
	initial := hs.Initial
	th := newThrottle(c.s.cfg.Clock, sb.throttle) // nil for an unthrottled sub (throttle.go)
	defer th.Stop()
	if th != nil {
		initial = coalesce(initial)
		th.started(len(initial))
	}
	for _, e := range initial {
		if !c.sendEvent(sb, &e) {
			return
		}
	}
	if !c.send(appendMark(nil, sb.id, "ready", hs.Start)) {
		return
	}
	if th != nil {
		if !c.pumpThrottled(sb, th) {
			return
		}
	} else {
		for e, ok := hs.Next(); ok; e, ok = hs.Next() {
			if !c.sendEvent(sb, &e) {
				return
			}
		}
	}
	var d disconnect
	if err := hs.Err(); err != nil {
		d = disconnectFor(err)
	} else {
		c.mu.Lock()
		d = sb.ended
		c.mu.Unlock()
		if d.reason == "" {
			return // unsubscribed, or the connection is closing
		}
	}
	c.mu.Lock()
	if c.subs[key] == sb {
		delete(c.subs, key)
	}
	c.mu.Unlock()
	c.send([]byte(`{"sub":` + string(sb.id) + `,"type":"close","reason":"` + d.reason + `"}`))
}

// pumpThrottled is pump's live loop for a throttled sub; it returns once the subscription is
// closed and drained (true), or false when the connection took no more. The waiting events go
// out before a close event (slow consumer, shutdown), not after an unsub.
func (c *wsConn) pumpThrottled(sb *wsSub, th *throttle) bool {
	hs := sb.hs
	var batch, send []hub.Event
	for {
		var done bool
		select {
		case <-hs.Ready():
			batch, done = hs.Take(batch[:0])
			send = th.add(send[:0], batch)
			clear(batch)
			if done && hs.Err() != nil {
				send = th.flush(send, true)
			}
		case <-th.C():
			send = th.flush(send[:0], false)
		}
		for _, e := range send {
			if !c.sendEvent(sb, &e) {
				return false
			}
		}
		clear(send)
		if done {
			return true
		}
	}
}

// The encodings of an event the transports share (hub.Event.AppendEncoded).
const (
	encSSE = iota // an SSE event (appendSSEEvent)
	encWS         // a WebSocket event after its "sub" (appendWSEvent)
)

// sendEvent queues a change or snapshot entry of sb.
func (c *wsConn) sendEvent(sb *wsSub, e *hub.Event) bool {
	return c.queue(wsOut{sub: sb.id, body: e.Encoded(encWS, appendWSEvent)})
}

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
