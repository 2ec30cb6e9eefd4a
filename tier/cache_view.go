package tier

import (
	"fmt"
	"path/filepath"
	"sync/atomic"

	"github.com/sedimentio/sediment/segment/vfs"
)

// cacheView is a cached chunk's file, open and mapped read-only, shared by
// the pins of its entry: a read scans and checks its batches in the mapping
// (no copy into the heap) and the connection sends a range of the file with
// sendfile(2). While pinned, the entry is not evicted; a file removed or
// replaced meanwhile (a corrupt chunk dropped, the same chunk written again)
// stays readable through the open file until the last pin goes.
type cacheView struct {
	c     *chunkCache
	e     *cacheEntry
	f     vfs.File
	b     []byte // the whole file, mapped (or read, where there is no mmap)
	unmap func()
}

// pin returns a view of the cached chunk name, marking it most recently
// used; the caller releases it (release) when done with b and the file.
// A file that cannot be opened or mapped is dropped from the cache: a miss.
func (c *chunkCache) pin(name string) (*cacheView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[name]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	if e.view != nil {
		e.pins++
		return e.view, true
	}
	// Opened under mu, which guards renames and removals: the file is the
	// one the entry describes.
	v, err := c.open(e)
	if err != nil {
		c.removeLocked(el)
		return nil, false
	}
	e.view, e.pins = v, 1
	return v, true
}

func (c *chunkCache) open(e *cacheEntry) (*cacheView, error) {
	f, err := vfs.OS{}.Open(filepath.Join(c.dir, e.name))
	if err != nil {
		return nil, err
	}
	// Cache files are never truncated or written in place (put renames a
	// new file over), so a mapping of size bytes stays backed.
	if st, err := f.Stat(); err != nil || st.Size() != e.size {
		f.Close()
		return nil, fmt.Errorf("tier: chunk cache: %s is not %d bytes", e.name, e.size)
	}
	b, unmap, err := mapFile(f, e.size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &cacheView{c: c, e: e, f: f, b: b, unmap: unmap}, nil
}

// repin takes one more pin of a view already pinned.
func (c *chunkCache) repin(v *cacheView) {
	c.mu.Lock()
	v.e.pins++
	c.mu.Unlock()
}

// release gives back one pin; the last one unmaps and closes the file.
func (v *cacheView) release() {
	c := v.c
	c.mu.Lock()
	v.e.pins--
	last := v.e.pins == 0
	if last {
		v.e.view = nil
	}
	// Eviction skipped pinned entries: catch up once this one is free.
	if last {
		c.evictLocked()
	}
	c.mu.Unlock()
	if last {
		v.unmap()
		v.f.Close()
	}
}

// evictLocked removes the least recently used unpinned entries while the
// cache is over its bound.
func (c *chunkCache) evictLocked() {
	for el := c.lru.Back(); el != nil && c.size > c.max; {
		prev := el.Prev()
		if el.Value.(*cacheEntry).pins == 0 {
			c.removeLocked(el)
		}
		el = prev
	}
}

// Records is what a remote read returns: whole record batches, in memory
// (Bytes) or, when they lie in one chunk of the on-disk chunk cache, as a
// range of that cache file (File, Pos, Len), which a connection sends with
// sendfile(2) without copying it through the heap. A file range stays
// pinned (the cache neither evicts nor reuses it) until Release; Release
// is also needed, and harmless, for the in-memory form.
type Records struct {
	Bytes    []byte
	File     vfs.File // when Bytes is nil and Len > 0
	Pos, Len int64
	pin      *recordsPin
}

type recordsPin struct {
	v    *cacheView
	done atomic.Bool
}

// Size returns the bytes of the batches.
func (r Records) Size() int64 {
	if r.Bytes != nil {
		return int64(len(r.Bytes))
	}
	return r.Len
}

// Release unpins a file range; later calls do nothing.
func (r Records) Release() {
	if r.pin != nil && r.pin.done.CompareAndSwap(false, true) {
		r.pin.v.release()
	}
}

// ReadAll returns the batches in memory: Bytes, or a copy of the file range.
// It does not release.
func (r Records) ReadAll() []byte {
	if r.Bytes != nil || r.pin == nil {
		return r.Bytes
	}
	return append([]byte(nil), r.pin.v.b[r.Pos:r.Pos+r.Len]...)
}
