package hub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Commit records are what the hub writes into the log, one per commit. The log frames and
// checksums them; this is their payload, version 3:
//
//	byte     version (1, 2 or 3)
//	uvarint  seq
//	varint   time, Unix nanoseconds (the commit's Time; version 3 only)
//	uvarint  number of changes, then each change:
//	  string   key                      (uvarint length, bytes)
//	  byte     flags: 1 deleted, 2 expires, 4 ephemeral, 8 file type, 16 lock, 32 presence, 64 reason
//	  varint   revision
//	  varint   expires, Unix nanoseconds (when flag 2)
//	  string   value                    (unless deleted)
//	  string   content type             (when flag 8: a stored file; its value is the description)
//	  string   lock token hash          (when flag 16: the key is a held lock)
//	  string   presence sub, then string presence conn (when flag 32: an ephemeral key's owner)
//	  string   reason                   (when flag 64: why an ephemeral key left or changed hands)
//	byte     1 when an idempotency record follows, else 0:
//	  string key, string fingerprint, varint expires (Unix ns),
//	  string result key, varint result revision, uvarint result seq, string result value,
//	  uvarint result deleted count
//
// Version 2 is the same without the time, version 1 also without flags 32 and 64. A commit with
// a time (every commit Local makes) is written as version 3; one without, as the oldest version
// that holds it, so the versions before presences and reasons read it. A version refuses a newer
// record by its version instead of misreading it.
const (
	commitVersion1 = 1
	commitVersion2 = 2 // presences and reasons
	commitVersion  = 3 // the commit's time
)

var errShortRecord = errors.New("hub: truncated record")

// encodeCommit appends c's record to dst.
func encodeCommit(dst []byte, c *Commit) []byte {
	version := byte(commitVersion1)
	for i := range c.Changes {
		if c.Changes[i].Reason != "" || c.Changes[i].Presence != nil && c.Changes[i].Ephemeral && !c.Changes[i].Deleted {
			version = commitVersion2
		}
	}
	if !c.Time.IsZero() {
		version = commitVersion
	}
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, c.Seq)
	if version >= commitVersion {
		dst = binary.AppendVarint(dst, c.Time.UnixNano())
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Changes)))
	for _, ch := range c.Changes {
		dst = appendString(dst, ch.Key)
		var flags byte
		if ch.Deleted {
			flags |= 1
		}
		if !ch.Expires.IsZero() {
			flags |= 2
		}
		if ch.Ephemeral && !ch.Deleted {
			flags |= 4
		}
		if ch.Type != "" && !ch.Deleted {
			flags |= 8
		}
		if ch.lock != "" && !ch.Deleted {
			flags |= 16
		}
		if ch.Presence != nil && ch.Ephemeral && !ch.Deleted {
			flags |= 32
		}
		if ch.Reason != "" {
			flags |= 64
		}
		dst = append(dst, flags)
		dst = binary.AppendVarint(dst, ch.Revision)
		if flags&2 != 0 {
			dst = binary.AppendVarint(dst, ch.Expires.UnixNano())
		}
		if !ch.Deleted {
			dst = appendString(dst, ch.Value)
		}
		if flags&8 != 0 {
			dst = appendString(dst, ch.Type)
		}
		if flags&16 != 0 {
			dst = appendString(dst, ch.lock)
		}
		if flags&32 != 0 {
			dst = appendString(dst, ch.Presence.Sub)
			dst = appendString(dst, ch.Presence.Conn)
		}
		if flags&64 != 0 {
			dst = appendString(dst, ch.Reason)
		}
	}
	if c.Idem == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	return appendIdem(dst, c.Idem)
}

func appendIdem(dst []byte, r *IdemRecord) []byte {
	dst = appendString(dst, r.Key)
	dst = appendString(dst, r.Fingerprint)
	dst = binary.AppendVarint(dst, r.Expires.UnixNano())
	dst = appendString(dst, r.Result.Key)
	dst = binary.AppendVarint(dst, r.Result.Revision)
	dst = binary.AppendUvarint(dst, r.Result.Seq)
	dst = appendString(dst, r.Result.Value)
	return binary.AppendUvarint(dst, uint64(r.Result.Deleted))
}

func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeCommit parses a commit record. It never panics and never allocates more than the record
// holds: every length is checked against the bytes left first. A value that is not valid UTF-8, as
// a version before CheckUTF8 could write, is repaired (repairUTF8).
func decodeCommit(b []byte) (*Commit, error) {
	r := reader{b: b}
	v := r.byte()
	if (v < commitVersion1 || v > commitVersion) && r.err == nil {
		return nil, fmt.Errorf("hub: commit record version %d is not supported", v)
	}
	c := &Commit{Seq: r.uvarint()}
	if v >= commitVersion {
		c.Time = time.Unix(0, r.varint())
	}
	n := r.count(3) // a change takes at least 3 bytes
	if n > 0 {
		c.Changes = make([]Change, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		ch := Change{Key: r.string()}
		flags := r.byte()
		ch.Deleted = flags&1 != 0
		ch.Ephemeral = flags&4 != 0 && !ch.Deleted
		ch.Revision = r.varint()
		if flags&2 != 0 {
			ch.Expires = time.Unix(0, r.varint())
		}
		if !ch.Deleted {
			ch.Value = repairUTF8([]byte(r.string()))
		}
		if flags&8 != 0 {
			if typ := r.string(); !ch.Deleted {
				ch.Type = typ // a deleted key has no content type (the encoder never writes one)
			}
		}
		if flags&16 != 0 {
			if lock := r.string(); !ch.Deleted {
				ch.lock = lock // a deleted key holds no lock (the encoder never writes one)
			}
		}
		if v >= commitVersion2 {
			if flags&32 != 0 {
				p := makePresence(r.string(), r.string())
				if ch.Ephemeral {
					ch.Presence = p
				}
			}
			if flags&64 != 0 {
				ch.Reason = r.string()
			}
		}
		c.Changes = append(c.Changes, ch)
	}
	if r.byte() == 1 {
		c.Idem = r.idem()
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("hub: %d bytes after a commit record", len(r.b))
	}
	return c, nil
}

// reader decodes the primitives of commit and snapshot records; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errShortRecord
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of items each at least min bytes long, bounded by the bytes left.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) idem() *IdemRecord {
	rec := &IdemRecord{Key: r.string(), Fingerprint: r.string()}
	rec.Expires = time.Unix(0, r.varint())
	rec.Result.Key = r.string()
	rec.Result.Revision = r.varint()
	rec.Result.Seq = r.uvarint()
	if v := r.string(); v != "" {
		rec.Result.Value = []byte(v)
	}
	rec.Result.Deleted = int(r.uvarint())
	return rec
}
