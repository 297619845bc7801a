package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

// A corruption rewrites the bytes of one segment file.
type corruption func(b []byte) []byte

func flipByte(off int) corruption {
	return func(b []byte) []byte { b[off] ^= 0x5a; return b }
}

func truncateAt(off int) corruption {
	return func(b []byte) []byte { return b[:off] }
}

// garbageAt overwrites bytes from off with junk (that cannot parse as a record length).
func garbageAt(off int, n int) corruption {
	return func(b []byte) []byte {
		for i := off; i < off+n && i < len(b); i++ {
			b[i] = 0xee
		}
		return b
	}
}

func appendBytes(tail []byte) corruption {
	return func(b []byte) []byte { return append(b, tail...) }
}

// corrupt applies c to the file at path, durably (as the disk would hold it after a crash).
func corrupt(t testing.TB, fsys *waltest.FS, path string, c corruption) {
	t.Helper()
	b, err := fsys.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(path, c(b)); err != nil {
		t.Fatal(err)
	}
}

// fixture is a log of two segments: seg[0] holds records 1-3, seg[1] holds records 4-6.
type fixture struct {
	fsys *waltest.FS
	recs []rec
	segs []string
	// offs[i] is the offset of record i+1 within its segment; ends[i] its end.
	offs, ends []int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{fsys: waltest.New(1), recs: []rec{
		{1, "one"}, {2, "two"}, {3, "three"}, {4, "four"}, {5, "five"}, {6, "six"},
	}}
	// 3 records of at most 21 bytes fit in 63 bytes; the 4th starts a new segment.
	writeLog(t, f.fsys, 63, f.recs)
	f.segs = files(t, f.fsys, ".wal")
	if len(f.segs) != 2 {
		t.Fatalf("fixture has segments %v", f.segs)
	}
	off := 0
	for i, r := range f.recs {
		if i == 3 {
			off = 0
		}
		f.offs = append(f.offs, off)
		off += len(encode(r))
		f.ends = append(f.ends, off)
	}
	return f
}

func TestRepairClassification(t *testing.T) {
	t.Parallel()
	type outcome int
	const (
		clean outcome = iota
		torn
		corrupted
	)
	cases := []struct {
		name string
		seg  int
		c    func(f *fixture) corruption
		want outcome
		// keep is how many records survive (with AllowRepair, for corruption).
		keep       int
		wantOffset func(f *fixture) int
	}{
		{name: "intact", seg: 1, c: func(*fixture) corruption { return func(b []byte) []byte { return b } },
			want: clean, keep: 6},
		{name: "last record cut mid-body", seg: 1, c: func(f *fixture) corruption { return truncateAt(f.ends[5] - 1) },
			want: torn, keep: 5},
		{name: "last record cut mid-header", seg: 1, c: func(f *fixture) corruption { return truncateAt(f.offs[5] + 3) },
			want: torn, keep: 5},
		{name: "cut at record boundary", seg: 1, c: func(f *fixture) corruption { return truncateAt(f.offs[5]) },
			want: clean, keep: 5},
		{name: "checksum of last record", seg: 1, c: func(f *fixture) corruption { return flipByte(f.offs[5] + 5) },
			want: torn, keep: 5},
		{name: "data of last record", seg: 1, c: func(f *fixture) corruption { return flipByte(f.ends[5] - 1) },
			want: torn, keep: 5},
		{name: "zeros after the last record (grown space)", seg: 1, c: func(*fixture) corruption { return appendBytes(make([]byte, 4096)) },
			want: clean, keep: 6},
		{name: "last record ends in zeros (a write into grown space that did not complete)", seg: 1, c: func(f *fixture) corruption {
			return func(b []byte) []byte { return append(b[:f.ends[5]-3], make([]byte, 4096)...) }
		}, want: torn, keep: 5},
		{name: "garbage tail", seg: 1, c: func(*fixture) corruption { return appendBytes([]byte("\xff\xff\xff\x7fjunkjunkjunk")) },
			want: torn, keep: 6},
		{name: "whole last segment zeroed (grown, nothing written)", seg: 1, c: func(*fixture) corruption {
			return func(b []byte) []byte { return make([]byte, len(b)) }
		}, want: clean, keep: 3},
		{name: "zeros in the middle of the last segment", seg: 1, c: func(f *fixture) corruption {
			return func(b []byte) []byte { return append(b[:f.offs[4]], append(make([]byte, 64), b[f.offs[4]:]...)...) }
		}, want: corrupted, keep: 4, wantOffset: func(f *fixture) int { return f.offs[4] }},
		{name: "zeros after the last record of a non-last segment", seg: 0, c: func(*fixture) corruption { return appendBytes(make([]byte, 64)) },
			want: corrupted, keep: 3, wantOffset: func(f *fixture) int { return f.ends[2] }},
		{name: "bad record before the tail", seg: 1, c: func(f *fixture) corruption { return flipByte(f.offs[4] + 9) },
			want: corrupted, keep: 4, wantOffset: func(f *fixture) int { return f.offs[4] }},
		{name: "garbage in the middle", seg: 1, c: func(f *fixture) corruption { return garbageAt(f.offs[3], 4) },
			want: corrupted, keep: 3, wantOffset: func(f *fixture) int { return f.offs[3] }},
		{name: "torn end of a non-last segment", seg: 0, c: func(f *fixture) corruption { return truncateAt(f.ends[2] - 2) },
			want: corrupted, keep: 2, wantOffset: func(f *fixture) int { return f.offs[2] }},
		{name: "checksum in first segment", seg: 0, c: func(f *fixture) corruption { return flipByte(f.offs[0] + 4) },
			want: corrupted, keep: 0, wantOffset: func(*fixture) int { return 0 }},
		{name: "valid record out of order", seg: 1, c: func(f *fixture) corruption {
			return func(b []byte) []byte { return append(b[:f.ends[4]], encode(rec{2, "old"})...) }
		}, want: corrupted, keep: 5, wantOffset: func(f *fixture) int { return f.ends[4] }},
		{name: "record below its segment name", seg: 1, c: func(f *fixture) corruption {
			return func([]byte) []byte { return encode(rec{3, "dup"}) }
		}, want: corrupted, keep: 3, wantOffset: func(*fixture) int { return 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			path := f.segs[tc.seg]
			corrupt(t, f.fsys, path, tc.c(f))
			var logs logBuffer
			l, err := wal.Open(wal.Options{Dir: dir, FS: f.fsys, Logger: logs.logger()})
			switch tc.want {
			case clean, torn:
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				equalRecs(t, replay(t, l, 0), f.recs[:tc.keep])
				mustClose(t, l)
				broken := files(t, f.fsys, ".broken")
				if tc.want == torn {
					if !slices.Equal(broken, []string{path + ".broken"}) {
						t.Fatalf(".broken copies: %v", broken)
					}
					if s := logs.String(); !strings.Contains(s, "torn tail") || !strings.Contains(s, path) {
						t.Fatalf("no log line about the repair: %q", s)
					}
				} else if len(broken) != 0 || logs.String() != "" {
					t.Fatalf("clean log repaired: %v %q", broken, logs.String())
				}
			case corrupted:
				var ce *wal.CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, wal.ErrCorrupt) {
					t.Fatalf("Open = %v, want *CorruptError", err)
				}
				off := int64(tc.wantOffset(f))
				if ce.File != path || ce.Offset != off {
					t.Fatalf("CorruptError at %s:%d, want %s:%d", ce.File, ce.Offset, path, off)
				}
				if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprint(off)) {
					t.Fatalf("message does not name file and offset: %q", msg)
				}
				if len(files(t, f.fsys, ".broken")) != 0 {
					t.Fatal("refusing to start must not change the files")
				}
				// With AllowRepair the log is cut at the corruption and starts.
				l = open(t, wal.Options{FS: f.fsys, AllowRepair: true, Logger: logs.logger()})
				equalRecs(t, replay(t, l, 0), f.recs[:tc.keep])
				if len(files(t, f.fsys, ".broken")) == 0 {
					t.Fatal("no .broken copy of the cut data")
				}
				next := uint64(tc.keep) + 1
				mustAppend(t, l, rec{next, "after repair"})
				mustClose(t, l)
				l = open(t, wal.Options{FS: f.fsys})
				equalRecs(t, replay(t, l, 0), append(slices.Clone(f.recs[:tc.keep]), rec{next, "after repair"}))
				mustClose(t, l)
			}
		})
	}
}

// TestTornTailEveryOffset cuts the last record at every offset and flips every byte of it: each
// is a torn tail that Open repairs, keeping the five records before it.
func TestTornTailEveryOffset(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var cs []corruption
	for off := f.offs[5] + 1; off < f.ends[5]; off++ {
		cs = append(cs, truncateAt(off))
	}
	for off := f.offs[5]; off < f.ends[5]; off++ {
		cs = append(cs, flipByte(off))
	}
	for i, c := range cs {
		f := newFixture(t)
		last := f.segs[1]
		corrupt(t, f.fsys, last, c)
		l := open(t, wal.Options{FS: f.fsys})
		equalRecs(t, replay(t, l, 0), f.recs[:5])
		mustClose(t, l)
		if b := files(t, f.fsys, ".broken"); len(b) != 1 {
			t.Fatalf("case %d: .broken copies %v", i, b)
		}
		if got, _ := f.fsys.ReadFile(last); len(got) != f.offs[5] {
			t.Fatalf("case %d: segment not truncated at the record: %d bytes", i, len(got))
		}
		// Repaired for good: reopening finds a clean log.
		l = open(t, wal.Options{FS: f.fsys})
		mustClose(t, l)
		if b := files(t, f.fsys, ".broken"); len(b) != 1 {
			t.Fatalf("case %d: repaired twice: %v", i, b)
		}
	}
}

// TestTornWholeLastSegment: a last segment torn at its first record becomes empty and is
// removed; appends go on from the previous segment's last index.
func TestTornWholeLastSegment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	corrupt(t, f.fsys, f.segs[1], truncateAt(7))
	l := open(t, wal.Options{FS: f.fsys, SegmentSize: 63})
	equalRecs(t, replay(t, l, 0), f.recs[:3])
	if segs := files(t, f.fsys, ".wal"); !slices.Equal(segs, f.segs[:1]) {
		t.Fatalf("segments %v", segs)
	}
	mustAppend(t, l, rec{4, "again"})
	mustClose(t, l)
	l = open(t, wal.Options{FS: f.fsys})
	defer mustClose(t, l)
	equalRecs(t, replay(t, l, 0), append(slices.Clone(f.recs[:3]), rec{4, "again"}))
}

func TestBrokenCopiesAreNeverOverwritten(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 3 {
		corrupt(t, f.fsys, f.segs[1], appendBytes([]byte{byte(i + 1), 0, 0}))
		l := open(t, wal.Options{FS: f.fsys})
		mustClose(t, l)
	}
	want := []string{f.segs[1] + ".broken", f.segs[1] + ".broken.1", f.segs[1] + ".broken.2"}
	if got := files(t, f.fsys, ""); !slices.Equal(got[len(got)-3:], want) {
		t.Fatalf("files %v", got)
	}
}

// bigSegment is a durable segment of 256 records of 4 KiB (about 1 MiB) followed by tail, alone
// in the log directory of a fresh FS. It returns the FS, the segment's path and its good size.
func bigSegment(t *testing.T, tail []byte) (*waltest.FS, string, int) {
	t.Helper()
	fsys := waltest.New(1)
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var recs []rec
	for i := range 256 {
		recs = append(recs, rec{uint64(i + 1), strings.Repeat(string(rune('a'+i%26)), 4096)})
	}
	good := encode(recs...)
	path := dir + "/0000000000000001.wal"
	if err := fsys.WriteFile(path, append(slices.Clone(good), tail...)); err != nil {
		t.Fatal(err)
	}
	return fsys, path, len(good)
}

// TestTornTailCopyIsTheCutBytes: the .broken copy of a torn tail holds the cut bytes only, not the
// segment, so a log whose disk has little room left still starts.
func TestTornTailCopyIsTheCutBytes(t *testing.T) {
	t.Parallel()
	tail := []byte{0x30, 0, 0, 0, 0x9a, 0xbc} // 6 bytes of a record header
	fsys, path, good := bigSegment(t, tail)
	fsys.SetCapacity(fsys.Used() + 100) // the old whole-segment copy needed 1 MiB
	var logs logBuffer
	l := open(t, wal.Options{FS: fsys, Logger: logs.logger()})
	if got := len(replay(t, l, 0)); got != 256 {
		t.Fatalf("replayed %d records, want 256", got)
	}
	mustClose(t, l)
	if b, err := fsys.ReadFile(path + ".broken"); err != nil || !slices.Equal(b, tail) {
		t.Fatalf(".broken holds %d bytes %x (%v), want the torn tail %x", len(b), b, err, tail)
	}
	if b, _ := fsys.ReadFile(path); len(b) != good {
		t.Fatalf("segment of %d bytes, want it cut at %d", len(b), good)
	}
	if s := logs.String(); !strings.Contains(s, "torn tail cut off") || !strings.Contains(s, "broken_copy") {
		t.Fatalf("log: %q", s)
	}
}

// TestTornTailOnAFullDisk: when not even the copy of the cut bytes fits, Open still cuts a tail that
// holds no complete record (a partial header or body, at the end of the file or followed by the
// zeros of grown space), logging that no copy was kept; a tail that holds a whole record (a
// checksum mismatch) is refused until the copy can be written.
func TestTornTailOnAFullDisk(t *testing.T) {
	t.Parallel()
	whole := encode(rec{257, strings.Repeat("z", 100)})
	flipped := slices.Clone(whole)
	flipped[len(flipped)-1] ^= 0x5a
	tests := []struct {
		name   string
		tail   []byte
		starts bool
	}{
		{"partial header", whole[:6], true},
		{"partial body", whole[:len(whole)-10], true},
		{"partial body and zeros", append(whole[:len(whole)-10:len(whole)-10], make([]byte, 4096)...), true},
		{"checksum mismatch", flipped, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys, path, good := bigSegment(t, tc.tail)
			fsys.SetCapacity(fsys.Used()) // not a byte free
			var logs logBuffer
			l, err := wal.Open(wal.Options{Dir: dir, FS: fsys, Logger: logs.logger()})
			if !tc.starts {
				if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), ".broken") {
					t.Fatalf("Open = %v, want an error about the .broken copy on a full disk", err)
				}
				if b, _ := fsys.ReadFile(path); len(b) != good+len(tc.tail) {
					t.Fatalf("the refused repair changed the segment: %d bytes", len(b))
				}
				if names := files(t, fsys, ""); len(names) != 1 {
					t.Fatalf("files left: %v", names)
				}
				fsys.SetCapacity(-1) // room made: now it starts, with the copy
				l = open(t, wal.Options{FS: fsys})
				mustClose(t, l)
				if b, _ := fsys.ReadFile(path + ".broken"); !slices.Equal(b, tc.tail) {
					t.Fatalf(".broken holds %x, want %x", b, tc.tail)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got := len(replay(t, l, 0)); got != 256 {
				t.Fatalf("replayed %d records, want 256", got)
			}
			mustClose(t, l)
			if b, _ := fsys.ReadFile(path); len(b) != good {
				t.Fatalf("segment of %d bytes, want it cut at %d", len(b), good)
			}
			if names := files(t, fsys, ""); len(names) != 1 {
				t.Fatalf("files: %v, want the segment alone", names)
			}
			if s := logs.String(); !strings.Contains(s, "without a .broken copy") || !strings.Contains(s, path) {
				t.Fatalf("log: %q", s)
			}
		})
	}
}

// TestOpenRemovesStaleTemps: the temporary file of a .broken copy that a kill interrupted is
// removed at Open, with a log line; other files are left alone.
func TestOpenRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stale := f.segs[1] + ".broken.tmp"
	stale1 := f.segs[1] + ".broken.1.tmp"
	other := dir + "/notes.tmp"
	for _, p := range []string{stale, stale1, other} {
		if err := f.fsys.WriteFile(p, []byte("partial copy")); err != nil {
			t.Fatal(err)
		}
	}
	var logs logBuffer
	l := open(t, wal.Options{FS: f.fsys, Logger: logs.logger()})
	equalRecs(t, replay(t, l, 0), f.recs)
	mustClose(t, l)
	if got := files(t, f.fsys, ".tmp"); !slices.Equal(got, []string{other}) {
		t.Fatalf(".tmp files after Open: %v, want only %s", got, other)
	}
	if s := logs.String(); !strings.Contains(s, "removed stale temporary files") || !strings.Contains(s, stale) {
		t.Fatalf("log: %q", s)
	}
}

// FuzzOpenLastSegment gives the last segment arbitrary bytes. Open must not panic; it either
// refuses with a *CorruptError or opens a log that holds the records before the first bad one.
// What follows them is left only if it is zeros (grown space), else cut off with a .broken copy of
// exactly those bytes. Then a record appended after the last one must come back after a reopen,
// right after them.
func FuzzOpenLastSegment(f *testing.F) {
	fx := newFixture(f)
	seg1, err := fx.fsys.ReadFile(fx.segs[1])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seg1)
	f.Add(append(slices.Clone(seg1), make([]byte, 100)...))
	f.Add(append(slices.Clone(seg1[:len(seg1)-3]), make([]byte, 100)...))
	f.Add(append(slices.Clone(seg1), 0, 0, 0, 1))
	f.Add(make([]byte, 64))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		fx := newFixture(t)
		if err := fx.fsys.WriteFile(fx.segs[1], in); err != nil {
			t.Fatal(err)
		}
		// A small SegmentSize keeps the grown space small (and fuzzing fast); the appended record
		// may start a new segment.
		opts := wal.Options{Dir: dir, FS: fx.fsys, Logger: quiet, SegmentSize: 4 << 10}
		l, err := wal.Open(opts)
		if err != nil {
			if !errors.Is(err, wal.ErrCorrupt) {
				t.Fatalf("Open = %v, want a *CorruptError or success", err)
			}
			return
		}
		got := replay(t, l, 0)
		if len(got) < 3 || !slices.Equal(got[:3], fx.recs[:3]) {
			t.Fatalf("the first segment's records are not replayed first: %v", short(got))
		}
		kept := encode(got[3:]...)
		if !bytes.HasPrefix(in, kept) {
			t.Fatalf("replayed records that are not the segment's first bytes")
		}
		rest := in[len(kept):]
		broken := files(t, fx.fsys, ".broken")
		switch {
		case len(bytes.TrimRight(rest, "\x00")) == 0:
			if len(broken) != 0 {
				t.Fatalf("nothing but zeros after the records, yet a .broken copy: %v", broken)
			}
		case len(broken) != 1:
			t.Fatalf("%d bytes cut off with .broken copies %v", len(rest), broken)
		default:
			if b, _ := fx.fsys.ReadFile(broken[0]); !bytes.Equal(b, rest) {
				t.Fatalf(".broken holds %d bytes, want the %d cut off", len(b), len(rest))
			}
		}
		next := rec{got[len(got)-1].index + 1, "next"}
		mustAppend(t, l, next)
		mustClose(t, l)
		l = open(t, opts)
		defer mustClose(t, l)
		equalRecs(t, replay(t, l, 0), append(got, next))
	})
}
