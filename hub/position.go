package hub

import (
	"fmt"
	"strconv"
	"strings"
)

// Position is a place in the global event order. Events are ordered by (Seq, Key): one commit may
// change several keys, and its events share the seq and come in key order.
//
// A position covers every event before it: all events of lower seqs and, when Key is set, the events
// of seq Seq whose key sorts at or before Key. With Key empty it covers all of seq Seq. A Snapshot
// position was taken part-way through a snapshot and cannot be resumed from.
type Position struct {
	Seq      uint64
	Key      string
	Snapshot bool
}

// Covers reports whether the event (seq, key) is at or before p.
func (p Position) Covers(seq uint64, key string) bool {
	return seq < p.Seq || seq == p.Seq && (p.Key == "" || key <= p.Key)
}

// EventID formats the id of an event: "key:revision:seq", with ":s" for a snapshot entry.
func EventID(key string, revision int64, seq uint64, snapshot bool) string {
	id := key + ":" + strconv.FormatInt(revision, 10) + ":" + strconv.FormatUint(seq, 10)
	if snapshot {
		id += ":s"
	}
	return id
}

// ParsePosition parses a position string: "seq", "key:revision:seq" or "key:revision:seq:s".
// Keys cannot hold a colon, so the split is unambiguous.
func ParsePosition(s string) (Position, error) {
	parts := strings.Split(s, ":")
	bad := func(why string) (Position, error) {
		return Position{}, fmt.Errorf("%w: %q: %s", ErrInvalidPosition, s, why)
	}
	switch len(parts) {
	case 1:
		seq, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			return bad("seq is not a number")
		}
		return Position{Seq: seq}, nil
	case 3, 4:
		if len(parts) == 4 && parts[3] != "s" {
			return bad("the fourth field must be s")
		}
		if !strings.HasPrefix(parts[0], "/") || len(parts[0]) < 2 {
			return bad("key must start with /")
		}
		if _, err := strconv.ParseInt(parts[1], 10, 64); err != nil {
			return bad("revision is not a number")
		}
		seq, err := strconv.ParseUint(parts[2], 10, 64)
		if err != nil {
			return bad("seq is not a number")
		}
		return Position{Seq: seq, Key: parts[0], Snapshot: len(parts) == 4}, nil
	}
	return bad("want seq or key:revision:seq")
}
