package tier

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/sedimentio/sediment/segment"
)

// timeScanBytes is how much one step of OffsetForTimestamp reads.
const timeScanBytes = 1 << 20

// OffsetForTimestamp answers ListOffsets by timestamp within one remote segment: the
// offset and timestamp of the first record at or after minOffset whose timestamp is at
// least ts, or ok false when the segment has none. The segment's .timeindex object gives
// where to start; batches are then read, checked, through Read (and so the chunk cache),
// and only the batch that holds the answer has its records decoded.
func (r *Reader) OffsetForTimestamp(ctx context.Context, seg RemoteSegment, ts, minOffset int64) (offset, timestamp int64, ok bool, err error) {
	if seg.MaxTimestamp < ts || minOffset > seg.EndOffset {
		return 0, 0, false, nil
	}
	from := max(seg.BaseOffset, minOffset)
	tidx, err := r.readWhole(ctx, r.key(seg, KindTimeIndex))
	if err != nil {
		return 0, 0, false, err
	}
	if start, found, err := timeIndexLookup(tidx, seg, ts); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s: %w", ErrRemoteCorrupt, r.key(seg, KindTimeIndex), err)
	} else if found {
		from = max(from, start)
	}
	for from <= seg.EndOffset {
		b, err := r.Read(ctx, seg, from, timeScanBytes, true)
		if err != nil {
			return 0, 0, false, err
		}
		if len(b) == 0 {
			break
		}
		for p := 0; p < len(b); {
			h, err := segment.ParseBatchHeader(b[p:])
			if err != nil { // Read checked every batch: cannot happen
				return 0, 0, false, fmt.Errorf("%w: %w", ErrRemoteCorrupt, err)
			}
			end := p + int(h.Size())
			if h.LastOffset() >= minOffset && h.MaxTimestamp >= ts {
				off, rts := segment.RecordAtOrAfter(&h, b[p:end], minOffset, func(off, rts int64) bool { return rts >= ts && off >= minOffset })
				return off, rts, true, nil
			}
			from = h.LastOffset() + 1
			p = end
		}
	}
	return 0, 0, false, nil
}

// timeIndexLookup returns the offset of the last entry of a .timeindex object (12-byte
// entries: timestamp int64, offset relative to the segment's base uint32) whose
// timestamp is below ts: every batch before it has a smaller maximum timestamp (an entry
// equal to ts could follow an earlier batch that reached ts too).
func timeIndexLookup(b []byte, seg RemoteSegment, ts int64) (int64, bool, error) {
	if len(b)%12 != 0 {
		return 0, false, fmt.Errorf("time index of %d bytes is not a whole number of 12-byte entries", len(b))
	}
	var (
		off   int64
		found bool
	)
	for i := 0; i+12 <= len(b); i += 12 {
		ets := int64(binary.BigEndian.Uint64(b[i:]))
		rel := int64(binary.BigEndian.Uint32(b[i+8:]))
		if seg.BaseOffset+rel > seg.EndOffset {
			return 0, false, fmt.Errorf("time index entry %d: offset %d past end offset %d", i/12, seg.BaseOffset+rel, seg.EndOffset)
		}
		if ets >= ts {
			break
		}
		off, found = seg.BaseOffset+rel, true
	}
	return off, found, nil
}
