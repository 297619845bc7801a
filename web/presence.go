package web

import (
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// Presence on the wire (PROTOCOL.md, "Presence"): an ephemeral key's entries and events carry
// "presence": {"sub", "conn"}, its owner's token subject (absent when the principal has none) and
// connection id; a departure's delete event carries "reason". Plain keys' shapes are unchanged.

// PresenceJSON is an ephemeral key's owner as listings, answers and events show it.
type PresenceJSON struct {
	Sub  string `json:"sub,omitempty"`
	Conn string `json:"conn"`
}

func presenceJSON(p *hub.Presence) *PresenceJSON {
	if p == nil {
		return nil
	}
	return &PresenceJSON{Sub: p.Sub, Conn: p.Conn}
}

// appendPresenceFields appends an event's ,"presence":{...} and ,"reason":"..." (each only when
// set) to a JSON object being written.
func appendPresenceFields(b []byte, e *hub.Event) []byte {
	if p := e.Presence; p != nil {
		b = append(b, `,"presence":{`...)
		if p.Sub != "" {
			b = append(b, `"sub":`...)
			b = appendJSONString(b, p.Sub)
			b = append(b, ',')
		}
		b = append(b, `"conn":`...)
		b = appendJSONString(b, p.Conn)
		b = append(b, '}')
	}
	if e.Reason != "" {
		b = append(b, `,"reason":"`...)
		b = append(b, e.Reason...)
		b = append(b, '"')
	}
	return b
}

// deleteData is the data of an SSE delete event: null, or for an ephemeral key's delete an
// object with its presence and reason.
func deleteData(e *hub.Event) []byte {
	if e.Presence == nil && e.Reason == "" {
		return []byte("null")
	}
	b := appendPresenceFields([]byte{'{'}, e)
	b[1] = '{' // drop the first field's comma: the object begins with it
	return append(b[1:], '}')
}

// Headers of a GET of an ephemeral key: its presence (the subject percent-encoded, as a header
// holds only ASCII).
const (
	hdrPresenceConn = "X-Presence-Conn"
	hdrPresenceSub  = "X-Presence-Sub"
)

func setPresenceHeaders(c echo.Context, p *hub.Presence) {
	if p == nil {
		return
	}
	h := c.Response().Header()
	h.Set(hdrPresenceConn, p.Conn)
	if p.Sub != "" {
		h.Set(hdrPresenceSub, url.PathEscape(p.Sub))
	}
}
