package hub

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// A backup (GET /.snapshot, WriteBackup) is self-contained: the snapshot, exactly as snapshot.go
// describes it, followed by a blob section with the bytes of every stored file the snapshot refers
// to:
//
//	"STATEHUB-BLOBS-1\n"      magic, 17 bytes
//	then for each distinct blob the snapshot refers to, in ascending sha256 order:
//	  byte     'b'
//	  [32]byte sha256 of the bytes
//	  uvarint  size
//	  size bytes
//	byte     'e'
//	uvarint  number of blobs
//	uint32   CRC32C (Castagnoli) of the section from its magic to here, little endian
//
// Nothing follows. The on-disk snapshots of a data directory are the snapshot alone (their blobs
// are in <data>/blobs); Restore reads both forms, and refuses a snapshot that refers to a blob the
// input does not carry.
const blobSectionMagic = "STATEHUB-BLOBS-1\n"

const (
	blobMarker = 'b'
	blobEnd    = 'e'
)

// WriteBackup writes a consistent, self-contained backup of the whole state to w: a snapshot and
// the bytes of every file it refers to (see the format above). Writers are not held up while it
// streams; blobs the frozen state refers to are not removed until it returns, even when later
// writes drop them. It returns the snapshot's seq.
func (h *Local) WriteBackup(w io.Writer) (uint64, error) {
	b := h.blobs
	b.mu.Lock() // no sweep can be between its check and its removal while the state is frozen
	b.backups++
	f := h.freeze()
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.backups--
		b.mu.Unlock()
		h.sweepBlobs() // what the backup kept from being swept
	}()
	if err := h.waitDurable(f.seq); err != nil { // a backup holds only what a crash keeps
		return 0, err
	}
	if err := f.write(w); err != nil {
		return f.seq, err
	}
	return f.seq, f.writeBlobs(w, b.store)
}

// blobSums returns the distinct blobs the frozen state refers to, sorted, each with a key that
// refers to it.
func (f frozen) blobSums() (sums []string, keyOf map[string]string, err error) {
	keyOf = make(map[string]string)
	err = f.scan(func(it item) bool {
		if it.typ() == "" {
			return true
		}
		if fi, err := ParseFileInfo(it.value()); err == nil {
			if _, ok := keyOf[fi.SHA256]; !ok {
				keyOf[fi.SHA256] = it.key
				sums = append(sums, fi.SHA256)
			}
		}
		return true
	})
	slices.Sort(sums)
	return sums, keyOf, err
}

// writeBlobs streams the blob section, reading each blob from blobs.
func (f frozen) writeBlobs(w io.Writer, blobs BlobStore) error {
	sums, keyOf, err := f.blobSums()
	if err != nil {
		return err
	}
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	bw.WriteString(blobSectionMagic)
	for _, sum := range sums {
		if err := writeBlob(bw, blobs, sum); err != nil {
			return fmt.Errorf("hub: backing up the file of %s: %w", keyOf[sum], err)
		}
	}
	bw.WriteByte(blobEnd)
	bw.Write(binary.AppendUvarint(nil, uint64(len(sums))))
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

func writeBlob(bw *bufio.Writer, blobs BlobStore, sum string) error {
	raw, err := hex.DecodeString(sum)
	if err != nil {
		return err
	}
	file, size, err := blobs.Open(sum)
	if err != nil {
		return err
	}
	defer file.Close()
	bw.WriteByte(blobMarker)
	bw.Write(raw)
	bw.Write(binary.AppendUvarint(nil, uint64(size)))
	_, err = io.CopyN(bw, file, size) // a blob never changes: it is named by its content
	return err
}

// readSnapshotPart reads one snapshot from the front of r and returns its bytes, leaving r just
// after it. It only walks the structure (keep it in step with frozen.write); decodeSnapshot
// verifies it.
func readSnapshotPart(r *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	s := &teeReader{r: r, tee: &buf}
	magic := s.bytes(len(snapshotMagic))
	if s.err == nil && string(magic) != snapshotMagic && string(magic) != snapshotMagicV2 && string(magic) != snapshotMagicV1 {
		return nil, fmt.Errorf("%w: no snapshot header", ErrBadSnapshot)
	}
	v1, v3 := string(magic) == snapshotMagicV1, string(magic) == snapshotMagic
	s.uvarint() // seq
	n := s.uvarint()
	for i := uint64(0); i < n && s.err == nil; i++ {
		s.string() // key
		s.varint() // revision
		s.uvarint()
		s.varint() // expires
		s.string() // value
		if !v1 {
			flags := s.byte()
			if flags&8 != 0 {
				s.string()
			}
			if flags&16 != 0 {
				s.string()
			}
			if flags&32 != 0 && v3 {
				s.string()
				s.string()
			}
		}
	}
	m := s.uvarint()
	for i := uint64(0); i < m && s.err == nil; i++ { // as appendIdem
		s.string()
		s.string()
		s.varint()
		s.string()
		s.varint()
		s.uvarint()
		s.string()
		s.uvarint()
	}
	s.bytes(4) // CRC
	if s.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, s.err)
	}
	return buf.Bytes(), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// restoreBlobs reads the blob section, if r holds one, into blobs and checks it carries every
// blob of f. Each blob is durable (BlobStore.Put) before the next is read, and its sha256 is
// verified.
func restoreBlobs(r *bufio.Reader, f frozen, blobs BlobStore) error {
	sums, keyOf, err := f.blobSums()
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(sums))
	for _, s := range sums {
		want[s] = true
	}
	if _, err := r.Peek(1); err == io.EOF {
		if len(sums) > 0 {
			return fmt.Errorf("%w: the file of %s (sha256 %s) is not in the backup: a snapshot without its blob section",
				ErrBadSnapshot, keyOf[sums[0]], sums[0])
		}
		return nil // a plain snapshot
	} else if err != nil {
		return err
	}
	crc := crc32.New(castagnoli)
	sr := &teeReader{r: r, tee: crc}
	if magic := sr.bytes(len(blobSectionMagic)); sr.err == nil && string(magic) != blobSectionMagic {
		return fmt.Errorf("%w: %d bytes after the snapshot that are no blob section", ErrBadSnapshot, len(magic))
	}
	var count uint64
	prev := ""
	for sr.err == nil {
		marker := sr.byte()
		if sr.err != nil || marker == blobEnd {
			break
		}
		if marker != blobMarker {
			return fmt.Errorf("%w: blob section: unknown marker %#x", ErrBadSnapshot, marker)
		}
		sum := hex.EncodeToString(sr.bytes(sha256.Size))
		size := sr.uvarint()
		if sr.err != nil {
			break
		}
		if sum <= prev {
			return fmt.Errorf("%w: blob section: blob %s out of order", ErrBadSnapshot, sum)
		}
		prev = sum
		if !want[sum] {
			return fmt.Errorf("%w: blob section: blob %s is not referred to by the snapshot", ErrBadSnapshot, sum)
		}
		if err := restoreBlob(sr, blobs, sum, size); err != nil {
			return err
		}
		delete(want, sum)
		count++
	}
	n := sr.uvarint()
	sum := crc.Sum32()
	trailer := sr.bytes(4)
	if sr.err != nil {
		return fmt.Errorf("%w: blob section: %v", ErrBadSnapshot, sr.err)
	}
	if n != count {
		return fmt.Errorf("%w: blob section: it counts %d blobs and holds %d", ErrBadSnapshot, n, count)
	}
	if binary.LittleEndian.Uint32(trailer) != sum {
		return fmt.Errorf("%w: blob section: checksum mismatch", ErrBadSnapshot)
	}
	if _, err := r.Peek(1); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: bytes after the blob section", ErrBadSnapshot)
		}
		return err
	}
	for _, s := range sums {
		if want[s] {
			return fmt.Errorf("%w: the file of %s (sha256 %s) is not in the backup", ErrBadSnapshot, keyOf[s], s)
		}
	}
	return nil
}

// restoreBlob streams one blob of size bytes into blobs, verifying that its sha256 is sum.
func restoreBlob(sr *teeReader, blobs BlobStore, sum string, size uint64) error {
	n := int64(min(size, 1<<62))
	got, stored, err := blobs.Put(io.LimitReader(sr, n), n)
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case err != nil:
		return fmt.Errorf("%w: blob section: blob %s: %v", ErrBadSnapshot, sum, noEOF(err))
	case stored < n:
		return fmt.Errorf("%w: blob section: blob %s: %v", ErrBadSnapshot, sum, io.ErrUnexpectedEOF)
	case got != sum:
		return fmt.Errorf("%w: blob section: blob %s: sha256 mismatch (the bytes hash to %s)", ErrBadSnapshot, sum, got)
	}
	return nil
}

// teeReader reads the primitives of a backup from r and writes every byte it reads to tee: the
// bytes of a snapshot, or the checksum of the blob section. The first error sticks.
type teeReader struct {
	r   *bufio.Reader
	tee io.Writer
	err error
	one [1]byte // what ReadByte passes to tee, without an allocation per byte
}

func (s *teeReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.tee.Write(p[:n])
	return n, err
}

func (s *teeReader) ReadByte() (byte, error) {
	if s.err != nil {
		return 0, s.err
	}
	c, err := s.r.ReadByte()
	if err != nil {
		s.err = noEOF(err)
		return 0, s.err
	}
	s.one[0] = c
	s.tee.Write(s.one[:])
	return c, nil
}

func (s *teeReader) byte() byte {
	c, _ := s.ReadByte()
	return c
}

func (s *teeReader) uvarint() uint64 {
	v, err := binary.ReadUvarint(s)
	if err != nil && s.err == nil {
		s.err = noEOF(err)
	}
	return v
}

func (s *teeReader) varint() int64 {
	v, err := binary.ReadVarint(s)
	if err != nil && s.err == nil {
		s.err = noEOF(err)
	}
	return v
}

// bytes reads and returns n bytes, a small fixed count (a magic, a hash, a checksum).
func (s *teeReader) bytes(n int) []byte {
	if s.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s, b); err != nil {
		s.err = noEOF(err)
		return nil
	}
	return b
}

// string passes over a length-prefixed string. It streams: a damaged length costs no more memory
// than the input holds.
func (s *teeReader) string() {
	n := s.uvarint()
	if s.err != nil {
		return
	}
	if _, err := io.CopyN(s.tee, s.r, int64(min(n, 1<<62))); err != nil {
		s.err = noEOF(err)
	}
}
