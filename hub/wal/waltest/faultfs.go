// Package waltest provides an in-memory wal.FS for tests that injects faults and simulates
// crashes. It is meant for the tests of package wal and of the packages that use it (the hub's
// snapshot and recovery tests).
//
// # Crash model
//
// FS tracks, per file, the bytes made durable by the last successful Sync, and, for the
// namespace, the creates, renames and removes made durable by SyncDir. A crash (Crash, or the
// n-th mutating operation after CrashAfter(n)) computes the disk a reboot would see:
//
//   - Namespace: the durable namespace plus a random prefix of the later namespace changes, in
//     order (as a journaling file system commits them). SyncDir(dir) makes every change up to the
//     last one touching dir durable. A rename or create not followed by SyncDir may be lost.
//   - Contents: each surviving file keeps its synced bytes plus a random prefix of the bytes
//     written after them, or written over zeros that end its synced bytes (a file extended by
//     Truncate, then written into), with the zeros after that prefix. If the file was truncated or
//     overwritten elsewhere below the synced length since the last Sync, it keeps either the
//     synced contents or the current ones, at random.
//   - Directories are durable as soon as MkdirAll returns, and their removal (Remove of an empty
//     directory) as soon as it returns.
//
// After a crash every operation on the old FS and its open files fails with ErrCrashed (the
// process is dead); Crash returns a fresh FS holding the surviving disk, on which tests reopen.
// All randomness comes from the seed given to New, so a single-goroutine run is reproducible.
//
// # Full disk
//
// SetCapacity bounds the bytes all files hold together. A write past it writes what fits and fails
// with syscall.ENOSPC, as a full disk does; a truncate that would grow a file past it fails the
// same way. Shrinking or removing a file frees space. The FS a crash returns has no bound.
//
// FS is safe for concurrent use.
package waltest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/statehub/statehub/hub/wal"
)

// ErrCrashed is returned by every operation on an FS, or a file of it, after it has crashed.
var ErrCrashed = errors.New("waltest: file system crashed")

// Op names an FS or File operation, for fault hooks.
type Op int

// The operations. OpCreate is an OpenFile whose flags may create or truncate the file.
const (
	OpOpen Op = iota
	OpCreate
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpStat
	OpClose
	OpRemove
	OpRename
	OpReadDir
	OpMkdir
	OpSyncDir
)

var opNames = [...]string{"open", "create", "read", "write", "sync", "truncate", "stat", "close",
	"remove", "rename", "readdir", "mkdir", "syncdir"}

// String returns the operation's name.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op?"
}

// mutates reports whether the operation changes the disk (and so counts for CrashAfter).
func (o Op) mutates() bool {
	switch o {
	case OpCreate, OpWrite, OpSync, OpTruncate, OpRemove, OpRename, OpSyncDir:
		return true
	}
	return false
}

type inode struct {
	data    []byte
	durable []byte // contents at the last Sync; may share data's array (see writeAt)
}

type nsKind int

const (
	nsCreate nsKind = iota
	nsRemove
	nsRename
)

type nsOp struct {
	kind     nsKind
	from, to string
	ino      *inode
}

// FS is an in-memory wal.FS with fault injection and crash simulation.
type FS struct {
	mu      sync.Mutex
	rng     *rand.Rand
	dirs    map[string]bool
	files   map[string]*inode // the current namespace
	durable map[string]*inode // the namespace a crash keeps for sure
	pending []nsOp            // namespace changes not yet durable, in order
	fault   func(op Op, name string) error
	crashIn int // mutating operations until the armed crash; 0 = none armed
	crashed bool
	after   *FS // the disk after the crash

	bounded  bool  // SetCapacity set a bound
	capacity int64 // the bound: bytes all files may hold together
}

var _ wal.FS = (*FS)(nil)

// New returns an empty FS whose crash decisions derive from seed.
func New(seed uint64) *FS {
	return &FS{
		rng:     rand.New(rand.NewPCG(seed, 0x5eed)),
		dirs:    map[string]bool{"/": true, ".": true},
		files:   map[string]*inode{},
		durable: map[string]*inode{},
	}
}

// SetCapacity bounds the bytes all files may hold together at n, or removes the bound if n < 0.
// Files already holding more keep their bytes; only growth fails.
func (fsys *FS) SetCapacity(n int64) {
	fsys.mu.Lock()
	fsys.bounded, fsys.capacity = n >= 0, n
	fsys.mu.Unlock()
}

// Used returns the bytes all files hold together (what SetCapacity bounds).
func (fsys *FS) Used() int64 {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.usedLocked()
}

func (fsys *FS) usedLocked() int64 {
	var n int64
	for _, ino := range fsys.files {
		n += int64(len(ino.data))
	}
	return n
}

// roomLocked returns the size ino may grow to within the capacity.
func (fsys *FS) roomLocked(ino *inode) int64 {
	if !fsys.bounded {
		return math.MaxInt64
	}
	return int64(len(ino.data)) + max(fsys.capacity-fsys.usedLocked(), 0)
}

// SetFault installs f, called before every operation with the operation and the path (for File
// operations, the path the file was opened with). A non-nil return fails the operation with that
// error and leaves the FS unchanged. f may block (to hold a writer at a chosen point); it is not
// called with any lock held. SetFault(nil) removes it.
func (fsys *FS) SetFault(f func(op Op, name string) error) {
	fsys.mu.Lock()
	fsys.fault = f
	fsys.mu.Unlock()
}

// CrashAfter arms a crash: the n-th mutating operation from now (create, write, sync, truncate,
// remove, rename, syncdir; n >= 1) crashes the FS instead of running, and fails with ErrCrashed.
func (fsys *FS) CrashAfter(n int) {
	fsys.mu.Lock()
	fsys.crashIn = max(n, 1)
	fsys.mu.Unlock()
}

// Crashed reports whether the FS has crashed.
func (fsys *FS) Crashed() bool {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.crashed
}

// Crash crashes the FS now, if it has not crashed already, and returns the FS a reboot would see.
// Calling it again returns the same FS.
func (fsys *FS) Crash() *FS {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if !fsys.crashed {
		fsys.crashLocked()
	}
	return fsys.after
}

func (fsys *FS) crashLocked() {
	fsys.crashed = true
	ns := maps.Clone(fsys.durable)
	k := fsys.rng.IntN(len(fsys.pending) + 1)
	for _, op := range fsys.pending[:k] {
		op.apply(ns)
	}
	after := New(fsys.rng.Uint64())
	for d := range fsys.dirs {
		after.dirs[d] = true
	}
	names := make([]string, 0, len(ns))
	for name := range ns {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic use of rng
	for _, name := range names {
		ino := fsys.survive(ns[name])
		after.files[name] = ino
		after.durable[name] = ino
	}
	fsys.after = after
}

// survive returns the contents of ino after a crash.
func (fsys *FS) survive(ino *inode) *inode {
	d, s := ino.data, ino.durable
	p := 0 // the first byte where the current contents differ from the synced ones
	for p < min(len(d), len(s)) && d[p] == s[p] {
		p++
	}
	var keep []byte
	switch {
	case len(d) >= len(s) && !slices.ContainsFunc(s[p:], func(b byte) bool { return b != 0 }):
		// Bytes were only added after the synced ones, or written over their zeros (space a file
		// was extended by): what survives of them is a prefix, and zeros after it.
		n := p + fsys.rng.IntN(len(d)-p+1)
		keep = append(d[:n:n], s[min(n, len(s)):]...)
	case fsys.rng.IntN(2) == 0:
		keep = s
	default:
		keep = d
	}
	keep = bytes.Clone(keep)
	if keep == nil {
		keep = []byte{}
	}
	return &inode{data: keep, durable: keep[:len(keep):len(keep)]}
}

func (op nsOp) apply(ns map[string]*inode) {
	switch op.kind {
	case nsCreate:
		ns[op.to] = op.ino
	case nsRemove:
		delete(ns, op.from)
	case nsRename:
		if ino, ok := ns[op.from]; ok {
			ns[op.to] = ino
			delete(ns, op.from)
		}
	}
}

// enter runs the fault hook and the crash checks for op; on success it returns with fsys.mu held.
func (fsys *FS) enter(op Op, name string) error {
	fsys.mu.Lock()
	fault := fsys.fault
	fsys.mu.Unlock()
	if fault != nil {
		if err := fault(op, name); err != nil {
			return &fs.PathError{Op: op.String(), Path: name, Err: err}
		}
	}
	fsys.mu.Lock()
	if fsys.crashed {
		fsys.mu.Unlock()
		return &fs.PathError{Op: op.String(), Path: name, Err: ErrCrashed}
	}
	if op.mutates() && fsys.crashIn > 0 {
		fsys.crashIn--
		if fsys.crashIn == 0 {
			fsys.crashLocked()
			fsys.mu.Unlock()
			return &fs.PathError{Op: op.String(), Path: name, Err: ErrCrashed}
		}
	}
	return nil
}

func pathErr(op Op, name string, err error) error {
	return &fs.PathError{Op: op.String(), Path: name, Err: err}
}

// OpenFile opens or creates a file. Supported flags: O_RDONLY, O_WRONLY, O_RDWR, O_CREATE,
// O_EXCL, O_TRUNC, O_APPEND. A create is a namespace change (durable after SyncDir).
func (fsys *FS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	name = filepath.Clean(name)
	op := OpOpen
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		op = OpCreate
	}
	if err := fsys.enter(op, name); err != nil {
		return nil, err
	}
	defer fsys.mu.Unlock()
	if fsys.dirs[name] {
		return nil, pathErr(op, name, errors.New("is a directory"))
	}
	if !fsys.dirs[filepath.Dir(name)] {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	ino, ok := fsys.files[name]
	switch {
	case ok && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr(op, name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr(op, name, fs.ErrNotExist)
	case !ok:
		ino = &inode{}
		fsys.files[name] = ino
		fsys.pending = append(fsys.pending, nsOp{kind: nsCreate, to: name, ino: ino})
	case flag&os.O_TRUNC != 0:
		ino.truncate(0)
	}
	return &file{fs: fsys, ino: ino, name: name, flag: flag}, nil
}

// Remove removes a file (a namespace change, durable after SyncDir) or an empty directory
// (durable at once, as MkdirAll is).
func (fsys *FS) Remove(name string) error {
	name = filepath.Clean(name)
	if err := fsys.enter(OpRemove, name); err != nil {
		return err
	}
	defer fsys.mu.Unlock()
	if fsys.dirs[name] {
		return fsys.removeDirLocked(name)
	}
	if _, ok := fsys.files[name]; !ok {
		return pathErr(OpRemove, name, fs.ErrNotExist)
	}
	delete(fsys.files, name)
	fsys.pending = append(fsys.pending, nsOp{kind: nsRemove, from: name})
	return nil
}

func (fsys *FS) removeDirLocked(name string) error {
	if name == "/" || name == "." {
		return pathErr(OpRemove, name, fs.ErrInvalid)
	}
	for d := range fsys.dirs {
		if d != name && filepath.Dir(d) == name {
			return pathErr(OpRemove, name, syscall.ENOTEMPTY)
		}
	}
	for f := range fsys.files {
		if filepath.Dir(f) == name {
			return pathErr(OpRemove, name, syscall.ENOTEMPTY)
		}
	}
	fsys.syncDirLocked(name) // the removals of its files come first, as a journal orders them
	delete(fsys.dirs, name)
	return nil
}

// Rename moves a file, replacing newpath (a namespace change, durable after SyncDir).
func (fsys *FS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	if err := fsys.enter(OpRename, oldpath); err != nil {
		return err
	}
	defer fsys.mu.Unlock()
	ino, ok := fsys.files[oldpath]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	if !fsys.dirs[filepath.Dir(newpath)] || fsys.dirs[newpath] {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrInvalid}
	}
	delete(fsys.files, oldpath)
	fsys.files[newpath] = ino
	fsys.pending = append(fsys.pending, nsOp{kind: nsRename, from: oldpath, to: newpath})
	return nil
}

// ReadDir lists a directory, sorted by name.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	name = filepath.Clean(name)
	if err := fsys.enter(OpReadDir, name); err != nil {
		return nil, err
	}
	defer fsys.mu.Unlock()
	if !fsys.dirs[name] {
		return nil, pathErr(OpReadDir, name, fs.ErrNotExist)
	}
	var out []fs.DirEntry
	for d := range fsys.dirs {
		if d != name && filepath.Dir(d) == name {
			out = append(out, fs.FileInfoToDirEntry(fileInfo{name: filepath.Base(d), dir: true}))
		}
	}
	for f, ino := range fsys.files {
		if filepath.Dir(f) == name {
			out = append(out, fs.FileInfoToDirEntry(fileInfo{name: filepath.Base(f), size: int64(len(ino.data))}))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// MkdirAll creates a directory and its parents. Directories are durable at once.
func (fsys *FS) MkdirAll(name string, perm fs.FileMode) error {
	name = filepath.Clean(name)
	if err := fsys.enter(OpMkdir, name); err != nil {
		return err
	}
	defer fsys.mu.Unlock()
	for d := name; !fsys.dirs[d]; d = filepath.Dir(d) {
		if _, ok := fsys.files[d]; ok {
			return pathErr(OpMkdir, d, errors.New("not a directory"))
		}
		fsys.dirs[d] = true
	}
	return nil
}

// Stat describes a file or directory.
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	name = filepath.Clean(name)
	if err := fsys.enter(OpStat, name); err != nil {
		return nil, err
	}
	defer fsys.mu.Unlock()
	if fsys.dirs[name] {
		return fileInfo{name: filepath.Base(name), dir: true}, nil
	}
	ino, ok := fsys.files[name]
	if !ok {
		return nil, pathErr(OpStat, name, fs.ErrNotExist)
	}
	return fileInfo{name: filepath.Base(name), size: int64(len(ino.data))}, nil
}

// SyncDir makes durable every namespace change up to the last one that touches name.
func (fsys *FS) SyncDir(name string) error {
	name = filepath.Clean(name)
	if err := fsys.enter(OpSyncDir, name); err != nil {
		return err
	}
	defer fsys.mu.Unlock()
	if !fsys.dirs[name] {
		return pathErr(OpSyncDir, name, fs.ErrNotExist)
	}
	fsys.syncDirLocked(name)
	return nil
}

// syncDirLocked makes durable every namespace change up to the last one that touches name.
func (fsys *FS) syncDirLocked(name string) {
	last := -1
	for i, op := range fsys.pending {
		if (op.from != "" && filepath.Dir(op.from) == name) || (op.to != "" && filepath.Dir(op.to) == name) {
			last = i
		}
	}
	for _, op := range fsys.pending[:last+1] {
		op.apply(fsys.durable)
	}
	fsys.pending = slices.Delete(fsys.pending, 0, last+1)
}

// ReadFile returns the current contents of a file (synced or not). Test helper: no fault hook, no
// crash accounting.
func (fsys *FS) ReadFile(name string) ([]byte, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	ino, ok := fsys.files[filepath.Clean(name)]
	if !ok {
		return nil, pathErr(OpRead, name, fs.ErrNotExist)
	}
	return bytes.Clone(ino.data), nil
}

// WriteFile replaces a file's contents (creating it), durably, namespace included. Test helper
// for injecting corruption: no fault hook, no crash accounting.
func (fsys *FS) WriteFile(name string, data []byte) error {
	name = filepath.Clean(name)
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if !fsys.dirs[filepath.Dir(name)] {
		return pathErr(OpCreate, name, fs.ErrNotExist)
	}
	ino, ok := fsys.files[name]
	if !ok {
		ino = &inode{}
		fsys.files[name] = ino
	}
	fsys.durable[name] = ino
	ino.data = bytes.Clone(data)
	ino.durable = ino.data[:len(ino.data):len(ino.data)]
	return nil
}

// truncate sets the size, keeping durable intact (see writeAt).
func (ino *inode) truncate(size int64) {
	switch {
	case size < int64(len(ino.durable)):
		ino.data = bytes.Clone(ino.data[:size])
	case size <= int64(len(ino.data)):
		ino.data = ino.data[:size]
	default:
		ino.data = append(ino.data, make([]byte, size-int64(len(ino.data)))...)
	}
}

// writeAt writes p at off. ino.durable may share ino.data's array, but only its first
// len(durable) bytes, and those bytes are never written in place: a write below len(durable)
// copies data first, and truncate below it does too.
func (ino *inode) writeAt(p []byte, off int64) {
	if off < int64(len(ino.durable)) {
		ino.data = bytes.Clone(ino.data)
	}
	if end := off + int64(len(p)); end > int64(len(ino.data)) {
		ino.data = append(ino.data, make([]byte, end-int64(len(ino.data)))...)
	}
	copy(ino.data[off:], p)
}

type file struct {
	fs     *FS
	ino    *inode
	name   string
	flag   int
	pos    int64
	closed bool
}

func (f *file) enter(op Op) error {
	if err := f.fs.enter(op, f.name); err != nil {
		return err
	}
	if f.closed {
		f.fs.mu.Unlock()
		return pathErr(op, f.name, fs.ErrClosed)
	}
	return nil
}

func (f *file) Read(p []byte) (int, error) {
	if err := f.enter(OpRead); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if f.flag&(os.O_WRONLY) != 0 {
		return 0, pathErr(OpRead, f.name, fs.ErrPermission)
	}
	if f.pos >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[f.pos:])
	f.pos += int64(n)
	return n, nil
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if err := f.enter(OpRead); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if off < 0 {
		return 0, pathErr(OpRead, f.name, fs.ErrInvalid)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) Write(p []byte) (int, error) { return f.write(p, -1) }

// WriteAt writes at off, like os.File.WriteAt: not on a file opened with O_APPEND.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr(OpWrite, f.name, fs.ErrInvalid)
	}
	return f.write(p, off)
}

// write writes p at off, or at the file's position (then moving it) if off < 0.
func (f *file) write(p []byte, off int64) (int, error) {
	if err := f.enter(OpWrite); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, pathErr(OpWrite, f.name, fs.ErrPermission)
	}
	at := off
	switch {
	case off >= 0 && f.flag&os.O_APPEND != 0:
		return 0, pathErr(OpWrite, f.name, errors.New("WriteAt on a file opened with O_APPEND"))
	case off >= 0:
	case f.flag&os.O_APPEND != 0:
		at = int64(len(f.ino.data))
	default:
		at = f.pos
	}
	var err error
	if room := f.fs.roomLocked(f.ino); at+int64(len(p)) > room {
		p = p[:max(room-at, 0)]
		err = pathErr(OpWrite, f.name, syscall.ENOSPC)
		if len(p) == 0 {
			return 0, err
		}
	}
	f.ino.writeAt(p, at)
	if off < 0 {
		f.pos = at + int64(len(p))
	}
	return len(p), err
}

func (f *file) Sync() error {
	if err := f.enter(OpSync); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	d := f.ino.data
	f.ino.durable = d[:len(d):len(d)]
	return nil
}

func (f *file) Truncate(size int64) error {
	if err := f.enter(OpTruncate); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	if size < 0 || f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return pathErr(OpTruncate, f.name, fs.ErrInvalid)
	}
	if size > int64(len(f.ino.data)) && size > f.fs.roomLocked(f.ino) {
		return pathErr(OpTruncate, f.name, syscall.ENOSPC)
	}
	f.ino.truncate(size)
	return nil
}

func (f *file) Stat() (fs.FileInfo, error) {
	if err := f.enter(OpStat); err != nil {
		return nil, err
	}
	defer f.fs.mu.Unlock()
	return fileInfo{name: filepath.Base(f.name), size: int64(len(f.ino.data))}, nil
}

func (f *file) Close() error {
	if err := f.enter(OpClose); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}

type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (fi fileInfo) Name() string { return fi.name }
func (fi fileInfo) Size() int64  { return fi.size }
func (fi fileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return fi.dir }
func (fi fileInfo) Sys() any           { return nil }
