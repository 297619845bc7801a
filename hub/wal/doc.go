// Package wal is Statehub's write-ahead log. It stores opaque records, each tagged with a strictly
// increasing uint64 index (the hub's global seq), and knows bytes, not keys.
//
// # On-disk format
//
// The log is a directory of segment files named after the index of their first record:
// "<16 lower-case hex digits>.wal", e.g. 000000000000002a.wal. A segment is a sequence of records
// with nothing between them; all integers are little endian:
//
//	offset  size  field
//	0       4     length   uint32, bytes of index+data (8 <= length <= MaxRecordSize)
//	4       4     crc      uint32, CRC32C (Castagnoli) of the 8 index bytes followed by data
//	8       8     index    uint64
//	16      n     data     n = length-8 bytes
//
// The last segment's file may go on after its last record with zeros, to the end of the file: the
// space the log grows it by ahead of its writes (see Grown space). Every other segment ends with
// its last record.
//
// Other files in the directory are ignored, except that Open removes the temporary file
// ("<name>.broken[.N].tmp") of a .broken copy that a kill interrupted (see RemoveTemps).
//
// # Invariants
//
//   - Indexes strictly increase across the whole log: within a segment, and from one segment to
//     the next. Every record of a segment has index >= the segment's name and < the next
//     segment's name. RemoveBefore relies on this to delete whole segments by name.
//   - Only the last segment is ever appended to. Before a new segment is created the previous one
//     is fsynced and closed, and the directory is fsynced after the creation, so a crash can only
//     tear the end of the last segment.
//   - The last segment is never empty after Open (an empty one is removed durably).
//   - A segment the log stops writing (at a rotation, or Close) is cut back to its last record and
//     fsynced before anything else happens: only the last segment can hold grown space.
//   - After a failed write or fsync the log is failed for good: no later write is attempted and
//     every pending and later Ticket reports the error. An fsync is never retried, because after a
//     failed fsync the kernel may have dropped the dirty pages it was meant to write.
//
// # Recovery
//
// Open reads every segment. A decoder (decoder.go) tells three outcomes apart:
//
//   - clean end: the last record ends exactly at the end of the file, or, in the LAST segment, is
//     followed by zeros alone to the end of the file (grown space, written into from there on);
//   - torn tail: a partial record or a checksum mismatch at the end of the LAST segment with no
//     well-formed record anywhere after it. This is what a crash during a write leaves.
//     Open copies the bytes it cuts off, from the offset of the bad record to the end of the
//     segment, to "<name>.broken" (durably; never the whole segment), truncates the segment at that
//     offset, and logs a warning naming file and offset;
//   - corruption: a bad record followed by a well-formed one, a bad record in a segment that is
//     not the last, or a well-formed record whose index breaks the order. Open returns a
//     *CorruptError naming file and offset (errors.Is(err, ErrCorrupt)), unless
//     Options.AllowRepair, in which case it cuts the log there (keeping a .broken copy of the
//     bytes cut off the segment, and renaming every later segment to a .broken file) and logs an
//     error.
//
// A .broken file is never overwritten: a later one is named "<name>.broken.N". When the copy of a
// torn tail cannot be written (the disk is full), Open still cuts a tail that holds no complete
// record (a partial header, or a record whose length runs past the end of the file or into zeros
// that run to its end): that is a write that never completed, nothing in it can be checked, and
// refusing would keep a server on a full disk from starting. It logs an error saying that no copy
// was kept. Any other tail (a whole record whose checksum fails, or a bad length field), and any
// repair of corruption, is refused with the copy's error, leaving the files as they were, until
// there is room for the copy: the size of the tail, which is at most 2*MaxRecordSize (a longer
// one is corruption).
//
// The decoder checks a length field against the bytes left in the file and MaxRecordSize before it
// allocates, so a corrupt length never causes a large allocation.
//
// # Concurrency model
//
// Append is called by the hub while it holds its own state lock, which fixes the order of
// records. Append only encodes the record into an in-memory buffer under the log's short mutex,
// so it never waits on the disk. Each round takes the whole buffer, writes it (rotating segments as
// needed) and, under SyncAlways, fsyncs once and completes the round's shared Ticket; records
// appended while a round is in progress go into the next round. This is the group commit:
// concurrent writers share one fsync.
//
// Under SyncAlways the rounds are run by the writers that wait (leader-based group commit): one
// that waits while no round runs writes and fsyncs the buffer itself, on its own goroutine, so a
// lone writer's record is durable with no hand-off to another goroutine. Others wait; when a round
// ends, its leader hands the lead to one waiter of the next round, if records were appended
// meanwhile. One round runs at a time: the leader alone owns the segment files. Records appended
// with nobody waiting stay buffered until a Wait, Sync or Close. Under SyncInterval and SyncNone
// one writer goroutine per Log does all segment I/O, fsyncing on a ticker (SyncInterval) or only
// on Sync, rotation and Close (SyncNone).
// Append never blocks, so the buffer holds whatever has not been written yet: under SyncAlways
// that is about one round, because callers wait; under the other modes it grows only if the disk
// cannot keep up with the write rate.
//
// Ticket.Wait may be called from any goroutine, outside the hub's lock. Replay runs before the
// first Append. RemoveBefore, Sync, Stats and Close may be called from any goroutine at any time.
//
// # Grown space
//
// Before writing records past the end of the active segment's file, the log extends the file
// (Truncate, which allocates no block) by about 1 MiB, within SegmentSize, and then writes into
// it at its own offset. An fsync of records written within a file's size need not record a new
// size: on ext4 a durable write takes about 0.7 of the time (BenchmarkAppendWaitOne). A crash
// leaves zeros after the last record written; Open takes them for the end, and the log writes on
// from there. Close cuts them off, so a log closed cleanly ends with its last record.
//
// Snapshots are the hub's business; WriteFileAtomic is the helper for writing them safely,
// RemoveTemps removes what a kill during one leaves behind, and FS is the seam through which
// tests inject faults and crashes (see package waltest).
package wal
