package hub

import (
	"crypto/rand"
	"encoding/base64"
	"unicode/utf8"
)

// Presence names the owner of an ephemeral key: the subject of the token its connection wrote
// it with ("" when that principal has none: an open server, anonymous grants, the admin token)
// and the connection's id (Session.Conn). It is persisted with the key (the journal, snapshots,
// etcd), so every node and every restart shows the same owner. Entries and events of ephemeral
// keys carry it; those of plain keys carry nil.
type Presence struct {
	Sub  string
	Conn string
}

// Why an ephemeral key left: the Reason of its delete event (and "replaced" on the set event of
// a key taken over from another connection). A delete that is not an ephemeral key's departure
// (a client's delete, a TTL expiry) has no reason.
const (
	// ReasonClosed: the connection ended with a close handshake (the client closed the socket,
	// or the server closed it: a slow consumer, an expired or refused token), and did not come
	// back within the grace period.
	ReasonClosed = "closed"
	// ReasonTimeout: the connection was lost without a close handshake (a read error, a ping left
	// unanswered), and did not come back within the grace period.
	ReasonTimeout = "timeout"
	// ReasonNodeLost: the server that held the connection went away: in a cluster, its etcd
	// lease ended (the node died or was cut off); in the single binary, the key was found at
	// start-up, orphaned by a restart, and deleted one grace period later.
	ReasonNodeLost = "node_lost"
	// ReasonReplaced: a write from another connection (an ephemeral write, which takes the key
	// over, or a plain write, which makes it an ordinary key) replaced the owner's value. It is
	// on that write's set event; the key does not go away.
	ReasonReplaced = "replaced"
)

// reasons numbers the reasons for the history ring, which keeps one byte per event; 0 is none.
var reasons = [...]string{"", ReasonClosed, ReasonTimeout, ReasonNodeLost, ReasonReplaced}

func reasonCode(r string) uint8 {
	for i, s := range reasons {
		if s == r {
			return uint8(i)
		}
	}
	return 0
}

// MaxPresenceSub is the longest subject a presence keeps, in bytes: a longer one is cut, at a
// character boundary.
const MaxPresenceSub = 256

// newPresence returns the presence of a write by sub through s; nil without a session.
func newPresence(s *Session, sub string) *Presence {
	if s == nil {
		return nil
	}
	return makePresence(sub, s.conn)
}

// makePresence returns a presence with sub cut to MaxPresenceSub bytes and conn to 255, at
// character boundaries: what the history ring's encoding holds.
func makePresence(sub, conn string) *Presence {
	return &Presence{Sub: cutString(sub, MaxPresenceSub), Conn: cutString(conn, 255)}
}

func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// conn returns p's connection id; "" for nil.
func (p *Presence) conn() string {
	if p == nil {
		return ""
	}
	return p.Conn
}

// size is the length of p's encoding (appendPresence), what it adds to an event's bytes in
// queues and the history ring.
func (p *Presence) size() int {
	if p == nil {
		return 0
	}
	return 1 + min(len(p.Conn), 255) + len(p.Sub)
}

// appendPresence encodes p for the history ring: the length of Conn in one byte (a connection id
// is short: a longer one is cut), Conn, then Sub. Nil encodes as nothing.
func appendPresence(b []byte, p *Presence) []byte {
	if p == nil {
		return b
	}
	conn := p.Conn[:min(len(p.Conn), 255)]
	b = append(b, byte(len(conn)))
	b = append(b, conn...)
	return append(b, p.Sub...)
}

// parsePresence decodes appendPresence's bytes; nil for none.
func parsePresence(b []byte) *Presence {
	if len(b) == 0 || int(b[0]) > len(b)-1 {
		return nil
	}
	n := int(b[0])
	return &Presence{Conn: string(b[1 : 1+n]), Sub: string(b[1+n:])}
}

// newConnID returns a random connection id: 16 characters of base64url (96 bits).
func newConnID() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
