package segment

import (
	"fmt"
	"io"

	"github.com/sedimentio/sediment/segment/vfs"
)

// Slice is a byte range of whole batches in one segment's .log file, for sendfile: with
// the OS filesystem File is a syscall.Conn.
// The segment's file stays open until Release, even if retention or truncation removes
// the segment meanwhile (a truncation may shorten the file under it). Call Release exactly
// once; the zero Slice (nothing to read) needs no Release but tolerates one.
type Slice struct {
	File     vfs.File
	Pos, Len int64
	seg      *segment
}

// Release gives the file reference back.
func (s Slice) Release() {
	if s.seg != nil {
		s.seg.release()
	}
}

// ReadAll reads the slice's bytes (for tests and connections that cannot sendfile).
func (s Slice) ReadAll() ([]byte, error) {
	if s.Len == 0 {
		return nil, nil
	}
	b := make([]byte, s.Len)
	n, err := s.File.ReadAt(b, s.Pos)
	if n == len(b) {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return b[:n], fmt.Errorf("segment: read slice: %w", err)
}

// maxReadRetries bounds how often Read retries when retention closed the segment it chose.
const maxReadRetries = 8

// Read returns the byte range of whole batches of one segment, starting with the batch
// that contains offset and ending before the first batch whose base offset is >= maxOffset
// (exclusive: the high watermark) and before maxBytes is exceeded; when minOneBatch is set
// and the first batch alone is larger than maxBytes, that whole batch (KIP-74). An offset
// equal to LogEndOffset, or >= maxOffset, gives an empty Slice; an offset below
// LogStartOffset or above LogEndOffset gives ErrOffsetOutOfRange. An offset inside a gap
// (offsets removed by compaction or a sealed segment's recovery) reads from the next batch.
//
// Read takes no log-wide lock: the tail ring answers fetches at the log end without a
// scan; otherwise the offset index gives a position and batch headers are pread from there.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (Slice, error) {
	for range maxReadRetries {
		if l.closedA.Load() {
			return Slice{}, ErrClosed
		}
		leo := l.leo.Load()
		start := l.logStart.Load()
		if offset < start || offset > leo {
			return Slice{}, fmt.Errorf("%w: offset %d, log is [%d, %d]", ErrOffsetOutOfRange, offset, start, leo)
		}
		if offset == leo || offset >= maxOffset {
			return Slice{}, nil
		}
		segs := *l.segs.Load()
		retry := false
		for i := segmentFor(segs, offset); i < len(segs); i++ {
			s := segs[i]
			if !s.tryAcquire() {
				retry = true
				break
			}
			// The closure sets plain integers, not a Slice: storing the File interface
			// through the closure's pointer costs write barriers on the hottest path.
			var pos, n int64
			var found bool
			err := s.retryOnBadIndex(l, func() (err error) {
				pos, n, found, err = l.readSegment(s, offset, maxBytes, maxOffset, minOneBatch)
				return err
			})
			if err != nil || !found || n == 0 {
				s.release()
			}
			if err != nil {
				return Slice{}, err
			}
			if found {
				if n == 0 {
					return Slice{}, nil
				}
				return Slice{File: s.log, Pos: pos, Len: n, seg: s}, nil
			}
		}
		if !retry {
			return Slice{}, nil
		}
	}
	return Slice{}, fmt.Errorf("%w: offset %d: segments deleted while reading", ErrOffsetOutOfRange, offset)
}

// readSegment reads from segment s (referenced by the caller): the position and length of
// the byte range to serve. found is false when s has no batch ending at or after offset, so
// the caller moves on to the next segment.
func (l *Log) readSegment(s *segment, offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (pos, n int64, found bool, err error) {
	size := s.size.Load()
	if err := s.loadIndexes(l); err != nil {
		return 0, 0, false, err
	}
	first, found, err := s.findBatch(offset, size)
	if err != nil || !found {
		return 0, 0, found, err
	}
	if first.base >= maxOffset {
		return 0, 0, true, nil
	}
	end := size
	if maxOffset <= s.next.Load() {
		if end, err = s.posOfBaseAtOrAfter(maxOffset, size); err != nil {
			return 0, 0, false, err
		}
	}
	if limit := first.pos + int64(max(maxBytes, 0)); end > limit {
		if end, err = s.boundaryAtOrBefore(first.pos, limit, end); err != nil {
			return 0, 0, false, err
		}
		if end == first.pos {
			if !minOneBatch {
				return 0, 0, true, nil
			}
			end = first.pos + first.size
		}
	}
	return first.pos, end - first.pos, true, nil
}

// findBatch returns the first batch among the first size bytes of s whose last offset is
// >= off: from the tail ring when it covers off, else from the offset index position and
// a header scan.
func (s *segment) findBatch(off, size int64) (batchLoc, bool, error) {
	s.idxMu.RLock()
	if s.ring != nil {
		// The ring also holds batches appended after size was read: ignore those.
		if loc, covered, found := s.ring.find(off); covered {
			s.idxMu.RUnlock()
			if found && loc.pos < size {
				return loc, true, nil
			}
			return batchLoc{}, false, nil
		}
	}
	key, pos, fromIndex := s.oidx.lookup(s.relOf(off))
	s.idxMu.RUnlock()
	prevLast := s.base - 1
	for pos < size {
		var loc batchLoc
		var err error
		if fromIndex {
			loc, err = s.entryHeader(key, pos, size)
			fromIndex = false
		} else {
			loc, err = s.readHeader(pos, size)
		}
		if err != nil {
			return batchLoc{}, false, err
		}
		if loc.base <= prevLast {
			return batchLoc{}, false, &CorruptionError{Segment: s.path, Offset: pos, Err: fmt.Errorf(
				"%w: batch at base offset %d follows offset %d", ErrCorruptBatch, loc.base, prevLast)}
		}
		if loc.last >= off {
			return loc, true, nil
		}
		prevLast = loc.last
		pos += loc.size
	}
	return batchLoc{}, false, nil
}

// posOfBaseAtOrAfter returns the position of the first batch whose base offset is >= off,
// or size when there is none.
func (s *segment) posOfBaseAtOrAfter(off, size int64) (int64, error) {
	s.idxMu.RLock()
	if s.ring != nil {
		if loc, covered, found := s.ring.firstBaseAtOrAfter(off); covered {
			s.idxMu.RUnlock()
			if found {
				return min(loc.pos, size), nil
			}
			return size, nil
		}
	}
	s.idxMu.RUnlock()
	loc, found, err := s.findBatch(off, size)
	switch {
	case err != nil:
		return 0, err
	case !found:
		return size, nil
	case loc.base >= off:
		return loc.pos, nil
	default:
		return loc.pos + loc.size, nil
	}
}

// boundaryAtOrBefore returns the largest batch boundary <= limit, given that from is a batch
// boundary <= limit and end (> limit) is one too.
func (s *segment) boundaryAtOrBefore(from, limit, end int64) (int64, error) {
	s.idxMu.RLock()
	if s.ring != nil {
		if b, ok := s.ring.boundary(limit); ok && b <= end {
			s.idxMu.RUnlock()
			return max(b, from), nil
		}
	}
	key, pos, ok := s.oidx.lookupPos(limit)
	s.idxMu.RUnlock()
	if !ok || pos < from {
		pos = from
	} else if _, err := s.entryHeader(key, pos, end); err != nil {
		return 0, err
	}
	for pos < end {
		loc, err := s.readHeader(pos, end)
		if err != nil {
			return 0, err
		}
		if pos+loc.size > limit {
			break
		}
		pos += loc.size
	}
	return pos, nil
}
