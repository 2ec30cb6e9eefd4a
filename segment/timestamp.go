package segment

import (
	"fmt"
)

// OffsetForTimestamp answers ListOffsets for a timestamp: the offset and timestamp of the
// first record, at or after the log start offset, whose timestamp is >= ts. ok is false
// when no record has such a timestamp.
//
// The first segment whose max timestamp reaches ts is searched: its time index gives a
// starting batch, batch headers are scanned for the first batch whose maxTimestamp reaches
// ts, and that batch's records are decoded (decompressing if needed) to find the record.
// With LogAppendTime every record carries the batch's maxTimestamp, so the batch's first
// offset is the answer. If a batch's records cannot be decoded, the batch's base offset
// and maxTimestamp are returned.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, ok bool, err error) {
	for range maxReadRetries {
		if l.closedA.Load() {
			return -1, -1, false, ErrClosed
		}
		start := l.logStart.Load()
		retry := false
		for _, s := range *l.segs.Load() {
			if s.next.Load() <= start {
				continue
			}
			s.idxMu.RLock()
			maxTs := s.maxTs
			s.idxMu.RUnlock()
			if maxTs < ts {
				continue
			}
			if !s.tryAcquire() {
				retry = true
				break
			}
			var off, rts int64
			var found bool
			err := s.retryOnBadIndex(l, func() (err error) {
				off, rts, found, err = l.searchTimestamp(s, ts, start)
				return err
			})
			s.release()
			if err != nil || found {
				return off, rts, found, err
			}
		}
		if !retry {
			return -1, -1, false, nil
		}
	}
	return -1, -1, false, fmt.Errorf("%w: segments deleted while searching", ErrOffsetOutOfRange)
}

func (l *Log) searchTimestamp(s *segment, ts, minOffset int64) (int64, int64, bool, error) {
	if err := s.loadIndexes(l); err != nil {
		return 0, 0, false, err
	}
	size := s.size.Load()
	s.idxMu.RLock()
	from := s.base
	// Strictly below ts: a batch before an entry equal to ts may have reached ts too.
	if rel, ok := s.tidx.lookup(ts - 1); ok {
		from = s.base + int64(rel)
	}
	from = max(from, minOffset)
	s.idxMu.RUnlock()
	loc, found, err := s.findBatch(from, size)
	if err != nil || !found {
		return 0, 0, false, err
	}
	for pos := loc.pos; pos < size; {
		h, err := s.readFullHeader(pos, size)
		if err != nil {
			return 0, 0, false, err
		}
		if h.LastOffset() >= minOffset && h.MaxTimestamp >= ts {
			off, rts := s.recordAtOrAfter(&h, pos, minOffset, func(off, rts int64) bool { return rts >= ts && off >= minOffset })
			return off, rts, true, nil
		}
		pos += h.Size()
	}
	return 0, 0, false, nil
}

// MaxTimestamp answers ListOffsets with timestamp -3 (KIP-734): the largest timestamp in the
// log and the offset of the first record that has it; (-1, -1) when no record has a timestamp.
func (l *Log) MaxTimestamp() (ts int64, offset int64) {
	for range maxReadRetries {
		if l.closedA.Load() {
			return -1, -1
		}
		start := l.logStart.Load()
		var best *segment
		bestTs, bestOff := int64(-1), int64(-1)
		for _, s := range *l.segs.Load() {
			if s.next.Load() <= start {
				continue
			}
			s.idxMu.RLock()
			if s.maxTs > bestTs {
				best, bestTs, bestOff = s, s.maxTs, s.maxTsOffset
			}
			s.idxMu.RUnlock()
		}
		if best == nil {
			return -1, -1
		}
		if !best.tryAcquire() {
			continue
		}
		off := l.recordWithTimestamp(best, bestTs, bestOff)
		best.release()
		return bestTs, off
	}
	return -1, -1
}

// recordWithTimestamp returns the offset of the first record with timestamp ts in the batch
// of s that holds offset last; on any failure, last itself.
func (l *Log) recordWithTimestamp(s *segment, ts, last int64) int64 {
	if err := s.loadIndexes(l); err != nil {
		return last
	}
	size := s.size.Load()
	var loc batchLoc
	var found bool
	err := s.retryOnBadIndex(l, func() (err error) {
		loc, found, err = s.findBatch(last, size)
		return err
	})
	if err != nil || !found {
		return last
	}
	h, err := s.readFullHeader(loc.pos, size)
	if err != nil {
		return last
	}
	off, _ := s.recordAtOrAfter(&h, loc.pos, 0, func(_, rts int64) bool { return rts == ts })
	return off
}

// readFullHeader preads and parses the header of the batch at pos.
func (s *segment) readFullHeader(pos, size int64) (BatchHeader, error) {
	if size-pos < batchHeaderSize {
		return BatchHeader{}, &CorruptionError{Segment: s.path, Offset: pos, Err: fmt.Errorf("%w: partial header", ErrCorruptBatch)}
	}
	buf := headerBufs.Get().(*[batchHeaderSize]byte)
	defer headerBufs.Put(buf)
	if _, err := s.log.ReadAt(buf[:], pos); err != nil {
		return BatchHeader{}, fmt.Errorf("segment: read %s at %d: %w", s.path, pos, err)
	}
	h, err := ParseBatchHeader(buf[:])
	if err == nil && h.Size() > size-pos {
		err = fmt.Errorf("%w: batch overruns the segment", ErrCorruptBatch)
	}
	if err != nil {
		return h, &CorruptionError{Segment: s.path, Offset: pos, Err: err}
	}
	return h, nil
}

// recordAtOrAfter returns the offset and timestamp of the first record of batch h (at pos)
// that satisfies match (which must accept any offset >= minOffset with the batch's
// maxTimestamp). With LogAppendTime every record has the batch's maxTimestamp. When
// the records cannot be read or decoded, or none matches, it returns the batch's base
// offset and maxTimestamp.
func (s *segment) recordAtOrAfter(h *BatchHeader, pos, minOffset int64, match func(off, ts int64) bool) (int64, int64) {
	if h.LogAppendTime() {
		return RecordAtOrAfter(h, nil, minOffset, match)
	}
	b := make([]byte, h.Size())
	if _, err := s.log.ReadAt(b, pos); err != nil {
		return h.BaseOffset, h.MaxTimestamp
	}
	return RecordAtOrAfter(h, b, minOffset, match)
}

// RecordAtOrAfter returns the offset and timestamp of the first record of the whole batch
// b (header h) that satisfies match, which must accept any offset >= minOffset with the
// batch's maxTimestamp; b may be nil for a LogAppendTime batch, whose records all have the
// batch's maxTimestamp. When the records cannot be decoded, or none matches, it returns
// the batch's base offset and maxTimestamp. ListOffsets by timestamp uses it for batches
// read from the tier too.
func RecordAtOrAfter(h *BatchHeader, b []byte, minOffset int64, match func(off, ts int64) bool) (int64, int64) {
	if h.LogAppendTime() {
		// Every record has maxTimestamp; the first acceptable one is at or after minOffset.
		return max(h.BaseOffset, min(minOffset, h.LastOffset())), h.MaxTimestamp
	}
	if int64(len(b)) < h.Size() || h.Size() < batchHeaderSize {
		return h.BaseOffset, h.MaxTimestamp
	}
	recs, err := recordsOf(h, b)
	if err != nil {
		return h.BaseOffset, h.MaxTimestamp
	}
	off, ts := h.BaseOffset, h.MaxTimestamp
	_ = forEachRecord(recs, h.RecordCount, func(od int32, td int64) bool {
		o, t := h.BaseOffset+int64(od), h.BaseTimestamp+td
		if match(o, t) {
			off, ts = o, t
			return false
		}
		return true
	})
	return off, ts
}
