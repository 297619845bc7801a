package wal_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/hub/wal/waltest"
)

const dir = "/data/wal"

type rec struct {
	index uint64
	data  string
}

// encode is an independent encoder written from doc.go, used to build segments by hand.
func encode(recs ...rec) []byte {
	var b []byte
	for _, r := range recs {
		body := binary.LittleEndian.AppendUint64(nil, r.index)
		body = append(body, r.data...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		b = append(b, body...)
	}
	return b
}

// logBuffer collects slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

var quiet = slog.New(slog.DiscardHandler)

func open(t testing.TB, opts wal.Options) *wal.Log {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = dir
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := wal.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func replay(t testing.TB, l *wal.Log, after uint64) []rec {
	t.Helper()
	var got []rec
	if err := l.Replay(after, func(index uint64, data []byte) error {
		got = append(got, rec{index, string(data)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

func mustAppend(t testing.TB, l *wal.Log, recs ...rec) {
	t.Helper()
	for _, r := range recs {
		if err := l.Append(r.index, []byte(r.data)).Wait(); err != nil {
			t.Fatalf("Append(%d): %v", r.index, err)
		}
	}
}

func mustClose(t testing.TB, l *wal.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// records returns n records with indexes from first on and varied data.
func records(first uint64, n int) []rec {
	out := make([]rec, n)
	for i := range out {
		idx := first + uint64(i)
		out[i] = rec{idx, strings.Repeat(string(rune('a'+idx%26)), int(idx%40))}
	}
	return out
}

// writeLog writes recs to a fresh in-memory log and closes it.
func writeLog(t testing.TB, fsys *waltest.FS, segSize int64, recs []rec) {
	t.Helper()
	l := open(t, wal.Options{FS: fsys, SegmentSize: segSize})
	mustAppend(t, l, recs...)
	mustClose(t, l)
}

// files lists the names in dir with the given suffix.
func files(t testing.TB, fsys wal.FS, suffix string) []string {
	t.Helper()
	return filesIn(t, fsys, dir, suffix)
}

// filesIn lists the names in d with the given suffix.
func filesIn(t testing.TB, fsys wal.FS, d, suffix string) []string {
	t.Helper()
	entries, err := fsys.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

func equalRecs(t testing.TB, got, want []rec) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d records %v\nwant %d records %v", len(got), short(got), len(want), short(want))
	}
}

func short(rs []rec) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.index
	}
	return out
}
