package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/statehub/statehub/hub/wal"
)

// The disk store keeps the pending on-disconnect writes in a log of their own (<dir>/ondisconnect/,
// package wal, the data log's sync mode), so that the writes of the connections a restart ends are
// still made: every write found at start-up belongs to a connection of the process before, and is
// made one grace period later with ReasonNodeLost, unless a connection registers the key again
// first. Its records are JSON:
//
//	{"op":"set","key":K,"value":V}    a registration of a set (replacing any of K)
//	{"op":"set","key":K,"delete":true} a registration of a delete
//	{"op":"drop","key":K}             K has none any more (cancelled, or made)
//	{"op":"state","all":[...]}        every pending registration, as set records: the ones before
//	                                  it no longer count
//
// A registration is acknowledged once its record is durable; a drop is not waited for, so a
// crash right after a write was made may make it once more at the next start. Backups do not
// hold registrations.
type discJournal struct {
	log     *wal.Log
	index   uint64                     // the last record's
	pending map[string]DisconnectWrite // what the records say is registered now
	since   int                        // records since the last state record
	pruning atomic.Bool                // a RemoveBefore runs
	wg      sync.WaitGroup             // the RemoveBefore
}

// discRecord is one record of the journal.
type discRecord struct {
	Op     string          `json:"op"`
	Key    string          `json:"key,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
	Delete bool            `json:"delete,omitempty"`
	All    []discRecord    `json:"all,omitempty"`
}

// discSegmentSize keeps the journal's segments small, so that compaction frees their space soon.
const discSegmentSize = 4 << 20

// discCompactRecords is how many records the journal takes before a state record replaces them
// (and at least four times as many as are pending).
const discCompactRecords = 10_000

// openDiscJournal opens the journal in dir and returns it with the registrations it holds. A
// record the journal cannot read is an error naming it, as in the data log.
func openDiscJournal(dir string, opts wal.Options) (*discJournal, error) {
	opts.Dir, opts.SegmentSize = filepath.Join(dir, "ondisconnect"), discSegmentSize
	log, err := wal.Open(opts)
	if err != nil {
		return nil, err
	}
	j := &discJournal{log: log, pending: make(map[string]DisconnectWrite)}
	err = log.Replay(0, func(index uint64, data []byte) error {
		var r discRecord
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("hub: on-disconnect record %d: %w", index, err)
		}
		if err := j.apply(r); err != nil {
			return fmt.Errorf("hub: on-disconnect record %d: %w", index, err)
		}
		j.index = index
		j.since++
		return nil
	})
	if err == nil && j.since > 0 {
		// Start from one record of what is pending, and let the older segments go.
		err = j.compact().Wait()
	}
	if err != nil {
		log.Close()
		return nil, err
	}
	return j, nil
}

// apply brings pending up to r.
func (j *discJournal) apply(r discRecord) error {
	switch r.Op {
	case "set":
		w := DisconnectWrite{Key: r.Key, Delete: r.Delete}
		if !r.Delete {
			w.Value = r.Value
		}
		if r.Key == "" || r.Delete == (len(w.Value) > 0) {
			return fmt.Errorf("a set record needs a key and a value or delete: %+v", r)
		}
		j.pending[r.Key] = w
	case "drop":
		delete(j.pending, r.Key)
	case "state":
		clear(j.pending)
		for _, s := range r.All {
			if s.Op != "set" {
				return fmt.Errorf("a state record holds set records only, not %q", s.Op)
			}
			if err := j.apply(s); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	return nil
}

// set journals a registration and returns its ticket. Called under the hub's lock.
func (j *discJournal) set(w DisconnectWrite) *wal.Ticket {
	j.pending[w.Key] = w
	return j.append(setRecord(w))
}

// drop journals that key has no registration any more, when it had one. Called under the hub's
// lock.
func (j *discJournal) drop(key string) *wal.Ticket {
	if _, ok := j.pending[key]; !ok {
		return nil
	}
	delete(j.pending, key)
	return j.append(discRecord{Op: "drop", Key: key})
}

func setRecord(w DisconnectWrite) discRecord {
	if w.Delete {
		return discRecord{Op: "set", Key: w.Key, Delete: true}
	}
	return discRecord{Op: "set", Key: w.Key, Value: w.Value}
}

// append journals r, and replaces the journal by a state record once it has grown past
// discCompactRecords and four times what is pending.
func (j *discJournal) append(r discRecord) *wal.Ticket {
	t := j.write(r)
	j.since++
	if j.since >= discCompactRecords && j.since >= 4*len(j.pending) {
		t = j.compact()
	}
	return t
}

// compact appends a state record of what is pending and removes, aside, the segments before it.
// Its ticket covers every record before it too.
func (j *discJournal) compact() *wal.Ticket {
	all := make([]discRecord, 0, len(j.pending))
	for _, k := range slices.Sorted(maps.Keys(j.pending)) {
		all = append(all, setRecord(j.pending[k]))
	}
	t := j.write(discRecord{Op: "state", All: all})
	j.since = 0
	if j.pruning.CompareAndSwap(false, true) {
		before := j.index - 1
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			defer j.pruning.Store(false)
			j.log.RemoveBefore(before) // a failure leaves old segments, which replay reads again
		}()
	}
	return t
}

func (j *discJournal) write(r discRecord) *wal.Ticket {
	j.index++
	return j.log.Append(j.index, encodeDiscRecord(r))
}

// encodeDiscRecord encodes r with its values as they are: compact JSON, "<", ">" and "&" not
// escaped, so that a write made after a restart stores the bytes registered.
func encodeDiscRecord(r discRecord) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil { // cannot happen: values are valid JSON
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// close flushes and closes the journal.
func (j *discJournal) close() error {
	j.wg.Wait()
	return j.log.Close()
}
