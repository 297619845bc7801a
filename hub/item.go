package hub

import (
	"time"
	"unsafe"

	"github.com/tidwall/btree"
)

// item is how the tree holds a key's entry: the fields every key has, and the rare ones behind a
// pointer that is nil for a plain JSON value without a TTL, so such a key holds no room for them.
// The key and the value share one allocation, the value's vlen bytes right after the key's (see
// newItem), so an item is 48 bytes and a key one allocation (BenchmarkMemoryPerKey).
type item struct {
	key      string
	vlen     int
	revision int64
	seq      uint64
	rare     *rareFields
}

// rareFields are the fields of an entry that most keys leave zero. They are never changed once in
// the tree: copies of the tree (snapshots, streams) share them.
type rareFields struct {
	expires   time.Time
	typ       string
	lock      string
	ephemeral bool
	presence  *Presence
	owner     *Session
}

func newTree() *btree.BTreeG[item] {
	return btree.NewBTreeGOptions(func(a, b item) bool { return a.key < b.key }, btree.Options{NoLocks: true})
}

// newItem returns an item holding a copy of key and value, with a pointer to r only when r is not
// all zero.
func newItem(key string, value []byte, revision int64, seq uint64, r rareFields) item {
	kv := key + string(value)
	it := item{key: kv[:len(key)], vlen: len(value), revision: revision, seq: seq}
	if r != (rareFields{}) {
		// A copy made here, not &r, so a plain value's write allocates no r (BenchmarkSet's
		// allocs/op).
		p := new(rareFields)
		*p = r
		it.rare = p
	}
	return it
}

// value returns the item's value: the bytes after its key in their allocation (newItem), shared,
// never to be changed, as the items of the tree are not. Nil for an item made only for a lookup.
func (it *item) value() []byte {
	if it.vlen == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(it.key)), len(it.key))), it.vlen)
}

// itemOf returns e as the tree holds it.
func itemOf(e *Entry) item {
	return newItem(e.Key, e.Value, e.Revision, e.Seq, rareFields{e.Expires, e.Type, e.lock, e.Ephemeral, e.Presence, e.owner})
}

// entry returns it as an Entry.
func (it *item) entry() Entry {
	e := Entry{Key: it.key, Value: it.value(), Revision: it.revision, Seq: it.seq}
	if r := it.rare; r != nil {
		e.Expires, e.Type, e.lock, e.Ephemeral, e.Presence, e.owner = r.expires, r.typ, r.lock, r.ephemeral, r.presence, r.owner
	}
	return e
}

func (it *item) expires() time.Time {
	if it.rare == nil {
		return time.Time{}
	}
	return it.rare.expires
}

// typ is the content type of a stored file; "" for JSON.
func (it *item) typ() string {
	if it.rare == nil {
		return ""
	}
	return it.rare.typ
}

// lock is the token hash of a held lock; "" when the key is not a lock.
func (it *item) lock() string {
	if it.rare == nil {
		return ""
	}
	return it.rare.lock
}

func (it *item) ephemeral() bool { return it.rare != nil && it.rare.ephemeral }

// presence is an ephemeral key's owner; nil for other keys.
func (it *item) presence() *Presence {
	if it.rare == nil {
		return nil
	}
	return it.rare.presence
}

func (it *item) owner() *Session {
	if it.rare == nil {
		return nil
	}
	return it.rare.owner
}

// item returns the entry a change that is not a delete leaves, committed at seq.
func (ch *Change) item(seq uint64) item {
	return newItem(ch.Key, ch.Value, ch.Revision, seq, rareFields{ch.Expires, ch.Type, ch.lock, ch.Ephemeral, ch.Presence, ch.owner})
}
