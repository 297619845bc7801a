package hub

import (
	"github.com/tidwall/btree"
)

// Pages bound what Entries.Next returns at once.
const (
	PageEntries = 256       // entries in a page
	PageBytes   = 256 << 10 // keys and values in a page of Local's, past which only its first entry goes
)

// Entries reads the entries of a path as a store fixed them (Store.Snapshot), in key order, a
// page at a time, without any lock held: however large the subtree, a reader holds one page.
type Entries interface {
	// Next appends the next page of entries (snapshot events: Snapshot set) to buf, at most
	// PageEntries of them; it returns buf unchanged once every entry has been read. Only one
	// goroutine calls it.
	Next(buf []Event) ([]Event, error)
}

// treeEntries pages through a copy of Local's tree: the tree holds items never changed in place,
// so the copy stays as it was while the live tree goes on.
type treeEntries struct {
	tree *btree.BTreeG[item] // nil once every entry has been read
	path string
	from string // the first key of the next page
}

func (p *treeEntries) Next(buf []Event) ([]Event, error) {
	if p.tree == nil {
		return buf, nil
	}
	n, size, more := len(buf), 0, false
	p.tree.Ascend(item{key: p.from}, func(it item) bool {
		if !Covers(p.path, it.key) {
			return !IsPrefix(p.path) && it.key == p.path // a key: stop after it
		}
		if len(buf)-n >= PageEntries || size >= PageBytes && len(buf) > n {
			p.from, more = it.key, true
			return false
		}
		buf = append(buf, snapshotEvent(it))
		size += len(it.key) + it.vlen
		return IsPrefix(p.path)
	})
	if !more {
		p.tree = nil // the copy's nodes go as soon as the reader is done
	}
	return buf, nil
}

func snapshotEvent(it item) Event {
	return Event{Key: it.key, Value: it.value(), Revision: it.revision, Seq: it.seq, Snapshot: true, Type: it.typ(), Presence: it.presence()}
}

// errEntries is the Entries of a snapshot that failed: Next returns err.
type errEntries struct{ err error }

func (p errEntries) Next(buf []Event) ([]Event, error) { return buf, p.err }

// ReadAll reads every entry left in p, for readers that know the subtree is small (tests, tools).
func ReadAll(p Entries) ([]Event, error) {
	var out []Event
	for {
		n := len(out)
		var err error
		if out, err = p.Next(out); err != nil || len(out) == n {
			return out, err
		}
	}
}
