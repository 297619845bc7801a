package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/tidwall/btree"
)

// A snapshot is the whole state at one seq. The same format is the on-disk snapshot and the first
// part of the backup that GET /.snapshot streams (WriteBackup; backup.go describes the blob section
// that follows it there):
//
//	"STATEHUB-SNAPSHOT-3\n"   magic, 20 bytes
//	uvarint  seq
//	uvarint  number of entries, then each, in key order:
//	  string key, varint revision, uvarint seq, varint expires (Unix ns, 0 = none), string value,
//	  byte flags (the commit record's: 4 ephemeral, 8 file type, 16 lock, 32 presence), then string
//	  content type (flag 8), string lock token hash (flag 16), and string presence sub and string
//	  presence conn (flag 32)
//	uvarint  number of idempotency records, then each as in a commit record
//	uint32   CRC32C (Castagnoli) of everything before it, little endian
//
// Strings are a uvarint length and the bytes. Version 2 ("STATEHUB-SNAPSHOT-2\n") is the same
// without flag 32, version 1 ("STATEHUB-SNAPSHOT-1\n") without the flags byte and what follows
// it; both are still read.
const (
	snapshotMagic   = "STATEHUB-SNAPSHOT-3\n"
	snapshotMagicV2 = "STATEHUB-SNAPSHOT-2\n"
	snapshotMagicV1 = "STATEHUB-SNAPSHOT-1\n"
)

// ErrBadSnapshot reports a snapshot or backup that is truncated, fails its checksum or does not
// parse, a stored file whose bytes fail their sha256, or a backup that lacks a file it refers to.
var ErrBadSnapshot = errors.New("hub: bad snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frozen is a consistent view of the state, taken under the lock in O(1) for the tree (a
// copy-on-write copy), so a snapshot is written while writers go on. Etcd's backup has no tree:
// pages reads its n items, in key order, a page at a time.
type frozen struct {
	seq  uint64
	tree *btree.BTreeG[item]
	idem []IdemRecord

	n     int
	pages func(fn func(item) bool) error
}

// len returns the number of items.
func (f frozen) len() int {
	if f.tree != nil {
		return f.tree.Len()
	}
	return f.n
}

// scan calls fn on every item in key order until it returns false.
func (f frozen) scan(fn func(item) bool) error {
	if f.tree != nil {
		f.tree.Scan(fn)
		return nil
	}
	return f.pages(fn)
}

func (h *Local) freeze() frozen {
	h.mu.Lock() // not RLock: tree.Copy writes the tree's copy-on-write id
	defer h.mu.Unlock()
	f := frozen{seq: h.seq, tree: h.tree.Copy(), idem: make([]IdemRecord, 0, len(h.idem))}
	for _, r := range h.idem {
		f.idem = append(f.idem, r)
	}
	return f
}

// writeSnapshot writes a consistent snapshot of the whole state to w, without the bytes of stored
// files: the plain form Restore also reads. Backups use WriteBackup, which adds them. Writers are
// not held up while it streams. It returns the snapshot's seq.
func (h *Local) writeSnapshot(w io.Writer) (uint64, error) {
	f := h.freeze()
	if err := h.waitDurable(f.seq); err != nil {
		return 0, err
	}
	return f.seq, f.write(w)
}

func (f frozen) write(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	var scratch []byte
	put := func(b []byte) {
		bw.Write(b)
		scratch = b[:0]
	}
	put(append(scratch, snapshotMagic...))
	scratch = binary.AppendUvarint(scratch, f.seq)
	put(binary.AppendUvarint(scratch, uint64(f.len())))
	n := 0
	err := f.scan(func(it item) bool {
		n++
		e := it.entry()
		b := appendString(scratch, e.Key)
		b = binary.AppendVarint(b, e.Revision)
		b = binary.AppendUvarint(b, e.Seq)
		var exp int64
		if !e.Expires.IsZero() {
			exp = e.Expires.UnixNano()
		}
		b = binary.AppendVarint(b, exp)
		b = appendString(b, e.Value)
		var flags byte
		if e.Ephemeral {
			flags |= 4
		}
		if e.Type != "" {
			flags |= 8
		}
		if e.lock != "" {
			flags |= 16
		}
		if e.Ephemeral && e.Presence != nil {
			flags |= 32
		}
		b = append(b, flags)
		if flags&8 != 0 {
			b = appendString(b, e.Type)
		}
		if flags&16 != 0 {
			b = appendString(b, e.lock)
		}
		if flags&32 != 0 {
			b = appendString(b, e.Presence.Sub)
			b = appendString(b, e.Presence.Conn)
		}
		put(b)
		return true
	})
	if err != nil {
		return err
	}
	if n != f.len() {
		return fmt.Errorf("hub: the state changed while it was written: %d items of %d", n, f.len())
	}
	put(binary.AppendUvarint(scratch, uint64(len(f.idem))))
	for i := range f.idem {
		put(appendIdem(scratch, &f.idem[i]))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

// decodeSnapshot parses and verifies a whole snapshot. A value that is not valid UTF-8, as a
// version before CheckUTF8 could write, is repaired (repairUTF8).
func decodeSnapshot(data []byte) (frozen, error) {
	var f frozen
	v1 := bytes.HasPrefix(data, []byte(snapshotMagicV1))
	v2 := bytes.HasPrefix(data, []byte(snapshotMagicV2))
	if len(data) < len(snapshotMagic)+4 || !bytes.HasPrefix(data, []byte(snapshotMagic)) && !v1 && !v2 {
		return f, fmt.Errorf("%w: no snapshot header", ErrBadSnapshot)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return f, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	r := reader{b: body[len(snapshotMagic):]}
	f.seq = r.uvarint()
	n := r.count(5)
	items := make([]Entry, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		e := Entry{Key: r.string(), Revision: r.varint(), Seq: r.uvarint()}
		if exp := r.varint(); exp != 0 {
			e.Expires = time.Unix(0, exp)
		}
		e.Value = repairUTF8([]byte(r.string()))
		if !v1 {
			flags := r.byte()
			e.Ephemeral = flags&4 != 0
			if flags&8 != 0 {
				e.Type = r.string()
			}
			if flags&16 != 0 {
				e.lock = r.string()
			}
			if flags&32 != 0 && !v2 {
				if p := makePresence(r.string(), r.string()); e.Ephemeral {
					e.Presence = p
				}
			}
		}
		if len(items) > 0 && items[len(items)-1].Key >= e.Key {
			return f, fmt.Errorf("%w: entries out of order at %q", ErrBadSnapshot, e.Key)
		}
		items = append(items, e)
	}
	m := r.count(8)
	for i := 0; i < m && r.err == nil; i++ {
		f.idem = append(f.idem, *r.idem())
	}
	if r.err != nil {
		return f, fmt.Errorf("%w: %v", ErrBadSnapshot, r.err)
	}
	if len(r.b) != 0 {
		return f, fmt.Errorf("%w: %d bytes after the last record", ErrBadSnapshot, len(r.b))
	}
	f.tree = newTree()
	// Every other entry first, then the rest: appending sorted entries alone splits each full node
	// in half and leaves it so, and the second pass fills those halves (go run ./bench/startup:
	// the heap from a snapshot).
	for i := 0; i < len(items); i += 2 {
		f.tree.Load(itemOf(&items[i]))
	}
	for i := 1; i < len(items); i += 2 {
		f.tree.Set(itemOf(&items[i]))
	}
	return f, nil
}

// load replaces the state with a snapshot's (at Open, before any write or subscription) and
// starts the feed at its seq.
func (h *Local) load(f frozen) {
	h.mu.Lock()
	h.loadLocked(f)
	h.mu.Unlock()
	h.feed.Start(f.seq)
}

// loadLocked replaces the state with a snapshot's. The history starts empty at the snapshot's seq.
func (h *Local) loadLocked(f frozen) {
	h.tree, h.seq = f.tree, f.seq
	h.expiry = h.expiry[:0]
	clear(h.blobRefs)
	h.tree.Scan(func(it item) bool {
		if exp := it.expires(); !exp.IsZero() {
			h.expiry.push(deadline{at: exp, key: it.key})
		}
		h.refBlobLocked(it.typ(), it.value())
		if it.ephemeral() {
			h.orphanLocked(it.key) // no session survives a restart
		}
		return true
	})
	clear(h.idem)
	for _, r := range f.idem {
		h.idem[r.Key] = r
		h.expiry.push(deadline{at: r.Expires, idem: r.Key})
	}
	h.durable.Store(f.seq)
}
