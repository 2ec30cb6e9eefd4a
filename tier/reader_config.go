package tier

import (
	"errors"
	"fmt"
)

// ReaderConfig configures a Reader. Zero fields take their defaults (DefaultReaderConfig),
// except CacheDir, which is required.
type ReaderConfig struct {
	ChunkSize   int64  // bytes per ranged GET, default 4 MiB
	CacheDir    string // on-disk chunk cache directory; its cache files are wiped by NewReader
	CacheBytes  int64  // bound of the cache (LRU eviction), default 1 GiB
	MemBytes    int64  // bound of the most recently used chunks kept in memory (up to an eighth more for a moment), default 256 MiB; negative: none
	ReadAhead   int    // chunks prefetched after a sequential read, default 2; negative: none
	MaxParallel int    // concurrent GETs across partitions, default 16
}

// DefaultReaderConfig returns the defaults for a Reader caching in cacheDir.
func DefaultReaderConfig(cacheDir string) ReaderConfig {
	return ReaderConfig{
		ChunkSize:   4 << 20,
		CacheDir:    cacheDir,
		CacheBytes:  1 << 30,
		MemBytes:    256 << 20,
		ReadAhead:   2,
		MaxParallel: 16,
	}
}

// withDefaults fills the zero fields.
func (c ReaderConfig) withDefaults() ReaderConfig {
	d := DefaultReaderConfig(c.CacheDir)
	if c.ChunkSize == 0 {
		c.ChunkSize = d.ChunkSize
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = d.CacheBytes
	}
	if c.MemBytes == 0 {
		c.MemBytes = d.MemBytes
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = d.ReadAhead
	}
	if c.MaxParallel == 0 {
		c.MaxParallel = d.MaxParallel
	}
	return c
}

// maxChunkSize bounds ChunkSize: a chunk is held in memory whole.
const maxChunkSize = 256 << 20

// Validate reports the first problem with c (after defaults are applied by NewReader).
func (c ReaderConfig) Validate() error {
	switch {
	case c.CacheDir == "":
		return errors.New("tier: reader: empty CacheDir")
	case c.ChunkSize < remoteBatchHeaderSize || c.ChunkSize > maxChunkSize:
		return fmt.Errorf("tier: reader: ChunkSize %d outside [%d, %d]", c.ChunkSize, remoteBatchHeaderSize, maxChunkSize)
	case c.CacheBytes < 0:
		return fmt.Errorf("tier: reader: CacheBytes %d < 0", c.CacheBytes)
	case c.MaxParallel < 1:
		return fmt.Errorf("tier: reader: MaxParallel %d < 1", c.MaxParallel)
	}
	return nil
}
