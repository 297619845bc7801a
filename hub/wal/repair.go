package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxTornTail bounds how much of a segment after a bad record is read to decide whether it is a
// torn tail. A longer remainder is not a plausible torn write and is treated as corruption.
const maxTornTail = 2 * MaxRecordSize

// listSegments returns the segment files of dir, oldest first. Other files are ignored.
func listSegments(fsys FS, dir string) ([]segment, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir: %w", err)
	}
	var segs []segment
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		first, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		// Fixed-width hex names sort like their indexes, and ReadDir sorts by name.
		segs = append(segs, segment{first: first, path: filepath.Join(dir, e.Name())})
	}
	return segs, nil
}

// scanResult is what scanSegment learned about one segment.
type scanResult struct {
	lastIndex  uint64 // index of the last good record, or the prev passed in if none
	size       int64  // bytes of good records (the file size if there is no bad record)
	tail       int64  // bytes from bad to the end of the file
	bad        *badRecordError
	zeros      bool // bad is where zeros start that run to the end of the file: the log's grown space
	validAfter bool // a well-formed record exists after bad (so bad is not a torn tail)
	// partial: the bytes from bad on hold no complete record: only the start of one that runs past
	// the end of the file or into zeros that run to its end, or zeros alone. Such a record was
	// never wholly written; nothing in it can be checked.
	partial bool
}

// scanSegment decodes every record of s, checking that indexes increase from prev, are >= the
// segment's first index and, if next > 0, below the next segment's first index.
func scanSegment(fsys FS, s segment, prev, next uint64) (res scanResult, err error) {
	f, err := fsys.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return res, fmt.Errorf("wal: open %s: %w", s.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("wal: stat %s: %w", s.path, err)
	}
	size := fi.Size()
	d := newDecoder(newBufReader(f, size), size)
	res.lastIndex = prev
	for {
		off := d.off
		index, _, err := d.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.As(err, &res.bad) {
				return res, fmt.Errorf("wal: read %s: %w", s.path, err)
			}
			break
		}
		if index <= res.lastIndex || index < s.first || (next > 0 && index >= next) {
			res.bad = &badRecordError{offset: off, reason: errIndexOrder}
			break
		}
		res.lastIndex = index
	}
	res.size = size
	if res.bad == nil {
		return res, nil
	}
	res.size = res.bad.offset
	res.tail = size - res.bad.offset
	if res.bad.reason == errIndexOrder {
		// A well-formed record in the wrong place is not a torn write.
		res.validAfter = true
		return res, nil
	}
	rest := res.tail
	if rest > maxTornTail {
		res.validAfter = true
		return res, nil
	}
	tail := make([]byte, rest)
	if _, err := f.ReadAt(tail, res.bad.offset); err != nil && err != io.EOF {
		return res, fmt.Errorf("wal: read %s: %w", s.path, err)
	}
	written := len(bytes.TrimRight(tail, "\x00"))
	res.zeros = written == 0
	res.validAfter = validRecordAfter(tail)
	switch res.bad.reason {
	case errShortHeader, errShortBody:
		res.partial = true
	case errChecksum: // whole in the file, but its bytes may end in the zeros of grown space
		res.partial = int64(written) < headerSize+int64(binary.LittleEndian.Uint32(tail))
	}
	res.partial = res.partial || res.zeros
	return res, nil
}

// recovered is what Open needs from recovery.
type recovered struct {
	lastIndex uint64 // last good index in the log, 0 if empty
}

// recover scans all segments, repairs a torn tail (or, with AllowRepair, corruption) and leaves
// l.segs listing the segments that remain. The last segment is never left empty: an empty one is
// removed durably, so the next Append names a new segment after its own index.
func (l *Log) recover() (recovered, error) {
	var rec recovered
	// A copy to a .broken file that a kill interrupted left its temporary file; the repair it was
	// part of runs again below.
	temps, err := RemoveTemps(l.fs, l.opts.Dir, isBrokenName)
	if err != nil {
		l.log.Warn("wal: removing stale temporary files", "dir", l.opts.Dir, "err", err)
	}
	if len(temps) > 0 {
		l.log.Info("wal: removed stale temporary files", "files", temps)
	}
	segs, err := listSegments(l.fs, l.opts.Dir)
	if err != nil {
		return rec, err
	}
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		isLast := i == len(segs)-1
		var next uint64
		if !isLast {
			next = segs[i+1].first
		}
		res, err := scanSegment(l.fs, s, rec.lastIndex, next)
		if err != nil {
			return rec, err
		}
		rec.lastIndex = res.lastIndex
		if bad := res.bad; bad != nil && isLast && res.zeros {
			// Zeros from the end of a record to the end of the last segment: the space the log
			// grew the file by (grow), into which it writes on.
			res.bad = nil
		}
		if bad := res.bad; bad != nil {
			cerr := &CorruptError{File: s.path, Offset: bad.offset, Err: bad.reason}
			switch {
			case isLast && !res.validAfter:
				broken, err := l.cut(s.path, bad.offset)
				switch {
				case err == nil:
					l.log.Warn("wal: torn tail cut off", "file", s.path, "offset", bad.offset,
						"reason", bad.reason, "bytes", res.tail, "broken_copy", broken)
				case res.partial && errors.Is(err, errCopy):
					// The disk cannot take the copy (it is full), and the tail holds no complete
					// record, nothing a copy could help recover: cut it all the same, so that a full
					// disk does not keep the server from starting.
					if err := l.truncate(s.path, bad.offset); err != nil {
						return rec, err
					}
					l.log.Error("wal: torn tail cut off without a .broken copy, which could not be written",
						"file", s.path, "offset", bad.offset, "reason", bad.reason, "bytes", res.tail, "err", err)
				default:
					return rec, err
				}
			case !l.opts.AllowRepair:
				return rec, cerr
			default:
				broken, err := l.cut(s.path, bad.offset)
				if err != nil {
					return rec, err
				}
				l.log.Error("wal: corrupt log repaired: records at and after the corruption dropped",
					"file", s.path, "offset", bad.offset, "reason", bad.reason, "broken_copy", broken,
					"later_segments", len(segs)-i-1)
				for _, later := range segs[i+1:] {
					if err := l.fs.Rename(later.path, brokenName(l.fs, later.path)); err != nil {
						return rec, fmt.Errorf("wal: repair: %w", err)
					}
				}
				if err := l.fs.SyncDir(l.opts.Dir); err != nil {
					return rec, fmt.Errorf("wal: repair: %w", err)
				}
				segs = segs[:i+1]
			}
		}
		s.size = res.size
		l.segs = append(l.segs, s)
	}
	removed := false
	for n := len(l.segs); n > 0 && l.segs[n-1].size == 0; n-- {
		if err := l.fs.Remove(l.segs[n-1].path); err != nil {
			return rec, fmt.Errorf("wal: remove empty segment: %w", err)
		}
		l.segs = l.segs[:n-1]
		removed = true
	}
	if removed {
		if err := l.fs.SyncDir(l.opts.Dir); err != nil {
			return rec, fmt.Errorf("wal: remove empty segment: %w", err)
		}
	}
	return rec, nil
}

// errCopy marks a failure to write the .broken copy of the bytes a repair cuts off.
var errCopy = errors.New("wal: repair: cannot keep a copy of the cut bytes")

// cut keeps a durable copy of the bytes of the segment at path from offset to its end in a
// .broken file, then truncates the segment to offset and fsyncs it. It returns the copy's path.
// When the copy cannot be written the error matches errCopy and the segment is left as it was.
func (l *Log) cut(path string, offset int64) (string, error) {
	broken := brokenName(l.fs, path)
	src, err := l.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return "", fmt.Errorf("wal: repair: %w", err)
	}
	fi, err := src.Stat()
	if err != nil {
		src.Close()
		return "", fmt.Errorf("wal: repair: %w", err)
	}
	err = WriteFileAtomic(l.fs, broken, func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(src, offset, fi.Size()-offset))
		return err
	})
	src.Close()
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", errCopy, broken, err)
	}
	return broken, l.truncate(path, offset)
}

// truncate cuts the segment at path to offset and fsyncs it.
func (l *Log) truncate(path string, offset int64) error {
	f, err := l.fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: repair: %w", err)
	}
	err = f.Truncate(offset)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: repair: truncate %s: %w", path, err)
	}
	return nil
}

// isBrokenName reports whether name is the name of a .broken copy (see brokenName).
func isBrokenName(name string) bool {
	seg, _, ok := strings.Cut(name, ".broken")
	if !ok {
		return false
	}
	_, ok = parseSegmentName(seg)
	return ok
}

// brokenName returns path+".broken", or path+".broken.N" for the first N not already taken, so
// an earlier copy is never overwritten.
func brokenName(fsys FS, path string) string {
	name := path + ".broken"
	for n := 1; ; n++ {
		if _, err := fsys.Stat(name); err != nil {
			return name // not there (or unreadable: then writing the copy reports the error)
		}
		name = fmt.Sprintf("%s.broken.%d", path, n)
	}
}
