package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Byte-level encodings, written out by hand from the format in doc.go.
var (
	rec1Empty = []byte{
		0x08, 0x00, 0x00, 0x00, // length = 8 (index only)
		0xad, 0xcf, 0x14, 0xc5, // CRC32C
		0x01, 0, 0, 0, 0, 0, 0, 0, // index 1
	}
	rec2Hi = []byte{
		0x0a, 0x00, 0x00, 0x00,
		0xc0, 0xdf, 0x61, 0x74,
		0x02, 0, 0, 0, 0, 0, 0, 0,
		'h', 'i',
	}
	recBigIndex = []byte{
		0x0a, 0x00, 0x00, 0x00,
		0x41, 0xd5, 0x1b, 0x24,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		'{', '}',
	}
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestEncodeRecord(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		index uint64
		data  []byte
		want  []byte
	}{
		{"empty data", 1, nil, rec1Empty},
		{"short data", 2, []byte("hi"), rec2Hi},
		{"all index bytes", 0x0102030405060708, []byte("{}"), recBigIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := appendRecord(nil, tc.index, tc.data)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("appendRecord = % x, want % x", got, tc.want)
			}
			if len(got) != recordSize(len(tc.data)) {
				t.Errorf("recordSize = %d, encoded %d", recordSize(len(tc.data)), len(got))
			}
		})
	}
}

type decoded struct {
	index uint64
	data  string
}

// decodeAll runs the decoder to its end and returns the records and the final error.
func decodeAll(b []byte) ([]decoded, *decoder, error) {
	d := newDecoder(bytes.NewReader(b), int64(len(b)))
	var out []decoded
	for {
		index, data, err := d.next()
		if err != nil {
			return out, d, err
		}
		out = append(out, decoded{index, string(data)})
	}
}

func withLength(rec []byte, length uint32) []byte {
	r := slices.Clone(rec)
	binary.LittleEndian.PutUint32(r, length)
	return r
}

func flip(rec []byte, i int) []byte {
	r := slices.Clone(rec)
	r[i] ^= 0x40
	return r
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	two := []decoded{{1, ""}, {2, "hi"}}
	cases := []struct {
		name       string
		in         []byte
		want       []decoded
		wantReason error // nil: clean end
		wantOffset int64
		validAfter bool // only checked when wantReason != nil
	}{
		{name: "empty", in: nil},
		{name: "one record", in: rec1Empty, want: two[:1]},
		{name: "two records", in: cat(rec1Empty, rec2Hi), want: two},
		{name: "big index", in: recBigIndex, want: []decoded{{0x0102030405060708, "{}"}}},
		{name: "partial header", in: cat(rec1Empty, rec2Hi[:5]), want: two[:1],
			wantReason: errShortHeader, wantOffset: 16},
		{name: "header without index", in: cat(rec1Empty, rec2Hi[:12]), want: two[:1],
			wantReason: errShortHeader, wantOffset: 16},
		{name: "partial body", in: cat(rec1Empty, rec2Hi[:17]), want: two[:1],
			wantReason: errShortBody, wantOffset: 16},
		{name: "length zero", in: withLength(rec1Empty, 0), wantReason: errBadLength},
		{name: "length below index size", in: withLength(rec1Empty, 7), wantReason: errBadLength},
		{name: "length above max", in: withLength(rec1Empty, MaxRecordSize+1), wantReason: errBadLength},
		{name: "length past end", in: withLength(rec1Empty, 1<<20), wantReason: errShortBody},
		{name: "crc flipped", in: cat(rec1Empty, flip(rec2Hi, 5)), want: two[:1],
			wantReason: errChecksum, wantOffset: 16},
		{name: "index flipped", in: cat(flip(rec1Empty, 8), rec2Hi),
			wantReason: errChecksum, validAfter: true},
		{name: "data flipped at end", in: cat(rec1Empty, flip(rec2Hi, 17)), want: two[:1],
			wantReason: errChecksum, wantOffset: 16},
		{name: "zero tail", in: cat(rec1Empty, make([]byte, 64)), want: two[:1],
			wantReason: errBadLength, wantOffset: 16},
		{name: "garbage then valid", in: cat(rec1Empty, []byte("garbage!"), rec2Hi), want: two[:1],
			wantReason: errBadLength, wantOffset: 16, validAfter: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, d, err := decodeAll(tc.in)
			if !slices.Equal(got, tc.want) {
				t.Errorf("records = %v, want %v", got, tc.want)
			}
			if d.allocated > int64(len(tc.in)) {
				t.Errorf("allocated %d bytes for %d bytes of input", d.allocated, len(tc.in))
			}
			if tc.wantReason == nil {
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				return
			}
			var bad *badRecordError
			if !errors.As(err, &bad) || !errors.Is(err, tc.wantReason) {
				t.Fatalf("err = %v, want bad record %v", err, tc.wantReason)
			}
			if bad.offset != tc.wantOffset {
				t.Errorf("offset = %d, want %d", bad.offset, tc.wantOffset)
			}
			if v := validRecordAfter(tc.in[bad.offset:]); v != tc.validAfter {
				t.Errorf("validRecordAfter = %v, want %v", v, tc.validAfter)
			}
		})
	}
}

func TestParseSegmentName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		first uint64
		ok    bool
	}{
		{"0000000000000001.wal", 1, true},
		{"00000000000000ff.wal", 255, true},
		{"ffffffffffffffff.wal", 1<<64 - 1, true},
		{"00000000000000FF.wal", 0, false},
		{"0000000000000001.wal.broken", 0, false},
		{"0000000000000001.wal.tmp", 0, false},
		{"000000000000001.wal", 0, false},
		{"snapshot.json", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first, ok := parseSegmentName(tc.name)
			if first != tc.first || ok != tc.ok {
				t.Errorf("parseSegmentName = %d, %v; want %d, %v", first, ok, tc.first, tc.ok)
			}
			if tc.ok && segmentName(first) != tc.name {
				t.Errorf("segmentName(%d) = %q", first, segmentName(first))
			}
		})
	}
}

// goldenRecords are the contents of testdata/golden.wal.
var goldenRecords = []decoded{
	{1, ""},
	{2, `{"op":"set","key":"/a","value":1}`},
	{3, string(func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}())},
	{1 << 40, "last"},
}

// TestGolden pins the on-disk format: the encoder must produce testdata/golden.wal byte for byte
// and the decoder must read it back. STATEHUB_UPDATE_GOLDEN=1 rewrites the file (only do that on
// a deliberate format change, which also needs a migration).
func TestGolden(t *testing.T) {
	t.Parallel()
	var enc []byte
	for _, r := range goldenRecords {
		enc = appendRecord(enc, r.index, []byte(r.data))
	}
	path := filepath.Join("testdata", "golden.wal")
	if os.Getenv("STATEHUB_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding differs from %s (format change? rerun with STATEHUB_UPDATE_GOLDEN=1)", path)
	}
	got, _, err := decodeAll(want)
	if err != io.EOF || !slices.Equal(got, goldenRecords) {
		t.Fatalf("decoding %s: %v, %v", path, got, err)
	}
}

// FuzzDecoder feeds arbitrary bytes to the decoder: it must never panic, never allocate more than
// the input holds, stop at a clean end or a bad record, and what it accepts must re-encode to
// exactly the bytes it consumed.
func FuzzDecoder(f *testing.F) {
	f.Add(cat(rec1Empty, rec2Hi))
	f.Add(withLength(rec1Empty, MaxRecordSize))
	f.Add(cat(rec1Empty, make([]byte, 20)))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, d, err := decodeAll(in)
		if d.allocated > int64(len(in)) {
			t.Fatalf("allocated %d bytes for %d bytes of input", d.allocated, len(in))
		}
		var re []byte
		for _, r := range got {
			re = appendRecord(re, r.index, []byte(r.data))
		}
		if !bytes.Equal(re, in[:d.off]) {
			t.Fatalf("accepted records do not re-encode to the consumed bytes")
		}
		if err == io.EOF {
			if d.off != int64(len(in)) {
				t.Fatalf("clean end at %d of %d", d.off, len(in))
			}
			return
		}
		var bad *badRecordError
		if !errors.As(err, &bad) || bad.offset != d.off {
			t.Fatalf("err = %v at offset %d", err, d.off)
		}
		validRecordAfter(in[bad.offset:])
	})
}
