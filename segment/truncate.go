package segment

import (
	"fmt"
	"io"
)

// TruncateTo removes every batch with an offset >= offset (a follower truncating a
// divergent tail, KIP-101/279). A batch that straddles offset is removed whole, so the new
// log end offset is the base of that batch. Truncating at or below the first segment's base
// empties the log and restarts it at offset (Kafka's truncateFullyAndStartAt). Indexes,
// producer state (from the latest snapshot at or below the new end) and the epoch cache
// are rebuilt; the log start offset is lowered to the new end if it was above it, as Kafka
// does. Slices handed out earlier may now reach past the end of the file.
func (l *Log) TruncateTo(offset int64) error {
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: truncate to %d", ErrOffsetOutOfRange, offset)
	}
	if leo := l.leo.Load(); offset >= leo {
		// No record to cut, but an epoch may start at the log end with no batch in it: a
		// leader that was deposed before it appended anything. A follower told to
		// truncate here must drop it, or it keeps naming that epoch as its last fetched
		// one and the new leader, which never saw it, keeps answering with a divergence
		// (Kafka does the same).
		if l.epochs.truncateFromEnd(leo) {
			if err := l.epochs.write(); err != nil {
				return l.failLocked(err)
			}
		}
		return nil
	}
	// Cutting a marker reopens its transaction: until producer state is reloaded below,
	// the first unstable offset is the log start (it can only be too low meanwhile).
	l.unstable.Store(0)
	segs := *l.segs.Load()
	if offset <= segs[0].base {
		return l.truncateFullyLocked(offset)
	}
	k := segmentFor(segs, offset)
	if segs[k].base >= offset {
		k--
	}
	target := segs[k]
	if err := target.loadIndexes(l); err != nil {
		return err
	}
	size := target.size.Load()
	cut := size
	var loc batchLoc
	var found bool
	err := target.retryOnBadIndex(l, func() (err error) {
		loc, found, err = target.findBatch(offset, size)
		return err
	})
	if err != nil {
		return err
	}
	if found {
		cut = loc.pos
	}

	// Drop the later segments, newest first, and make that durable before the target is
	// cut: whenever the power goes, the segments left are a prefix of the log. Cutting
	// first would leave a gap below the later segments after a crash, with the divergent
	// tail TruncateTo removed back after it, or overlapping the batches appended since
	// (found by TestPowerLossAtEveryStep).
	if later := segs[k+1:]; len(later) > 0 {
		for i := len(later) - 1; i >= 0; i-- {
			if err := l.removeSegmentFiles(later[i]); err != nil {
				return l.failLocked(err)
			}
			later[i].release()
		}
		l.publishSegsLocked(segs[: k+1 : k+1])
		if err := l.syncDir(); err != nil {
			return l.failLocked(err)
		}
	}
	target.sealed = false
	if err := target.log.Truncate(cut); err != nil {
		return l.failLocked(fmt.Errorf("truncate %s: %w", target.path, err))
	}
	target.prealloc = 0 // the truncate freed any reservation past cut
	if err := target.log.Datasync(); err != nil {
		return l.failLocked(fmt.Errorf("sync %s: %w", target.path, err))
	}
	newEnd, err := l.reindexTailLocked(target, cut)
	if err != nil {
		return l.failLocked(err)
	}
	if err := l.cleanTruncatedLocked(newEnd); err != nil {
		return err
	}
	l.leo.Store(newEnd)
	if l.durable.Load() > newEnd {
		l.durable.Store(newEnd)
	}
	if l.logStart.Load() > newEnd {
		l.logStart.Store(newEnd)
		if err := l.writeLogStart(newEnd); err != nil {
			return l.failLocked(err)
		}
	}
	if l.epochs.truncateFromEnd(newEnd) {
		if err := l.epochs.write(); err != nil {
			return l.failLocked(err)
		}
	}
	if err := l.loadProducersLocked(l.listSnapshots()); err != nil {
		return l.failLocked(err)
	}
	return nil
}

// reindexTailLocked fixes segment s's in-memory indexes after its log was cut to cut
// bytes: entries at or beyond the cut are dropped, and the batches after the last remaining
// offset index entry are rescanned to restore the max timestamp, the ring and the index
// cadence; aborted transactions whose marker was cut go. It rewrites the index files and
// returns the segment's new next offset. mu held.
func (l *Log) reindexTailLocked(s *segment, cut int64) (int64, error) {
	cfg := l.config()
	mo, mt := maxEntries(cfg)
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	// Keys are last offsets: an entry survives only if its batch ends before the cut.
	n := s.oidx.len()
	keep := 0
	for keep < n {
		_, p := s.oidx.entry(keep)
		if int64(p) >= cut {
			break
		}
		keep++
	}
	from := int64(0)
	var limitRel uint32
	if keep > 0 {
		_, p := s.oidx.entry(keep - 1)
		from = int64(p)
	}
	// Find the next offset of the data that remains, scanning from the last kept entry.
	s.oidx.b = s.oidx.b[:keep*offsetEntrySize]
	s.oidx.written = min(s.oidx.written, len(s.oidx.b))
	if s.ring == nil {
		s.ring = new(tailRing)
	} else {
		*s.ring = tailRing{}
	}
	// The time index keeps entries for batches below the first rescanned batch; the
	// rescan re-adds later ones.
	sc := newScanner(s.log, from, cut)
	h, _, err := sc.next(false)
	next := s.base
	switch {
	case err == io.EOF:
		limitRel = s.relOf(s.base)
		if from > 0 {
			return 0, fmt.Errorf("segment: %s: no batch at index position %d", s.path, from)
		}
	case err != nil:
		return 0, &CorruptionError{Segment: s.path, Offset: from, Err: err}
	default:
		limitRel = s.relOf(h.BaseOffset)
	}
	s.tidx.truncate(limitRel)
	s.maxTs, s.maxTsOffset = -1, -1
	if ts, rel, ok := s.tidx.last(); ok {
		s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
	}
	s.sinceIndex = 0
	sc = newScanner(s.log, from, cut)
	for {
		h, pos, err := sc.next(false)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, &CorruptionError{Segment: s.path, Offset: pos, Err: err}
		}
		if pos == from && from > 0 {
			// Its index entry is kept; account for it without adding another.
			s.sinceIndex = 0
		}
		s.addBatchLocked(&h, pos, int64(cfg.IndexIntervalBytes), mo, mt)
		next = h.NextOffset()
	}
	if next == s.base && from > 0 {
		return 0, fmt.Errorf("segment: %s: nothing left after index position %d", s.path, from)
	}
	s.txn.truncate(next)
	s.size.Store(cut)
	s.next.Store(next)
	s.rollBase = l.now()
	return next, s.writeIndexesLocked(l.fs, true)
}

// truncateFullyLocked deletes every segment and restarts the log empty at off. mu held.
func (l *Log) truncateFullyLocked(off int64) error {
	segs := *l.segs.Load()
	for _, s := range segs {
		if err := l.removeSegmentFiles(s); err != nil {
			return l.failLocked(err)
		}
	}
	for _, snap := range l.listSnapshots() {
		l.fs.Remove(fileName(l.dir, snap, snapshotSuffix))
	}
	s, err := l.createSegmentLocked(off)
	if err != nil {
		return l.failLocked(err)
	}
	l.publishSegsLocked([]*segment{s})
	for _, old := range segs {
		old.release()
	}
	if err := l.cleanTruncatedLocked(off); err != nil {
		return err
	}
	l.leo.Store(off)
	l.durable.Store(off)
	l.logStart.Store(off)
	l.producers = newProducerState()
	l.publishUnstableLocked()
	if err := l.writeLogStart(off); err != nil {
		return l.failLocked(err)
	}
	if len(l.epochs.entries) > 0 {
		l.epochs.entries = nil
		if err := l.epochs.write(); err != nil {
			return l.failLocked(err)
		}
	}
	return nil
}

func (l *Log) listSnapshots() []int64 {
	entries, _ := l.fs.ReadDir(l.dir)
	var out []int64
	for _, e := range entries {
		if b, ok := parseFileName(e.Name(), snapshotSuffix); ok {
			out = append(out, b)
		}
	}
	return out
}
