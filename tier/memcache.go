package tier

import (
	"container/list"
	"sync"
)

// memCache keeps the most recently used chunks in memory, in front of the on-disk
// chunkCache. A sequential consumer reads each 4 MiB chunk in several Fetches (clients ask
// for about 1 MiB per partition), and read-ahead fetches the next chunks before they are
// asked for: without it every one of those reads would copy the whole chunk from its file.
// Chunks are immutable and shared read-only. LRU by access, bounded by max bytes; a chunk
// larger than max is not kept. Safe for concurrent use.
//
// Read-ahead must not push out what consumers have yet to read: with more consumers than
// memory for their read-ahead, chunks fetched ahead were evicted before their reader came
// and fetched again (2.3x the object bytes in TestReaderReadAheadUnderMemoryPressure). So
// a read-ahead reserves room first (reserve): it goes ahead only while the chunks not yet
// passed by their readers (live), plus the read-aheads in flight, fit in max. Passed
// (demoted) chunks are evicted first and do not count. The bound is max, plus up to an
// eighth while reads pass from one chunk to the next (evictLocked).
type memCache struct {
	max int64

	mu       sync.Mutex
	lru      *list.List // of *memEntry, most recently used first
	items    map[string]*list.Element
	size     int64
	live     int64 // bytes of the entries not demoted
	reserved int64 // bytes of read-aheads in flight
}

type memEntry struct {
	name    string
	b       []byte
	demoted bool
}

func newMemCache(max int64) *memCache {
	return &memCache{max: max, lru: list.New(), items: make(map[string]*list.Element)}
}

func (c *memCache) get(name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[name]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*memEntry)
	if e.demoted { // read again after all
		e.demoted = false
		c.live += int64(len(e.b))
	}
	return e.b, true
}

func (c *memCache) contains(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[name]
	return ok
}

func (c *memCache) put(name string, b []byte) {
	if int64(len(b)) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[name]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.items[name] = c.lru.PushFront(&memEntry{name: name, b: b})
	c.size += int64(len(b))
	c.live += int64(len(b))
	c.evictLocked(c.max + c.max/memSlack)
}

// memSlack: the memory layer holds up to max + max/memSlack bytes while a read has
// loaded its next chunk and not yet passed the one before (see evictLocked).
const memSlack = 8

// evictLocked removes entries from the back (passed chunks first, then the least
// recently used) while the size is over max, except that a chunk not yet passed is kept
// while the size stays within limit: a read loads its next chunk before it passes the
// last one, and evicting at once would take a chunk some reader has yet to reach, when a
// moment later demote frees the right one.
func (c *memCache) evictLocked(limit int64) {
	for c.size > c.max {
		el := c.lru.Back()
		if !el.Value.(*memEntry).demoted && c.size <= limit {
			return
		}
		c.removeLocked(el)
	}
}

// reserve takes room for a read-ahead of n bytes, if the chunks not yet passed and the
// read-aheads in flight leave it; unreserve gives it back once the chunk is in (put).
func (c *memCache) reserve(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live+c.reserved+n > c.max {
		return false
	}
	c.reserved += n
	return true
}

func (c *memCache) unreserve(n int64) {
	c.mu.Lock()
	c.reserved -= n
	c.mu.Unlock()
}

// demote makes name the first to go: a sequential read has gone past it, and the chunks
// read ahead of the readers matter more.
func (c *memCache) demote(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[name]; ok {
		c.lru.MoveToBack(el)
		if e := el.Value.(*memEntry); !e.demoted {
			e.demoted = true
			c.live -= int64(len(e.b))
		}
		c.evictLocked(c.max + c.max/memSlack)
	}
}

func (c *memCache) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[name]; ok {
		c.removeLocked(el)
	}
}

func (c *memCache) removeLocked(el *list.Element) {
	e := el.Value.(*memEntry)
	c.lru.Remove(el)
	delete(c.items, e.name)
	c.size -= int64(len(e.b))
	if !e.demoted {
		c.live -= int64(len(e.b))
	}
}

// seenSet remembers the names of the last n chunks fetched from the store, for the disk
// cache's admission: a chunk goes to a cache file only when it is fetched a second time.
// A consumer catching up reads each chunk once, from memory (it was just fetched or read
// ahead); writing every such chunk to a file would cost more CPU than the GET itself and
// push out the chunks that are read again. Safe for concurrent use.
type seenSet struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records name and reports whether it was already there.
func (s *seenSet) add(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[name]; ok {
		return true
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = name
	s.next = (s.next + 1) % len(s.ring)
	s.set[name] = struct{}{}
	return false
}
