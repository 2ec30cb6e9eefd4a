package tier

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// chunkCache is the remote reader's bounded on-disk cache of object chunks.
//
// A chunk is stored as one file, <dir>/<32 hex digits of SHA-256(object key)>-<chunk index>,
// written to a temporary file and renamed into place, so a reader sees a whole chunk or
// none. Remote objects are immutable (every upload has its own UploadID in its keys), so a
// name always denotes the same bytes and entries never need invalidating, except when the
// reader finds a cached chunk corrupt (bit rot) and drops it.
//
// The index of the cache (which files exist, their sizes, their recency) lives in memory
// only. newChunkCache wipes the cache's files from dir instead of rebuilding the index:
// files are not fsynced (a cache is not worth an fsync per chunk), so after a crash a
// renamed file may hold anything, and a cold cache after a restart costs only GETs.
//
// Eviction is LRU by access, skipping chunks pinned by a read or a response being sent
// (cache_view.go); the total size of the cached files stays at most max, except while
// pinned chunks hold it above (temporary files of chunks being written come on top). A
// chunk larger than max is not cached.
//
// Safe for concurrent use. mu guards the index and every rename and removal of cache
// files, so the files in dir always match the index.
type chunkCache struct {
	dir   string
	max   int64
	gauge prometheus.Gauge

	mu    sync.Mutex
	lru   *list.List               // of *cacheEntry, most recently used first
	items map[string]*list.Element // by file name
	size  int64                    // sum of the entries' sizes
	seq   uint64                   // numbers temporary files
}

type cacheEntry struct {
	name string
	size int64
	pins int        // views handed out and not released: not evicted while > 0
	view *cacheView // the open view while pins > 0
}

// cacheFileRE matches the files the cache owns: chunks and temporary files.
var cacheFileRE = regexp.MustCompile(`^(?:[0-9a-f]{32}-[0-9]+|\.chunk-[0-9]+\.tmp)$`)

// newChunkCache creates dir if needed and removes the cache files left in it by an earlier
// process (see chunkCache). Files it does not own are left alone.
func newChunkCache(dir string, max int64, gauge prometheus.Gauge) (*chunkCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier: chunk cache: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tier: chunk cache: %w", err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && cacheFileRE.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("tier: chunk cache: wiping: %w", err)
			}
		}
	}
	gauge.Set(0)
	return &chunkCache{dir: dir, max: max, gauge: gauge, lru: list.New(), items: make(map[string]*list.Element)}, nil
}

// chunkName names chunk i of the object key. 128 bits of SHA-256 make a collision, which
// would serve one object's bytes for another's, practically impossible.
func chunkName(key string, i int) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16]) + "-" + strconv.Itoa(i)
}

// get returns the cached chunk name, marking it most recently used.
func (c *chunkCache) get(name string) ([]byte, bool) {
	c.mu.Lock()
	el, ok := c.items[name]
	var size int64
	if ok {
		c.lru.MoveToFront(el)
		size = el.Value.(*cacheEntry).size
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	// Read outside the lock: an eviction meanwhile removes the file and this read fails
	// (or, on Unix, still reads the unlinked file's whole content), which is a miss.
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil || int64(len(b)) != size {
		c.mu.Lock()
		if c.items[name] == el {
			c.removeLocked(el)
		}
		c.mu.Unlock()
		return nil, false
	}
	return b, true
}

// contains reports whether name is cached, without touching its recency.
func (c *chunkCache) contains(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[name]
	return ok
}

// put caches data as chunk name and evicts the least recently used chunks beyond max.
// Failing to write is not an error for the caller: the chunk just is not cached.
func (c *chunkCache) put(name string, data []byte) error {
	size := int64(len(data))
	if size > c.max {
		return nil
	}
	c.mu.Lock()
	c.seq++
	tmp := filepath.Join(c.dir, ".chunk-"+strconv.FormatUint(c.seq, 10)+".tmp")
	c.mu.Unlock()
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tier: chunk cache: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Rename(tmp, filepath.Join(c.dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tier: chunk cache: %w", err)
	}
	if el, ok := c.items[name]; ok {
		// Replaced by identical bytes (remote objects are immutable).
		c.size += size - el.Value.(*cacheEntry).size
		el.Value.(*cacheEntry).size = size
		c.lru.MoveToFront(el)
	} else {
		c.items[name] = c.lru.PushFront(&cacheEntry{name: name, size: size})
		c.size += size
	}
	c.evictLocked()
	c.gauge.Set(float64(c.size))
	return nil
}

// remove drops chunk name (found corrupt).
func (c *chunkCache) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[name]; ok {
		c.removeLocked(el)
	}
}

func (c *chunkCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.items, e.name)
	c.size -= e.size
	os.Remove(filepath.Join(c.dir, e.name))
	c.gauge.Set(float64(c.size))
}

// bytes returns the total size of the cached chunks.
func (c *chunkCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
