package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory filesystem that remembers, besides what was written, what was
// made durable, and can produce the state a power loss would leave.
//
// The model is strict, as POSIX allows and ext4 or xfs (without data=journal) may do:
//
//   - a file's contents and size are durable as of its last Datasync: writes and
//     truncations after it are lost;
//   - a directory's entries are durable as of its last SyncDir: files and directories
//     created, renamed or removed in it after that are not, whatever was synced inside
//     them (a file synced but never named durably vanishes);
//   - open files keep working after their name is removed, and their data keeps the
//     inode's fate: durable under whatever durable name points to it.
//
// CrashClone returns a new MemFS holding exactly that durable state; TornCrashClone also
// keeps a random part of the rest, as a disk that flushed some pages and some directory
// changes on its own would. CrashAfter takes such a clone at a chosen operation, so a
// test can cut the power between any two writes, syncs or renames. SetIgnoreSyncs and
// SetSyncError break syncs, to prove a test can fail.
//
// Safe for concurrent use: one mutex serializes every operation.
type MemFS struct {
	mu          sync.Mutex
	root        *memNode
	ignoreSyncs bool
	syncErr     error
	ops         int64 // modifying operations so far
	crash       *crashPlan
}

var _ FS = (*MemFS)(nil)

// memNode is a file (inode) or a directory.
type memNode struct {
	dir     bool
	modTime time.Time
	// Files.
	data   []byte // as written
	synced []byte // as of the last Datasync; never modified in place
	// Directories.
	children map[string]*memNode
	durable  map[string]*memNode // entries as of the last SyncDir; never modified in place
	pending  [][]dirChange       // changes since the last SyncDir, oldest first, for torn clones
}

// dirChange sets a directory entry (node nil: removes it). A rename inside one directory
// is one change of two entries, as the journal makes it atomic.
type dirChange struct {
	name string
	node *memNode
}

type crashPlan struct {
	at     int64
	torn   *rand.Rand
	record func()
	out    chan *MemFS
}

// NewMem returns an empty MemFS: a root directory, durable, with nothing in it.
func NewMem() *MemFS {
	return &MemFS{root: newDir()}
}

func newDir() *memNode {
	return &memNode{dir: true, modTime: time.Now(), children: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// SetIgnoreSyncs makes Datasync and SyncDir succeed without making anything durable (a
// disk that lies), or restores them.
func (m *MemFS) SetIgnoreSyncs(ignore bool) {
	m.mu.Lock()
	m.ignoreSyncs = ignore
	m.mu.Unlock()
}

// SetSyncError makes Datasync and SyncDir fail with err, making nothing durable; nil
// restores them.
func (m *MemFS) SetSyncError(err error) {
	m.mu.Lock()
	m.syncErr = err
	m.mu.Unlock()
}

// Ops returns how many modifying operations (writes, truncations, syncs, creations,
// renames, removals) have run so far.
func (m *MemFS) Ops() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops
}

// CrashClone returns a new MemFS holding only what is durable in m, as a power loss would
// leave it. m is unchanged and keeps working.
func (m *MemFS) CrashClone() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cloneLocked(nil)
}

// TornCrashClone is CrashClone that also keeps, drawn from r, a random part of what was
// not made durable: each file a random length between its durable and current size, each
// 4 KiB page of it from either version (zeros beyond a version's end: a size that reached
// the disk before the data), and each directory a random prefix of its unsynced changes.
// What was durable is never lost, so whatever a test requires of CrashClone it may require
// of this too. (A rename between two directories may survive in one and not the other.)
func (m *MemFS) TornCrashClone(r *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cloneLocked(r)
}

// CrashAfter arranges a power loss just before the n-th modifying operation from now (n
// >= 1): with the filesystem locked, it calls record (which must not use m: it is for the
// caller to note what it considers durable at that instant), takes a CrashClone, or a
// TornCrashClone drawn from torn when torn is not nil, and sends it on the returned
// channel. m goes on working. A later call replaces an armed one.
func (m *MemFS) CrashAfter(n int64, torn *rand.Rand, record func()) <-chan *MemFS {
	out := make(chan *MemFS, 1)
	m.mu.Lock()
	m.crash = &crashPlan{at: m.ops + max(n, 1), torn: torn, record: record, out: out}
	m.mu.Unlock()
	return out
}

// opLocked counts a modifying operation about to run and fires an armed crash.
func (m *MemFS) opLocked() {
	m.ops++
	if p := m.crash; p != nil && m.ops >= p.at {
		m.crash = nil
		if p.record != nil {
			p.record()
		}
		p.out <- m.cloneLocked(p.torn)
	}
}

func (m *MemFS) cloneLocked(torn *rand.Rand) *MemFS {
	memo := map[*memNode]*memNode{}
	return &MemFS{root: cloneDurable(m.root, torn, memo)}
}

const pageSize = 4096

// cloneDurable copies the durable state of n (plus a random part of the rest with torn).
// memo keeps an inode with two durable names one inode.
func cloneDurable(n *memNode, torn *rand.Rand, memo map[*memNode]*memNode) *memNode {
	if c, ok := memo[n]; ok {
		return c
	}
	c := &memNode{dir: n.dir, modTime: n.modTime}
	memo[n] = c
	if !n.dir {
		data := n.synced
		if torn != nil {
			data = tornContents(n.synced, n.data, torn)
		}
		c.data = bytes.Clone(data)
		c.synced = bytes.Clone(data)
		return c
	}
	entries := n.durable
	if torn != nil && len(n.pending) > 0 {
		entries = maps.Clone(entries)
		for _, change := range n.pending[:torn.IntN(len(n.pending)+1)] {
			for _, e := range change {
				if e.node == nil {
					delete(entries, e.name)
				} else {
					entries[e.name] = e.node
				}
			}
		}
	}
	c.children = make(map[string]*memNode, len(entries))
	for name, child := range entries {
		c.children[name] = cloneDurable(child, torn, memo)
	}
	c.durable = maps.Clone(c.children)
	return c
}

// tornContents mixes a file's durable and current contents page by page.
func tornContents(synced, data []byte, r *rand.Rand) []byte {
	if bytes.Equal(synced, data) {
		return synced
	}
	lo, hi := min(len(synced), len(data)), max(len(synced), len(data))
	out := make([]byte, lo+r.IntN(hi-lo+1))
	for p := 0; p < len(out); p += pageSize {
		src := synced
		if r.IntN(2) == 0 {
			src = data
		}
		end := min(p+pageSize, len(out))
		if p < len(src) {
			copy(out[p:end], src[p:min(end, len(src))])
		}
	}
	return out
}

// splitPath turns a name into its components below the root; relative names are taken
// from the root.
func splitPath(name string) []string {
	var parts []string
	for _, p := range strings.Split(filepath.ToSlash(filepath.Clean(name)), "/") {
		if p != "" && p != "." && p != ".." {
			parts = append(parts, p)
		}
	}
	return parts
}

// lookupLocked finds the node at name.
func (m *MemFS) lookupLocked(op, name string) (*memNode, error) {
	n := m.root
	for _, p := range splitPath(name) {
		if !n.dir {
			return nil, &fs.PathError{Op: op, Path: name, Err: errNotDir}
		}
		c, ok := n.children[p]
		if !ok {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		n = c
	}
	return n, nil
}

// parentLocked finds the directory that holds name, and name's last component.
func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	dir, err := m.lookupLocked(op, filepath.Join(parts[:len(parts)-1]...))
	if err != nil {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if !dir.dir {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: errNotDir}
	}
	return dir, parts[len(parts)-1], nil
}

// changeLocked applies a change to directory d's entries and remembers it as unsynced.
func (d *memNode) changeLocked(change ...dirChange) {
	for _, e := range change {
		if e.node == nil {
			delete(d.children, e.name)
		} else {
			d.children[e.name] = e.node
		}
	}
	d.pending = append(d.pending, change)
	d.modTime = time.Now()
}

func (m *MemFS) openLocked(op, name string, create, truncate, write bool) (File, error) {
	dir, base, err := m.parentLocked(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.children[base]
	switch {
	case ok && n.dir:
		return nil, &fs.PathError{Op: op, Path: name, Err: errIsDir}
	case ok && truncate:
		m.opLocked()
		n.truncate(0)
	case !ok && !create:
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	case !ok:
		m.opLocked()
		n = &memNode{modTime: time.Now()}
		dir.changeLocked(dirChange{base, n})
	}
	return &memFile{fs: m, n: n, name: name, write: write}, nil
}

func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked("open", name, true, true, true)
}

func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked("open", name, false, false, false)
}

func (m *MemFS) OpenReadWrite(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked("open", name, true, false, true)
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	linkErr := func(err error) error {
		if pe, ok := err.(*fs.PathError); ok {
			err = pe.Err
		}
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	od, ob, err := m.parentLocked("rename", oldname)
	if err != nil {
		return linkErr(err)
	}
	n, ok := od.children[ob]
	if !ok {
		return linkErr(fs.ErrNotExist)
	}
	nd, nb, err := m.parentLocked("rename", newname)
	if err != nil {
		return linkErr(err)
	}
	if od == nd && ob == nb {
		return nil
	}
	if t, ok := nd.children[nb]; ok && t.dir {
		return linkErr(fs.ErrExist)
	}
	if op, np := splitPath(oldname), splitPath(newname); n.dir && len(np) > len(op) && slices.Equal(np[:len(op)], op) {
		return linkErr(fs.ErrInvalid) // a directory cannot move below itself
	}
	m.opLocked()
	if od == nd {
		od.changeLocked(dirChange{nb, n}, dirChange{ob, nil})
	} else {
		nd.changeLocked(dirChange{nb, n})
		od.changeLocked(dirChange{ob, nil})
	}
	return nil
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := dir.children[base]
	if !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.dir && len(n.children) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: errNotEmpty}
	}
	m.opLocked()
	dir.changeLocked(dirChange{base, nil})
	return nil
}

func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("removeall", name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if _, ok := dir.children[base]; !ok {
		return nil
	}
	m.opLocked()
	dir.changeLocked(dirChange{base, nil})
	return nil
}

func (m *MemFS) MkdirAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	for _, p := range splitPath(name) {
		c, ok := n.children[p]
		if !ok {
			m.opLocked()
			c = newDir()
			n.changeLocked(dirChange{p, c})
		} else if !c.dir {
			return &fs.PathError{Op: "mkdir", Path: name, Err: errNotDir}
		}
		n = c
	}
	return nil
}

func (m *MemFS) ReadDir(name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("readdir", name)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	names := slices.Sorted(maps.Keys(d.children))
	out := make([]fs.DirEntry, len(names))
	for i, n := range names {
		out[i] = fs.FileInfoToDirEntry(d.children[n].info(n))
	}
	return out, nil
}

func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("stat", name)
	if err != nil {
		return nil, err
	}
	return n.info(filepath.Base(name)), nil
}

func (m *MemFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("sync", name)
	if err != nil {
		return err
	}
	if !d.dir {
		return &fs.PathError{Op: "sync", Path: name, Err: errNotDir}
	}
	m.opLocked()
	if m.syncErr != nil {
		return &fs.PathError{Op: "sync", Path: name, Err: m.syncErr}
	}
	if !m.ignoreSyncs {
		d.durable = maps.Clone(d.children)
		d.pending = nil
	}
	return nil
}

// truncate sets a file's size, zero-filling when it grows.
func (n *memNode) truncate(size int64) {
	if old := int64(len(n.data)); size > old {
		n.data = slices.Grow(n.data, int(size-old))[:size]
		clear(n.data[old:])
	} else {
		n.data = n.data[:size]
	}
	n.modTime = time.Now()
}

func (n *memNode) writeAt(p []byte, off int64) {
	if end := off + int64(len(p)); end > int64(len(n.data)) {
		n.truncate(end)
	}
	copy(n.data[off:], p)
	n.modTime = time.Now()
}

func (n *memNode) info(name string) fs.FileInfo {
	return &memInfo{name: name, size: int64(len(n.data)), dir: n.dir, modTime: n.modTime}
}

type memInfo struct {
	name    string
	size    int64
	dir     bool
	modTime time.Time
}

func (i *memInfo) Name() string       { return i.name }
func (i *memInfo) Size() int64        { return i.size }
func (i *memInfo) ModTime() time.Time { return i.modTime }
func (i *memInfo) IsDir() bool        { return i.dir }
func (i *memInfo) Sys() any           { return nil }
func (i *memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// memFile is an open MemFS file. Its fields after write are guarded by fs.mu.
type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	write  bool
	off    int64
	closed bool
}

// checkLocked reports why f cannot be used for op.
func (f *memFile) checkLocked(op string, write bool) error {
	if f.closed {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	if write && !f.write {
		return &fs.PathError{Op: op, Path: f.name, Err: errBadFD}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrInvalid}
	}
	f.fs.opLocked()
	f.n.writeAt(p, off)
	return len(p), nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	f.fs.opLocked()
	f.n.writeAt(p, f.off)
	f.off += int64(len(p))
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: fs.ErrInvalid}
	}
	f.fs.opLocked()
	f.n.truncate(size)
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat", false); err != nil {
		return nil, err
	}
	return f.n.info(filepath.Base(f.name)), nil
}

func (f *memFile) Datasync() error {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.checkLocked("fdatasync", false); err != nil {
		return err
	}
	m.opLocked()
	if m.syncErr != nil {
		return &fs.PathError{Op: "fdatasync", Path: f.name, Err: m.syncErr}
	}
	if !m.ignoreSyncs {
		f.n.synced = bytes.Clone(f.n.data)
	}
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}
