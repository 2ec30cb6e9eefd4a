package segment

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sedimentio/sediment/segment/vfs"
)

const epochCheckpointName = "leader-epoch-checkpoint"

// epochEntry says that leader epoch epoch wrote its first batch at offset start.
type epochEntry struct {
	epoch int32
	start int64
}

// epochCache is the partition's leader-epoch cache (Kafka's LeaderEpochFileCache): entries
// strictly increasing in both epoch and start offset, persisted to leader-epoch-checkpoint
// on every change. Guarded by Log.mu.
type epochCache struct {
	fs      vfs.FS
	path    string
	entries []epochEntry
}

func (c *epochCache) latest() int32 {
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].epoch
}

// assign records that epoch starts at start, if epoch is newer than the latest; entries
// that would break monotonicity (start offsets >= start) are dropped first, as in Kafka.
// It reports whether anything changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	if epoch < 0 || epoch <= c.latest() {
		return false
	}
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= start {
		n--
	}
	c.entries = append(c.entries[:n], epochEntry{epoch, start})
	return true
}

// truncateFromEnd drops the entries starting at or after end (the log was truncated to end).
func (c *epochCache) truncateFromEnd(end int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= end {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart drops entries wholly below the new log start; the latest of them is
// kept, moved to start at logStart.
func (c *epochCache) truncateFromStart(logStart int64) bool {
	i := 0
	for i < len(c.entries) && c.entries[i].start < logStart {
		i++
	}
	if i == 0 {
		return false
	}
	keep := c.entries[i-1]
	keep.start = logStart
	rest := c.entries[i:]
	if len(rest) > 0 && rest[0].start == logStart {
		c.entries = append(c.entries[:0], rest...)
	} else {
		c.entries = append(append(c.entries[:0], keep), rest...)
	}
	return true
}

// endOffsetFor implements OffsetForLeaderEpoch (KIP-101/279) as Kafka's
// LeaderEpochFileCache.endOffsetFor does: for the latest epoch, the log end offset; for an
// older one, the largest epoch <= it and the start offset of the first epoch above it
// (with the requested epoch itself when it is below every known epoch); (-1, -1) when the
// epoch is unknown or newer than every known epoch.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	return endOffsetFor(len(c.entries), func(i int) (int32, int64) { return c.entries[i].epoch, c.entries[i].start }, epoch, leo)
}

// EndOffsetForEpochIn is EndOffsetForEpoch over a list of entries ordered by epoch (the
// local cache preceded by the epochs of tiered segments, say), for a log ending at leo.
func EndOffsetForEpochIn(entries []EpochEntry, epoch int32, leo int64) (int32, int64) {
	return endOffsetFor(len(entries), func(i int) (int32, int64) { return entries[i].Epoch, entries[i].StartOffset }, epoch, leo)
}

// endOffsetFor answers for n entries, the i-th being at(i).
func endOffsetFor(n int, at func(i int) (epoch int32, start int64), epoch int32, leo int64) (int32, int64) {
	if epoch < 0 || n == 0 {
		return -1, -1
	}
	if latest, _ := at(n - 1); epoch == latest {
		return epoch, leo
	}
	hi := -1
	for i := range n {
		if e, _ := at(i); e > epoch {
			hi = i
			break
		}
	}
	if hi < 0 {
		return -1, -1
	}
	_, hiStart := at(hi)
	if hi == 0 {
		return epoch, hiStart
	}
	prev, _ := at(hi - 1)
	return prev, hiStart
}

// encode writes Kafka's checkpoint text format: version 0, the entry count, one
// "epoch startOffset" line per entry.
func (c *epochCache) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return b.Bytes()
}

func (c *epochCache) write() error {
	return vfs.WriteFileAtomic(c.fs, c.path, c.encode(), true)
}

var errCheckpoint = errors.New("segment: corrupt checkpoint")

// loadEpochCache reads dir's leader-epoch-checkpoint; a missing file is an empty cache.
func loadEpochCache(fsys vfs.FS, dir string) (*epochCache, error) {
	c := &epochCache{fs: fsys, path: filepath.Join(dir, epochCheckpointName)}
	b, err := vfs.ReadFile(fsys, c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	entries, err := parseEpochCheckpoint(b)
	if err != nil {
		return c, err
	}
	c.entries = entries
	return c, nil
}

func parseEpochCheckpoint(b []byte) ([]epochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, fmt.Errorf("%w: %s: version %q", errCheckpoint, epochCheckpointName, v)
	}
	ns, _ := line()
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 || n > len(b) {
		return nil, fmt.Errorf("%w: %s: count %q", errCheckpoint, epochCheckpointName, ns)
	}
	entries := make([]epochEntry, 0, n)
	for range n {
		s, _ := line()
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: %s: entry %q", errCheckpoint, epochCheckpointName, s)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("%w: %s: entry %q", errCheckpoint, epochCheckpointName, s)
		}
		if k := len(entries); k > 0 && (int32(e) <= entries[k-1].epoch || o < entries[k-1].start) {
			return nil, fmt.Errorf("%w: %s: entry %q out of order", errCheckpoint, epochCheckpointName, s)
		}
		entries = append(entries, epochEntry{int32(e), o})
	}
	return entries, nil
}
