package segment

import (
	"fmt"
	"math"
	"time"
)

// ApplyRetention deletes the oldest segments that retention allows, as Kafka's log
// retention does, in order: segments whose max timestamp (file modification time when no
// batch had one) is older than retention.ms; then the oldest segments while the log
// stays at least retention.bytes big without them; then segments wholly below the log start
// offset. Deletion stops at the first segment that must stay. The active segment counts too
// unless it is empty: when it has to go, the log rolls first, as Kafka does. The log start
// offset moves to the first remaining segment and is checkpointed before files are removed.
// With cleanup.policy=compact alone only the last rule applies (compact,delete: all of them).
//
// It does not know the high watermark: like Kafka, the broker should not expect retention to
// hold back for unreplicated data.
func (l *Log) ApplyRetention() (deletedSegments int, err error) {
	cfg := l.config()
	if !cfg.CleanupPolicy.Delete() {
		// cleanup.policy=compact alone: Kafka deletes nothing by retention.*, only
		// segments wholly below the log start offset (DeleteRecords).
		return l.applyRetention(-1, -1, math.MaxInt64)
	}
	return l.applyRetention(cfg.RetentionMs, cfg.RetentionBytes, math.MaxInt64)
}

// ApplyLocalRetention is ApplyRetention for a log whose sealed segments are
// copied to object storage (KIP-405): segments go by local.retention.ms and
// local.retention.bytes instead, and only those wholly below uploadedEnd (the
// offset after the last segment whose copy finished), so nothing is deleted
// before it is safe in the tier. The active segment is never deleted.
func (l *Log) ApplyLocalRetention(retentionMs time.Duration, retentionBytes int64, uploadedEnd int64) (deletedSegments int, err error) {
	return l.applyRetention(retentionMs, retentionBytes, uploadedEnd)
}

func (l *Log) applyRetention(retentionMs time.Duration, retentionBytes int64, limit int64) (deletedSegments int, err error) {
	cfg := Config{RetentionMs: retentionMs, RetentionBytes: retentionBytes}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	segs := *l.segs.Load()
	deletable := func(i int) bool {
		if limit != math.MaxInt64 {
			// Tiered: only sealed segments whose copy finished.
			return i < len(segs)-1 && segs[i+1].base <= limit
		}
		return !(i == len(segs)-1 && segs[i].size.Load() == 0)
	}
	n := 0
	if cfg.RetentionMs >= 0 {
		now := l.now().UnixMilli()
		for n < len(segs) && deletable(n) {
			ts, err := segs[n].largestTimestamp()
			if err != nil {
				return 0, err
			}
			if now-ts <= cfg.RetentionMs.Milliseconds() {
				break
			}
			n++
		}
	}
	if cfg.RetentionBytes >= 0 {
		diff := -cfg.RetentionBytes
		for _, s := range segs[n:] {
			diff += s.size.Load()
		}
		for n < len(segs) && deletable(n) && diff-segs[n].size.Load() >= 0 {
			diff -= segs[n].size.Load()
			n++
		}
	}
	start := l.logStart.Load()
	for n < len(segs)-1 && segs[n+1].base <= start && deletable(n) {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, l.deleteOldestLocked(n)
}

// largestTimestamp is the segment's max timestamp, or its file's modification time when
// no batch had a timestamp (Kafka's LogSegment.largestTimestamp).
func (s *segment) largestTimestamp() (int64, error) {
	s.idxMu.RLock()
	ts := s.maxTs
	s.idxMu.RUnlock()
	if ts >= 0 {
		return ts, nil
	}
	st, err := s.log.Stat()
	if err != nil {
		return 0, fmt.Errorf("segment: stat %s: %w", s.path, err)
	}
	return st.ModTime().UnixMilli(), nil
}

// DeleteRecordsBefore implements the DeleteRecords API: it advances the log start offset to
// offset (checkpointed in log-start-offset) and deletes the segments wholly below it. It
// returns the new log start offset, unchanged when offset is not above it. An offset above
// the log end offset is ErrOffsetOutOfRange (the broker checks it against the high
// watermark first). Producer state is kept, so producers whose batches were all deleted
// can continue their sequences.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	start, leo := l.logStart.Load(), l.leo.Load()
	if offset < 0 || offset > leo {
		return start, fmt.Errorf("%w: delete records before %d, log is [%d, %d]", ErrOffsetOutOfRange, offset, start, leo)
	}
	if offset <= start {
		return start, nil
	}
	if err := l.writeLogStart(offset); err != nil {
		return start, err
	}
	l.logStart.Store(offset)
	if l.epochs.truncateFromStart(offset) {
		if err := l.epochs.write(); err != nil {
			return offset, err
		}
	}
	segs := *l.segs.Load()
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= offset {
		n++
	}
	if n > 0 {
		if err := l.deleteOldestLocked(n); err != nil {
			return offset, err
		}
	}
	return offset, nil
}

// deleteOldestLocked deletes the n oldest segments (rolling first when that is all of
// them), moves the log start offset to the first remaining segment if that is above it,
// and deletes producer snapshots below it. mu held.
func (l *Log) deleteOldestLocked(n int) error {
	segs := *l.segs.Load()
	if n >= len(segs) {
		if err := l.rollLocked(l.leo.Load()); err != nil {
			return err
		}
		segs = *l.segs.Load()
		n = len(segs) - 1
	}
	dead, rest := segs[:n], append([]*segment(nil), segs[n:]...)
	if first := rest[0].base; first > l.logStart.Load() {
		if err := l.writeLogStart(first); err != nil {
			return err
		}
		l.logStart.Store(first)
		if l.epochs.truncateFromStart(first) {
			if err := l.epochs.write(); err != nil {
				return err
			}
		}
	}
	l.publishSegsLocked(rest)
	var firstErr error
	for _, s := range dead {
		if err := l.removeSegmentFiles(s); err != nil && firstErr == nil {
			firstErr = err
		}
		s.release()
	}
	for _, off := range l.listSnapshots() {
		if off < rest[0].base {
			l.fs.Remove(fileName(l.dir, off, snapshotSuffix))
		}
	}
	return firstErr
}
