package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Index files hold fixed-size big-endian entries, in memory exactly as on disk, so loading
// is one read and writing is one write.
const (
	offsetEntrySize = 8  // relativeOffset uint32, position uint32
	timeEntrySize   = 12 // timestamp int64, relativeOffset uint32
)

var errIndex = errors.New("corrupt index")

// offsetIndex is a segment's sparse offset index: entries (lastOffset-base, position) of
// batches, one every index.interval.bytes of log. Keyed like Kafka's by the batch's LAST
// offset, so the entry found for target t (the largest key <= t) points at a batch that
// starts at or before the batch holding t. Not safe for concurrent use; guarded by
// segment.idxMu.
type offsetIndex struct {
	b       []byte
	written int // bytes of b already in the file
}

func (x *offsetIndex) len() int { return len(x.b) / offsetEntrySize }

func (x *offsetIndex) entry(i int) (rel uint32, pos uint32) {
	e := x.b[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

func (x *offsetIndex) append(rel, pos uint32) {
	x.b = binary.BigEndian.AppendUint32(x.b, rel)
	x.b = binary.BigEndian.AppendUint32(x.b, pos)
}

// lookup returns the last entry whose key is <= rel, or ok false when there is none (the
// scan then starts at position 0).
func (x *offsetIndex) lookup(rel uint32) (key uint32, pos int64, ok bool) {
	n := x.len()
	i := sort.Search(n, func(i int) bool { r, _ := x.entry(i); return r > rel })
	if i == 0 {
		return 0, 0, false
	}
	k, p := x.entry(i - 1)
	return k, int64(p), true
}

// lookupPos returns the last entry whose position is <= limit, or ok false.
func (x *offsetIndex) lookupPos(limit int64) (key uint32, pos int64, ok bool) {
	n := x.len()
	i := sort.Search(n, func(i int) bool { _, p := x.entry(i); return int64(p) > limit })
	if i == 0 {
		return 0, 0, false
	}
	k, p := x.entry(i - 1)
	return k, int64(p), true
}

// truncate drops entries whose key is >= rel or whose position is >= size.
func (x *offsetIndex) truncate(rel uint32, size int64) {
	n := x.len()
	i := sort.Search(n, func(i int) bool { r, p := x.entry(i); return r >= rel || int64(p) >= size })
	x.b = x.b[:i*offsetEntrySize]
	x.written = min(x.written, len(x.b))
}

// checkOffsetIndex reports whether b is a well-formed offset index for a log of size bytes:
// whole entries, keys and positions strictly increasing, positions inside the log.
func checkOffsetIndex(b []byte, size int64) error {
	if len(b)%offsetEntrySize != 0 {
		return fmt.Errorf("%w: offset index of %d bytes is not a multiple of %d", errIndex, len(b), offsetEntrySize)
	}
	x := offsetIndex{b: b}
	var lastRel, lastPos int64 = -1, -1
	for i := range x.len() {
		r, p := x.entry(i)
		// An entry names a batch start, so a whole batch header follows it.
		if int64(r) <= lastRel || int64(p) <= lastPos || int64(p)+BatchHeaderSize > size || r > math.MaxInt32 {
			return fmt.Errorf("%w: offset index entry %d (%d, %d) out of order or beyond the log", errIndex, i, r, p)
		}
		lastRel, lastPos = int64(r), int64(p)
	}
	return nil
}

// timeIndex is a segment's sparse time index: entries (maxTimestampSoFar, lastOffset-base
// of the batch that reached it), appended with the offset index entries when the maximum
// timestamp grew, plus a final entry when the segment is sealed. Timestamps strictly
// increase. Guarded by segment.idxMu.
type timeIndex struct {
	b       []byte
	written int
}

func (x *timeIndex) len() int { return len(x.b) / timeEntrySize }

func (x *timeIndex) entry(i int) (ts int64, rel uint32) {
	e := x.b[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

func (x *timeIndex) last() (ts int64, rel uint32, ok bool) {
	if n := x.len(); n > 0 {
		ts, rel = x.entry(n - 1)
		return ts, rel, true
	}
	return -1, 0, false
}

// maybeAppend appends (ts, rel) if ts is larger than the last entry's timestamp.
func (x *timeIndex) maybeAppend(ts int64, rel uint32) {
	if last, _, ok := x.last(); ok && ts <= last {
		return
	}
	x.b = binary.BigEndian.AppendUint64(x.b, uint64(ts))
	x.b = binary.BigEndian.AppendUint32(x.b, rel)
}

// lookup returns the offset of the last entry whose timestamp is <= ts, or (0, false).
func (x *timeIndex) lookup(ts int64) (rel uint32, ok bool) {
	n := x.len()
	i := sort.Search(n, func(i int) bool { t, _ := x.entry(i); return t > ts })
	if i == 0 {
		return 0, false
	}
	_, rel = x.entry(i - 1)
	return rel, true
}

// truncate drops entries whose offset is >= rel.
func (x *timeIndex) truncate(rel uint32) {
	n := x.len()
	i := sort.Search(n, func(i int) bool { _, r := x.entry(i); return r >= rel })
	x.b = x.b[:i*timeEntrySize]
	x.written = min(x.written, len(x.b))
}

// checkTimeIndex reports whether b is a well-formed time index: whole entries, timestamps
// strictly and offsets weakly increasing, offsets below maxRel (exclusive) when maxRel >= 0.
func checkTimeIndex(b []byte, maxRel int64) error {
	if len(b)%timeEntrySize != 0 {
		return fmt.Errorf("%w: time index of %d bytes is not a multiple of %d", errIndex, len(b), timeEntrySize)
	}
	x := timeIndex{b: b}
	var lastTs, lastRel int64 = math.MinInt64, -1
	for i := range x.len() {
		ts, r := x.entry(i)
		if ts <= lastTs || int64(r) < lastRel || (maxRel >= 0 && int64(r) >= maxRel) || r > math.MaxInt32 {
			return fmt.Errorf("%w: time index entry %d (%d, %d) out of order or beyond the log", errIndex, i, ts, r)
		}
		lastTs, lastRel = ts, int64(r)
	}
	return nil
}
