package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestOnDisconnectRestart: the on-disconnect writes of the connections a restart ends are made
// one grace period after start-up, with ReasonNodeLost, whether the state came back through the
// log or a snapshot; a cancelled one and one already made are not made again, and one a
// connection registers again after the restart is that connection's. A second restart finds
// nothing pending.
func TestOnDisconnectRestart(t *testing.T) {
	t.Parallel()
	for _, viaSnapshot := range []bool{false, true} {
		t.Run(map[bool]string{false: "log", true: "snapshot"}[viaSnapshot], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock := fakeclock.New(sessT0)
			cfg := Config{Clock: clock, EphemeralGrace: sessGrace, Logger: slog.New(slog.DiscardHandler)}
			open := func() *Hub {
				h, err := Open(cfg, StoreConfig{Dir: dir})
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			register := func(h *Hub, s *Session, w DisconnectWrite) {
				t.Helper()
				if err := h.OnDisconnect(s, w); err != nil {
					t.Fatalf("OnDisconnect(%s): %v", w.Key, err)
				}
			}
			h := open()
			for _, k := range []string{"/st/gone", "/st/cancelled"} {
				if _, err := h.Set(k, []byte(`0`), Cond{}, WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			// A connection made its write before the restart: not made again.
			made := h.NewSession()
			register(h, made, DisconnectWrite{Key: "/st/made", Value: []byte(`1`)})
			made.End()
			clock.Advance(sessGrace)
			if e, err := h.Get("/st/made"); err != nil || string(e.Value) != `1` {
				t.Fatalf("/st/made before the restart: %+v, %v", e, err)
			}
			if _, err := h.Set("/st/made", []byte(`2`), Cond{}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			// A connection the restart ends.
			s := h.NewSession()
			register(h, s, DisconnectWrite{Key: "/st/ann", Value: []byte("\"off<&>\u2028line\"")})
			register(h, s, DisconnectWrite{Key: "/st/gone", Delete: true})
			register(h, s, DisconnectWrite{Key: "/st/cancelled", Delete: true})
			register(h, s, DisconnectWrite{Key: "/st/again", Value: []byte(`"old"`)})
			if err := h.CancelDisconnect(s, "/st/cancelled"); err != nil {
				t.Fatal(err)
			}
			if viaSnapshot {
				if err := h.local().store.snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			h.Close() // s never ended: the process died with it

			h = open()
			sub, err := h.Subscribe("/st/", SubscribeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			again := h.NewSession() // the client of /st/again reconnects and registers again
			register(h, again, DisconnectWrite{Key: "/st/again", Value: []byte(`"new"`)})
			clock.Advance(sessGrace - time.Nanosecond)
			if sessExists(h, "/st/ann") || !sessExists(h, "/st/gone") {
				t.Fatal("a write was made before the grace period")
			}
			clock.Advance(time.Nanosecond)
			want := map[string]string{"/st/ann": "\"off<&>\u2028line\"", "/st/cancelled": `0`, "/st/made": `2`}
			for k, v := range want {
				if e, err := h.Get(k); err != nil || string(e.Value) != v {
					t.Fatalf("%s after the grace period: %+v, %v; want %s", k, e, err, v)
				}
			}
			for _, k := range []string{"/st/gone", "/st/again"} {
				if sessExists(h, k) {
					t.Fatalf("%s after the grace period: present", k)
				}
			}
			var got []string
			events, _ := sub.Take(nil)
			for _, e := range events {
				got = append(got, e.Key+" "+strconv.FormatBool(e.Deleted)+" "+e.Reason)
			}
			if want := []string{"/st/ann false node_lost", "/st/gone true node_lost"}; !slices.Equal(got, want) {
				t.Fatalf("events %q, want %q", got, want)
			}
			again.End()
			clock.Advance(sessGrace)
			if e, err := h.Get("/st/again"); err != nil || string(e.Value) != `"new"` {
				t.Fatalf("/st/again after its new connection ended: %+v, %v", e, err)
			}
			seq := h.Seq()
			h.Close()

			h = open()
			defer h.Close()
			clock.Advance(2 * sessGrace)
			if h.Seq() != seq {
				t.Fatalf("a second restart made writes: seq %d, was %d", h.Seq(), seq)
			}
		})
	}
}

// TestOnDisconnectJournalCompacts: a journal that took many records is replaced by one record of
// what is pending, at start-up and once it grows, and its older segments go.
func TestOnDisconnectJournalCompacts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := fakeclock.New(sessT0)
	cfg := Config{Clock: clock, EphemeralGrace: sessGrace, Logger: slog.New(slog.DiscardHandler)}
	h, err := Open(cfg, StoreConfig{Dir: dir, Sync: wal.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	s := h.NewSession()
	value := []byte(`"` + strings.Repeat("x", 100) + `"`)
	for i := range 3 * discCompactRecords {
		if err := h.OnDisconnect(s, DisconnectWrite{Key: "/c/k" + strconv.Itoa(i%8), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	j := h.local().store.disc
	if j.since >= discCompactRecords {
		t.Fatalf("%d records since the last state record, want fewer than %d", j.since, discCompactRecords)
	}
	h.Close()
	if n := segments(t, dir); n > 2 {
		t.Fatalf("%d segments after %d registrations of 8 keys, want at most 2", n, 3*discCompactRecords)
	}
	h, err = Open(cfg, StoreConfig{Dir: dir, Sync: wal.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := len(h.local().store.disc.pending); got != 8 {
		t.Fatalf("%d pending after the restart, want 8", got)
	}
	if h.local().store.disc.since != 0 {
		t.Fatalf("the journal was not compacted at start-up: %d records since its state record", h.local().store.disc.since)
	}
}

func segments(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ondisconnect", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// TestOnDisconnectJournalRefusesGarbage: a record the journal cannot read stops the start-up
// with an error naming it, as the data log does.
func TestOnDisconnectJournalRefusesGarbage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log, err := wal.Open(wal.Options{Dir: filepath.Join(dir, "ondisconnect")})
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Append(1, []byte(`{"op":"set","key":"/a"}`)).Wait(); err != nil {
		t.Fatal(err)
	}
	log.Close()
	_, err = Open(Config{Logger: slog.New(slog.DiscardHandler)}, StoreConfig{Dir: dir})
	if err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open = %v, want the bad record named", err)
	}
	if want := "on-disconnect record 1"; !strings.Contains(err.Error(), want) {
		t.Fatalf("Open = %v, want it to name %q", err, want)
	}
}

// FuzzDiscRecord: any bytes as a journal record. Decoding and applying it never panics, and what a
// record leaves pending, written as the state record compaction writes, reads back the same.
func FuzzDiscRecord(f *testing.F) {
	for _, s := range []string{
		`{"op":"set","key":"/a","value":{"x":[1, 2],"h":"<&>\u2028"}}`,
		"{\"op\":\"set\",\"key\":\"/a\",\"value\":\"<\u2028\u2029>\"}", `{"op":"set","key":"/a","delete":true}`, `{"op":"drop","key":"/a"}`,
		`{"op":"state","all":[{"op":"set","key":"/a","value":1},{"op":"set","key":"/b","delete":true}]}`,
		`{"op":"set","key":"/a"}`, `{"op":"set","key":"/a","value":1,"delete":true}`, `{"op":"x"}`,
		`{"op":"state","all":[{"op":"drop","key":"/b"}]}`, `{"op":"set","key":"/a","value":null}`, `null`, `[]`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r discRecord
		if json.Unmarshal(data, &r) != nil {
			return
		}
		j := &discJournal{pending: map[string]DisconnectWrite{}}
		if j.apply(r) != nil {
			return
		}
		all := []discRecord{}
		for _, k := range slices.Sorted(maps.Keys(j.pending)) {
			all = append(all, setRecord(j.pending[k]))
		}
		b := encodeDiscRecord(discRecord{Op: "state", All: all})
		var back discRecord
		again := &discJournal{pending: map[string]DisconnectWrite{}}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if err := again.apply(back); err != nil {
			t.Fatalf("applying %s: %v", b, err)
		}
		// Values come back compacted, as registrations hold them (Limits.CompactJSON), and
		// otherwise byte for byte: "<" stays "<".
		compact := func(v []byte) string {
			var b bytes.Buffer
			json.Compact(&b, v)
			return b.String()
		}
		if !maps.EqualFunc(j.pending, again.pending, func(a, b DisconnectWrite) bool {
			return a.Key == b.Key && a.Delete == b.Delete && compact(a.Value) == string(b.Value)
		}) {
			t.Fatalf("%q left %v pending; its state record %s reads back as %v", data, j.pending, b, again.pending)
		}
	})
}
