package web

import (
	"encoding/json"
	"strconv"

	"github.com/statehub/statehub/hub"
)

// WebSocket subscriptions' events: each subscription's pump encodes its events, once each, into
// the connection's queue (PROTOCOL.md, "WebSocket", events).

// pump moves one subscription's events into the connection's queue, in order.
func (c *wsConn) pump(key string, sb *wsSub) {
	defer c.wg.Done()
	defer close(sb.done)
	hs := sb.hs
	if hs.Reset && !c.send(appendMark(nil, sb.id, "reset", hs.Start)) {
		return
	}
	for _, e := range hs.Initial {
		if !c.send(appendEvent(nil, sb.id, e)) {
			return
		}
	}
	if !c.send(appendMark(nil, sb.id, "ready", hs.Start)) {
		return
	}
	for e, ok := hs.Next(); ok; e, ok = hs.Next() {
		if !c.send(appendEvent(nil, sb.id, e)) {
			return
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

// appendEvent encodes a change or snapshot entry of subscription sub.
func appendEvent(b []byte, sub json.RawMessage, e hub.Event) []byte {
	b = append(b, `{"sub":`...)
	b = append(b, sub...)
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
