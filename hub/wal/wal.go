package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by this package. Test with errors.Is; they are wrapped with context.
var (
	// ErrCorrupt: a segment holds a bad record before its tail, or in a segment that is not the
	// last. Open refuses to start unless Options.AllowRepair is set. See CorruptError.
	ErrCorrupt = errors.New("wal: corrupt log")
	// ErrSyncFailed: writing or fsyncing the log failed. The log is failed for good: every pending
	// and later Ticket, Sync and Close reports it. Reopen the log to recover.
	ErrSyncFailed = errors.New("wal: write or sync failed")
	// ErrClosed: the log has been closed.
	ErrClosed = errors.New("wal: log closed")
	// ErrOutOfOrder: Append was given an index not greater than the previous one. The record is
	// not added; the log stays usable.
	ErrOutOfOrder = errors.New("wal: index not increasing")
	// ErrTooLarge: Append was given more data than a record can hold (MaxRecordSize). The record
	// is not added; the log stays usable.
	ErrTooLarge = errors.New("wal: record too large")
	// ErrReplayAfterAppend: Replay was called after Append.
	ErrReplayAfterAppend = errors.New("wal: replay after append")
	// ErrInvalidOptions: Options failed validation in Open, or ParseSyncMode got an unknown mode.
	ErrInvalidOptions = errors.New("wal: invalid options")
)

// CorruptError reports a bad record that is not a repairable torn tail. errors.Is(err, ErrCorrupt)
// holds for it; Unwrap returns the reason (checksum mismatch, bad length, ...).
type CorruptError struct {
	File   string // path of the segment file
	Offset int64  // byte offset of the first bad record in File
	Err    error  // why the record is bad
}

// Error names the file and the offset.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt log: %s at offset %d: %v", e.File, e.Offset, e.Err)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the reason.
func (e *CorruptError) Unwrap() error { return e.Err }

// SyncMode says when an appended record counts as durable.
type SyncMode int

const (
	// SyncAlways: Ticket.Wait returns only after an fsync covering the record (group commit).
	SyncAlways SyncMode = iota
	// SyncInterval: Wait returns at once; the log is fsynced at least every SyncInterval, so a
	// machine crash loses at most about that much acknowledged data. A process crash loses only
	// what was still buffered (a few milliseconds).
	SyncInterval
	// SyncNone: Wait returns at once; the log is written promptly but fsynced only on Sync,
	// segment rotation and Close.
	SyncNone
)

// String returns the name ParseSyncMode accepts.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// ParseSyncMode parses "always", "interval" or "none".
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("%w: sync mode %q (want always, interval or none)", ErrInvalidOptions, s)
}

// MarshalText implements encoding.TextMarshaler with String.
func (m SyncMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSyncMode.
func (m *SyncMode) UnmarshalText(b []byte) error {
	v, err := ParseSyncMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Defaults for Options.
const (
	DefaultSegmentSize  = 64 << 20
	DefaultSyncInterval = time.Second
)

// Options configures Open. Zero values take the documented defaults.
type Options struct {
	// Dir holds the segment files. Required; created if missing.
	Dir string
	// Sync is the durability mode. Default SyncAlways.
	Sync SyncMode
	// SegmentSize: a new segment is started before a record that would take the current one past
	// this many bytes. Default DefaultSegmentSize (64 MiB).
	SegmentSize int64
	// SyncInterval is the fsync period for SyncInterval. Default DefaultSyncInterval (1s).
	SyncInterval time.Duration
	// FS is the file layer. Default OSFS.
	FS FS
	// Logger receives repair and failure messages. Default slog.Default().
	Logger *slog.Logger
	// AllowRepair makes Open cut the log at corruption (keeping .broken copies of what it cuts)
	// instead of refusing to start. Records after the corruption are lost. Default false.
	// Torn tails are always repaired.
	AllowRepair bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("%w: Dir is required", ErrInvalidOptions)
	}
	if o.Sync < SyncAlways || o.Sync > SyncNone {
		return o, fmt.Errorf("%w: %v", ErrInvalidOptions, o.Sync)
	}
	if o.SegmentSize < 0 || o.SyncInterval < 0 {
		return o, fmt.Errorf("%w: negative SegmentSize or SyncInterval", ErrInvalidOptions)
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// Ticket is the durability receipt of one Append (or Sync). Under SyncAlways one Ticket is shared
// by every record of a group commit. A Ticket may be waited on by any number of goroutines.
type Ticket struct {
	done chan struct{}
	err  error // set before done is closed

	// Under SyncAlways, for the next group commit (Log.cur): its waiters write and fsync it
	// themselves (Log.await).
	log  *Log
	lead chan struct{} // capacity 1: the lead, handed to one waiter once the round before ends
}

func newTicket() *Ticket { return &Ticket{done: make(chan struct{})} }

// newRoundLocked returns a Ticket for the next group commit, to be l.cur.
func (l *Log) newRoundLocked() *Ticket {
	t := newTicket()
	if l.opts.Sync == SyncAlways {
		t.log, t.lead = l, make(chan struct{}, 1)
	}
	return t
}

func doneTicket(err error) *Ticket {
	t := newTicket()
	t.finish(err)
	return t
}

// okTicket is returned by Append in the modes that acknowledge at once.
var okTicket = doneTicket(nil)

func (t *Ticket) finish(err error) {
	t.err = err
	close(t.done)
}

// Wait blocks until the record is durable according to the sync mode (see Append) and returns
// nil, or returns the error that prevented it (wrapping ErrSyncFailed, ErrClosed, ErrOutOfOrder or
// ErrTooLarge). A nil return under SyncAlways means the record survives a crash. Under SyncAlways
// the waiter may write and fsync the record itself (see the package documentation).
func (t *Ticket) Wait() error {
	if t.log != nil {
		t.log.await(t)
	}
	<-t.done
	return t.err
}

func (t *Ticket) completed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Done returns a channel closed when Wait would not block, for use in select.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Stats are counters since Open, for metrics.
type Stats struct {
	Records   uint64 // records accepted by Append
	Bytes     uint64 // encoded bytes written to segment files
	Syncs     uint64 // fsyncs of segment files; Records/Syncs is the group-commit batch size
	LastIndex uint64 // index of the last record appended (or found at Open)
	Segments  int    // segment files on disk
	SyncErr   error  // the error that failed the log, or nil
}

// cut marks where, in the append buffer, a new segment starts.
type cut struct {
	off   int    // byte offset in the buffer
	first uint64 // index of the segment's first record
}

// segment is one segment file on disk.
type segment struct {
	first uint64 // index in the name: no record in it is lower, every record of the previous is lower
	path  string
	// size is the bytes of its records, as Open found them: the last segment's file may be longer,
	// with zeros after them (its grown space).
	size int64
}

// Log is a write-ahead log. See the package documentation for the concurrency model.
type Log struct {
	opts Options
	fs   FS
	log  *slog.Logger

	mu        sync.Mutex
	buf       []byte  // encoded records the writer has not taken yet
	cuts      []cut   // segment starts within buf
	spare     []byte  // a drained buffer for reuse
	cur       *Ticket // the next group commit (SyncAlways waiters, Sync callers)
	leading   bool    // SyncAlways: a round runs, or its lead waits in cur.lead for a waiter
	led       *sync.Cond
	syncReq   bool   // a Sync caller wants an fsync in the next round
	kicked    bool   // the writer has been signalled and not yet taken buf
	lastIndex uint64 // last appended index
	segSize   int64  // bytes in the newest segment, including buffered ones
	haveSeg   bool   // a newest segment exists (on disk or as a pending cut)
	appended  bool   // Append has been called: Replay is no longer allowed
	records   uint64
	failErr   error // sticky: set once, never cleared
	closed    bool

	kick   chan struct{} // capacity 1: buf has data or cur has waiters
	quit   chan struct{} // closed by Close
	exited chan struct{} // closed by the writer when it has finished
	// closeErr is written by the writer before closing exited.
	closeErr error

	// Owned by the writer goroutine, or under SyncAlways by the leader (and by Open before either).
	active File
	dirty  bool  // active has writes not yet fsynced
	off    int64 // where active's next record goes: the end of its records
	end    int64 // active's size: off, or more once grown (grow)

	removeMu sync.Mutex // serializes RemoveBefore and Replay
	segMu    sync.Mutex
	segs     []segment // oldest first; the last one is the active segment

	syncs  atomic.Uint64
	bytes  atomic.Uint64
	synced atomic.Uint64 // the index of the last record fsynced
}

// Open opens the log in opts.Dir, creating the directory if needed. It reads every segment,
// repairs a torn tail of the last segment (keeping a .broken copy and logging it) and returns a
// *CorruptError for any other bad record, unless opts.AllowRepair. It then starts the background
// writer. The caller should call Replay, then Append, and finally Close.
func Open(opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{
		opts:   opts,
		fs:     opts.FS,
		log:    opts.Logger,
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	if err := l.fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create dir: %w", err)
	}
	st, err := l.recover()
	if err != nil {
		return nil, err
	}
	l.lastIndex = st.lastIndex
	if n := len(l.segs); n > 0 {
		last := l.segs[n-1]
		f, err := l.fs.OpenFile(last.path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("wal: open %s: %w", last.path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: stat %s: %w", last.path, err)
		}
		l.active = f
		l.haveSeg = true
		l.segSize = last.size
		l.off, l.end = last.size, fi.Size()
	}
	l.led = sync.NewCond(&l.mu)
	if opts.Sync != SyncAlways {
		go l.run()
	}
	return l, nil
}

// Append adds a record with the given index and data. Indexes must strictly increase across the
// life of the log (including records found at Open). Append only encodes the record into memory:
// it does no I/O and never blocks on the disk, so it may be called under the caller's own lock,
// and records reach the file in Append order. data may be reused once Append returns.
//
// The returned Ticket's Wait reports durability: under SyncAlways after an fsync covering this
// record; under SyncInterval and SyncNone at once. A record whose Append fails (ErrOutOfOrder,
// ErrTooLarge, ErrClosed, or a failed log) is not added, and its Ticket reports the error.
func (l *Log) Append(index uint64, data []byte) *Ticket {
	if len(data) > MaxRecordSize-indexSize {
		return doneTicket(fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data)))
	}
	size := int64(recordSize(len(data)))

	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return doneTicket(ErrClosed)
	case l.failErr != nil:
		return doneTicket(l.failErr)
	case index <= l.lastIndex:
		return doneTicket(fmt.Errorf("%w: %d after %d", ErrOutOfOrder, index, l.lastIndex))
	}
	l.appended = true
	if !l.haveSeg || (l.segSize > 0 && l.segSize+size > l.opts.SegmentSize) {
		l.cuts = append(l.cuts, cut{off: len(l.buf), first: index})
		l.haveSeg = true
		l.segSize = 0
	}
	l.buf = appendRecord(l.buf, index, data)
	l.segSize += size
	l.lastIndex = index
	l.records++
	if l.opts.Sync != SyncAlways {
		l.signalLocked()
		return okTicket
	}
	if l.cur == nil {
		l.cur = l.newRoundLocked()
	}
	return l.cur
}

// signalLocked wakes the writer unless it has already been woken for the current buffer.
func (l *Log) signalLocked() {
	if l.kicked {
		return
	}
	l.kicked = true
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Sync writes everything appended so far and fsyncs it, in any sync mode. It returns the log's
// failure (wrapping ErrSyncFailed) if the log has failed, and ErrClosed after Close.
func (l *Log) Sync() error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.failErr != nil:
		l.mu.Unlock()
		return l.failErr
	}
	if l.cur == nil {
		l.cur = l.newRoundLocked()
	}
	t := l.cur
	l.syncReq = true
	if l.opts.Sync != SyncAlways {
		l.signalLocked()
	}
	l.mu.Unlock()
	return t.Wait()
}

// await returns once t, a SyncAlways group commit, is complete. With no round running its caller
// leads: it runs the round itself, on its own goroutine, with no hand-off to another. Else it
// waits for the running round to end; the leader of a round hands the lead to one waiter of the
// next group commit, if records were appended meanwhile, or gives it up.
func (l *Log) await(t *Ticket) {
	l.mu.Lock()
	if t.completed() {
		l.mu.Unlock()
		return
	}
	if !l.leading {
		l.leading = true
		l.mu.Unlock()
		l.lead()
		return
	}
	l.mu.Unlock()
	select {
	case <-t.done:
	case <-t.lead: // t is still l.cur: no round has run since the lead was left in it
		l.lead()
	}
}

// lead runs one round as the leader, then hands the lead on.
func (l *Log) lead() {
	l.round(false)
	l.mu.Lock()
	if l.cur != nil {
		l.cur.lead <- struct{}{} // never blocks: each group commit is handed the lead once
	} else {
		l.leading = false
	}
	l.led.Broadcast()
	l.mu.Unlock()
}

// takeLeadLocked makes the caller the leader under SyncAlways: it waits until no round runs, and
// takes a lead left for waiters that did not come.
func (l *Log) takeLeadLocked() {
	for l.leading {
		if l.cur != nil {
			select {
			case <-l.cur.lead:
				return
			default:
			}
		}
		l.led.Wait()
	}
	l.leading = true
}

// Close writes and fsyncs everything appended, closes the files and stops the writer. Pending
// Tickets are completed first. It returns the log's failure if the log had failed. Later calls
// return the same result; Append after Close returns a Ticket with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	first := !l.closed
	if first {
		l.closed = true
		close(l.quit)
	}
	if first && l.opts.Sync == SyncAlways {
		// No writer goroutine: the last round and the closing are the caller's, as leader.
		l.takeLeadLocked()
		l.mu.Unlock()
		l.finalRound()
		close(l.exited)
	} else {
		l.mu.Unlock()
	}
	<-l.exited
	return l.closeErr
}

// Synced returns the index of the last record known durable: every record up to it has been
// fsynced (0 when none has since Open).
func (l *Log) Synced() uint64 { return l.synced.Load() }

// Stats returns a snapshot of the counters. Safe to call at any time, including after Close.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	s := Stats{Records: l.records, LastIndex: l.lastIndex, SyncErr: l.failErr}
	l.mu.Unlock()
	l.segMu.Lock()
	s.Segments = len(l.segs)
	l.segMu.Unlock()
	s.Syncs = l.syncs.Load()
	s.Bytes = l.bytes.Load()
	return s
}

// Replay calls fn for every record with index > after, in index order. It is meant to be called
// after Open and before the first Append (it returns ErrReplayAfterAppend otherwise). data is owned
// by fn; fn must not call methods of l. If fn returns an error, Replay stops and returns it. A bad record found now (the files
// changed since Open) is reported as a *CorruptError.
func (l *Log) Replay(after uint64, fn func(index uint64, data []byte) error) error {
	l.mu.Lock()
	appended, closed := l.appended, l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if appended {
		return ErrReplayAfterAppend
	}
	l.removeMu.Lock()
	defer l.removeMu.Unlock()
	l.segMu.Lock()
	segs := append([]segment(nil), l.segs...)
	l.segMu.Unlock()

	var prev uint64
	for i, s := range segs {
		// Every record of segment i is below the next segment's first index.
		if i+1 < len(segs) && segs[i+1].first > 0 && segs[i+1].first-1 <= after {
			continue
		}
		if err := l.replaySegment(s, &prev, after, fn); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) replaySegment(s segment, prev *uint64, after uint64, fn func(uint64, []byte) error) error {
	f, err := l.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: replay: %w", err)
	}
	defer f.Close()
	// The last segment's file may hold zeros after its records (grow): only the records Open
	// found are read. A file that shrank since fails the decoder as a bad record.
	d := newDecoder(newBufReader(f, s.size), s.size)
	for {
		off := d.off
		index, data, err := d.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var bad *badRecordError
			if errors.As(err, &bad) {
				return &CorruptError{File: s.path, Offset: bad.offset, Err: bad.reason}
			}
			return fmt.Errorf("wal: replay %s: %w", s.path, err)
		}
		if index <= *prev || index < s.first {
			return &CorruptError{File: s.path, Offset: off, Err: errIndexOrder}
		}
		*prev = index
		if index > after {
			if err := fn(index, data); err != nil {
				return err
			}
		}
	}
}

// RemoveBefore deletes the segment files all of whose records have index <= index, oldest first,
// and fsyncs the directory. Call it once a durable snapshot covers index. The active (newest)
// segment is never removed, so the last record always stays. A crash part-way leaves a
// contiguous suffix of segments.
func (l *Log) RemoveBefore(index uint64) error {
	l.removeMu.Lock()
	defer l.removeMu.Unlock()
	l.segMu.Lock()
	var victims []segment
	for i := 0; i+1 < len(l.segs); i++ {
		next := l.segs[i+1].first
		if next > 0 && next-1 > index {
			break
		}
		victims = append(victims, l.segs[i])
	}
	l.segMu.Unlock()
	if len(victims) == 0 {
		return nil
	}
	removed := 0
	var err error
	for _, s := range victims {
		if err = l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			break
		}
		err = nil
		removed++
	}
	l.segMu.Lock()
	l.segs = append(l.segs[:0:0], l.segs[removed:]...)
	l.segMu.Unlock()
	if err != nil {
		return fmt.Errorf("wal: remove segment: %w", err)
	}
	if err := l.fs.SyncDir(l.opts.Dir); err != nil {
		return fmt.Errorf("wal: remove segments: sync dir: %w", err)
	}
	return nil
}

// run is the writer goroutine of SyncInterval and SyncNone: it takes the append buffer, writes it
// (rotating segments), fsyncs when the mode or a Sync caller asks, and completes the batch's
// Ticket.
func (l *Log) run() {
	defer close(l.exited)
	var tick <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.kick:
			l.round(false)
		case <-tick:
			l.round(true)
		case <-l.quit:
			l.finalRound()
			return
		}
	}
}

// finalRound writes and fsyncs what is left, trims and closes the active segment and sets
// closeErr.
func (l *Log) finalRound() {
	l.round(true)
	l.mu.Lock()
	err := l.failErr
	l.mu.Unlock()
	if err == nil && l.active != nil {
		if terr := l.trim(); terr != nil {
			err = fmt.Errorf("wal: close: %w", terr)
		}
	}
	if l.active != nil {
		if cerr := l.active.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("wal: close: %w", cerr)
		}
		l.active = nil
	}
	l.closeErr = err
}

// maxSpare bounds the buffer kept for reuse between rounds.
const maxSpare = 4 << 20

// round runs one group commit.
func (l *Log) round(forceSync bool) {
	l.mu.Lock()
	buf, cuts := l.buf, l.cuts
	l.buf, l.cuts = l.spare[:0], nil
	l.spare = nil
	t := l.cur
	l.cur = nil
	last := l.lastIndex // buf ends with it
	syncNow := forceSync || l.syncReq || (l.opts.Sync == SyncAlways && t != nil)
	l.syncReq = false
	l.kicked = false
	err := l.failErr
	l.mu.Unlock()

	if err == nil {
		err = l.write(buf, cuts)
		if err == nil && syncNow {
			if err = l.syncActive(); err == nil {
				l.synced.Store(last)
			}
		}
		if err != nil {
			err = l.fail(err)
		}
	}
	if t != nil {
		t.finish(err)
	}
	if cap(buf) <= maxSpare {
		l.mu.Lock()
		if l.spare == nil {
			l.spare = buf[:0]
		}
		l.mu.Unlock()
	}
}

// fail makes the log permanently failed with cause and completes the next batch with the error.
func (l *Log) fail(cause error) error {
	err := fmt.Errorf("%w: %w", ErrSyncFailed, cause)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr == nil {
		l.failErr = err
		l.log.Error("wal: log failed; no further writes are acknowledged", "dir", l.opts.Dir, "err", cause)
	}
	if l.cur != nil {
		l.cur.finish(l.failErr)
		l.cur = nil
	}
	l.buf, l.cuts = nil, nil
	return l.failErr
}

// write appends buf to the segments, starting a new segment at each cut.
func (l *Log) write(buf []byte, cuts []cut) error {
	pos := 0
	for _, c := range cuts {
		if err := l.writeActive(buf[pos:c.off]); err != nil {
			return err
		}
		if err := l.rotate(c.first); err != nil {
			return err
		}
		pos = c.off
	}
	return l.writeActive(buf[pos:])
}

func (l *Log) writeActive(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if l.off+int64(len(b)) > l.end {
		l.grow(int64(len(b)))
	}
	n, err := l.active.WriteAt(b, l.off)
	l.off += int64(n)
	l.end = max(l.end, l.off)
	l.bytes.Add(uint64(n))
	if n > 0 {
		l.dirty = true
	}
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	return err
}

func (l *Log) syncActive() error {
	if l.active == nil || !l.dirty {
		return nil
	}
	l.syncs.Add(1)
	if err := l.active.Sync(); err != nil {
		return err
	}
	l.dirty = false
	return nil
}

// growStep is how far grow extends the active segment's file ahead of its writes.
const growStep = 1 << 20

// grow extends the active segment's file (sparsely: no block is written) to hold need bytes more
// and about growStep after them, but not past SegmentSize unless need does. Records are then
// written within the file's size, so an fsync covering them does not also record a new size
// (BenchmarkAppendWaitOne). A file system that cannot extend a file gets its records appended.
func (l *Log) grow(need int64) {
	size := max(l.off+need, min(l.off+need+growStep, l.opts.SegmentSize))
	if l.active.Truncate(size) == nil {
		l.end = size
	}
}

// trim cuts the active segment's file back to its records and fsyncs it: a segment the log stops
// writing (at a rotation, or Close) ends with its last record.
func (l *Log) trim() error {
	if l.end > l.off {
		if err := l.active.Truncate(l.off); err != nil {
			return err
		}
		l.end = l.off
		l.dirty = true
	}
	return l.syncActive()
}

// rotate trims, fsyncs and closes the active segment and makes a new one, durably, for records
// from first on. The old segment is complete on disk before the new one exists, so only the last
// segment can ever have a torn tail or grown space.
func (l *Log) rotate(first uint64) error {
	if l.active != nil {
		if err := l.trim(); err != nil {
			return err
		}
		if err := l.active.Close(); err != nil {
			return err
		}
		l.active = nil
	}
	path := filepath.Join(l.opts.Dir, segmentName(first))
	f, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	l.active, l.off, l.end = f, 0, 0
	l.segMu.Lock()
	l.segs = append(l.segs, segment{first: first, path: path})
	l.segMu.Unlock()
	return l.fs.SyncDir(l.opts.Dir)
}
