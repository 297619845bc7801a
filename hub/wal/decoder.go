package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Reasons a record is rejected. They are wrapped in a badRecordError by the decoder and end up as
// the Err of a CorruptError.
var (
	errShortHeader = errors.New("incomplete record header")
	errBadLength   = errors.New("record length out of range")
	errShortBody   = errors.New("record extends past end of file")
	errChecksum    = errors.New("checksum mismatch")
	errIndexOrder  = errors.New("record index out of order")
)

// badRecordError reports that the bytes at offset do not form a valid record.
type badRecordError struct {
	offset int64
	reason error
}

func (e *badRecordError) Error() string {
	return fmt.Sprintf("bad record at offset %d: %v", e.offset, e.reason)
}

func (e *badRecordError) Unwrap() error { return e.reason }

// decoder reads the records of one segment in order.
//
// next has three outcomes besides a record: io.EOF at a clean end (the last record ends exactly at
// size), a *badRecordError naming the offset of the first byte that is not a valid record, or an
// I/O error from the reader. Whether a bad record is a torn tail or corruption is decided by the
// caller (see classify in repair.go), which knows whether this is the last segment and what follows.
//
// The decoder never allocates more than the bytes left in the segment: a length field is checked
// against size-offset (and MaxRecordSize) before the body is allocated.
type decoder struct {
	r    io.Reader
	off  int64 // offset of the next record
	size int64 // bytes in the segment
	hdr  [minRecordSize]byte

	// allocated counts body bytes allocated so far; tests assert it never exceeds size.
	allocated int64
}

// newDecoder returns a decoder over r, which must yield exactly size bytes.
func newDecoder(r io.Reader, size int64) *decoder {
	return &decoder{r: r, size: size}
}

// next returns the next record. data is freshly allocated and owned by the caller.
// After an error the decoder must not be used again.
func (d *decoder) next() (index uint64, data []byte, err error) {
	left := d.size - d.off
	if left <= 0 {
		return 0, nil, io.EOF
	}
	if left < minRecordSize {
		return 0, nil, d.bad(errShortHeader)
	}
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return 0, nil, d.readErr(err, errShortHeader)
	}
	length := binary.LittleEndian.Uint32(d.hdr[0:4])
	crc := binary.LittleEndian.Uint32(d.hdr[4:8])
	index = binary.LittleEndian.Uint64(d.hdr[8:16])
	if length < indexSize || length > MaxRecordSize {
		return 0, nil, d.bad(errBadLength)
	}
	if int64(length) > left-headerSize {
		return 0, nil, d.bad(errShortBody)
	}
	n := int(length) - indexSize
	data = make([]byte, n)
	d.allocated += int64(n)
	if _, err := io.ReadFull(d.r, data); err != nil {
		return 0, nil, d.readErr(err, errShortBody)
	}
	c := crc32.Update(crc32.Checksum(d.hdr[8:16], castagnoli), castagnoli, data)
	if c != crc {
		return 0, nil, d.bad(errChecksum)
	}
	d.off += headerSize + int64(length)
	return index, data, nil
}

func (d *decoder) bad(reason error) error {
	return &badRecordError{offset: d.off, reason: reason}
}

// readErr maps an early end of the reader (the file shrank under us) to a bad record and passes
// other I/O errors through unchanged.
func (d *decoder) readErr(err, reason error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.bad(reason)
	}
	return err
}

// maxScanWork bounds the checksum work validRecordAfter does on hostile input; past it the tail is
// conservatively reported as holding a valid record (so it is treated as corruption, not cut off).
const maxScanWork = 1 << 30

// validRecordAfter reports whether any offset after the first byte of tail starts a well-formed
// record (plausible length that fits, matching checksum). tail starts at a bad record; if nothing
// valid follows it, the bad record is a torn write (or zero fill) rather than corruption.
func validRecordAfter(tail []byte) bool {
	work := 0
	for i := 1; i+minRecordSize <= len(tail); i++ {
		length := binary.LittleEndian.Uint32(tail[i:])
		if length < indexSize || length > MaxRecordSize || int64(i)+headerSize+int64(length) > int64(len(tail)) {
			continue
		}
		body := tail[i+headerSize : i+headerSize+int(length)]
		if work += len(body); work > maxScanWork {
			return true
		}
		if crc32.Checksum(body, castagnoli) == binary.LittleEndian.Uint32(tail[i+4:]) {
			return true
		}
	}
	return false
}

// newBufReader buffers sequential reads of a segment of the given size.
func newBufReader(r io.Reader, size int64) *bufio.Reader {
	return bufio.NewReaderSize(r, int(min(max(size, 16), 256<<10)))
}
