package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

const (
	// headerSize is the fixed part of a record before its body: uint32 length, uint32 CRC32C.
	headerSize = 8
	// indexSize is the size of the index that starts every record body.
	indexSize = 8
	// minRecordSize is the smallest encoded record: header plus index, no data.
	minRecordSize = headerSize + indexSize

	// MaxRecordSize bounds the length field of a record (index plus data). Append refuses larger
	// data and the decoder treats a larger length as a bad record, so a corrupt length can never
	// make it allocate more than this.
	MaxRecordSize = 128 << 20

	// segmentExt is the extension of segment files.
	segmentExt = ".wal"
)

// castagnoli is the CRC32C table; crc32 uses the SSE4.2/ARMv8 instruction when available.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize returns the encoded size of a record with n bytes of data.
func recordSize(n int) int { return minRecordSize + n }

// appendRecord appends the encoding of one record to dst and returns the extended slice.
// len(data) must be at most MaxRecordSize-indexSize. It does not allocate when dst has room.
func appendRecord(dst []byte, index uint64, data []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(indexSize+len(data)))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // checksum, filled in below
	dst = binary.LittleEndian.AppendUint64(dst, index)
	dst = append(dst, data...)
	body := dst[start+headerSize:]
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// segmentName returns the file name of the segment whose first record has the given index.
func segmentName(first uint64) string {
	return fmt.Sprintf("%016x%s", first, segmentExt)
}

// parseSegmentName reports the first index encoded in a segment file name. Names that are not
// exactly 16 lower-case hex digits followed by ".wal" (temp files, .broken copies) are rejected.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	return v, err == nil
}
