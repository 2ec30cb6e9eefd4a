package segment

import (
	"fmt"
	"math"

	"github.com/sedimentio/sediment/segment/vfs"
)

// AppendLeader validates the v2 batches in records (one or more, concatenated, as received
// in a Produce request), checks idempotent-producer state, assigns offsets, and appends
// them to the active segment, rolling first when needed. It rewrites records in place:
// baseOffset, partitionLeaderEpoch = leaderEpoch and, for LogAppendTime topics, the
// timestamp type, maxTimestamp and CRC. All batches are appended or none is. It does not
// wait for durability: see WaitDurable.
//
// Validation is header-level plus CRC (records are never decoded or re-encoded): see
// ValidateBatch, plus at least one record per batch and lastOffsetDelta == recordCount-1
// (Kafka's LogValidator rules for client batches), each batch at most MaxMessageBytes
// (ErrRecordTooLarge) and the whole append at most SegmentBytes (ErrAppendTooLarge). On a compacted log
// (cleanup.policy includes compact) every record must have a key (ErrNoKey): only then are
// records decoded, decompressing if need be.
//
// Idempotence: a batch identical in producer id, epoch and sequence range to one of the
// last five batches of that producer is a duplicate; when every batch of the call is a
// duplicate nothing is written and the result has Duplicate set and the original offsets.
// A call mixing duplicates and new batches fails with ErrOutOfOrderSequence.
//
// Transactions: a transactional batch opens its producer's transaction if none is ongoing
// (see FirstUnstableOffset). Control batches are refused (ErrControlBatch), as Kafka
// refuses them from clients: markers come from the coordinator through AppendMarker.
func (l *Log) AppendLeader(records []byte, leaderEpoch int32) (AppendResult, error) {
	return l.AppendLeaderGuarded(records, leaderEpoch, 0)
}

// AppendLeaderGuarded is AppendLeader for data verified with the transaction
// coordinator (KIP-890 part 1): a transactional batch that would start its
// producer's transaction here is refused with ErrTxnNotVerified unless guard
// is still the producer's (StartTxnVerification). A zero guard checks
// nothing, as AppendLeader.
func (l *Log) AppendLeaderGuarded(records []byte, leaderEpoch int32, guard TxnGuard) (AppendResult, error) {
	cfg := l.config()
	var hb [4]BatchHeader
	hdrs, err := parseBatches(records, hb[:0], true, cfg)
	if err != nil {
		return AppendResult{}, err
	}
	for i := range hdrs {
		if hdrs[i].Control() {
			return AppendResult{}, fmt.Errorf("%w: batch %d of the append", ErrControlBatch, i)
		}
	}
	appendTime := int64(-1)
	if cfg.LogAppendTime {
		appendTime = l.now().UnixMilli()
		pos := int64(0)
		for i := range hdrs {
			h := &hdrs[i]
			setLogAppendTime(records[pos:pos+h.Size()], appendTime)
			h.MaxTimestamp = appendTime
			h.Attributes |= attrLogAppendTime
			pos += h.Size()
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return AppendResult{}, err
	}
	first := l.leo.Load()
	next := first
	for i := range hdrs {
		hdrs[i].BaseOffset = next
		hdrs[i].PartitionLeaderEpoch = leaderEpoch
		next = hdrs[i].NextOffset()
	}

	// Producer checks on copies of the state, written back only once the data is written.
	var pb [4]pendingProducer
	pend := pb[:0]
	dups := 0
	var dup AppendResult
	var started []int64 // producers whose transaction these batches start
	for i := range hdrs {
		h := &hdrs[i]
		if !h.HasProducer() {
			continue
		}
		var p *pendingProducer
		pend, p = l.producers.pending(pend, h.ProducerID)
		d, err := p.e.check(h, p.known)
		if err != nil {
			return AppendResult{}, err
		}
		if d != nil {
			if dups == 0 {
				dup.FirstOffset = d.firstOffset
			}
			dup.LastOffset = d.lastOffset
			dup.LogAppendTime = -1
			if cfg.LogAppendTime {
				dup.LogAppendTime = d.timestamp
			}
			dups++
			continue
		}
		if h.Transactional() && p.e.txnFirstOffset < 0 {
			if err := l.checkGuardLocked(h, guard); err != nil {
				return AppendResult{}, err
			}
			started = append(started, h.ProducerID)
		}
		p.e.apply(h)
		p.known = true
	}
	if dups > 0 {
		if dups != len(hdrs) {
			return AppendResult{}, fmt.Errorf("%w: %d of %d batches are duplicates", ErrOutOfOrderSequence, dups, len(hdrs))
		}
		dup.Duplicate = true
		dup.LogStartOffset = l.logStart.Load()
		return dup, nil
	}

	if err := l.maybeRollLocked(cfg, int64(len(records)), first, next-1); err != nil {
		return AppendResult{}, err
	}
	if leaderEpoch >= 0 && l.epochs.assign(leaderEpoch, first) {
		if err := l.epochs.write(); err != nil {
			return AppendResult{}, err
		}
	}
	pos := int64(0)
	for i := range hdrs {
		setOffsetAndEpoch(records[pos:], hdrs[i].BaseOffset, leaderEpoch)
		pos += hdrs[i].Size()
	}
	l.lowerUnstableLocked(hdrs)
	if err := l.writeLocked(cfg, records, hdrs); err != nil {
		l.publishUnstableLocked()
		return AppendResult{}, err
	}
	l.producers.commit(pend)
	for _, id := range started {
		l.dropGuardLocked(id)
	}
	l.publishUnstableLocked()
	return AppendResult{
		FirstOffset:    first,
		LastOffset:     next - 1,
		LogAppendTime:  appendTime,
		LogStartOffset: l.logStart.Load(),
	}, nil
}

// AppendFollower appends batches whose offsets a leader assigned (replication). It checks
// each batch with ValidateBatch, that the first batch starts at or after LogEndOffset and
// that offsets increase, then appends them (a gap is the leader's compaction: the batches
// a follower fetches from a cleaned log may start after the offset it asked for, as in
// Kafka), rolling between batches as needed, and updates
// producer state, the aborted-transaction index (from ABORT markers, exactly as
// AppendMarker does on the leader) and the leader-epoch cache from the batches. Sizes are
// not limited by MaxMessageBytes: the leader accepted them. A control batch must hold a
// transaction marker (ErrCorruptBatch otherwise).
func (l *Log) AppendFollower(records []byte) error {
	cfg := l.config()
	var hb [4]BatchHeader
	hdrs, err := parseBatches(records, hb[:0], false, cfg)
	if err != nil {
		return err
	}
	var mb [4]marker
	markers, err := markersOf(records, hdrs, mb[:0])
	if err != nil {
		return err
	}
	for i := 1; i < len(hdrs); i++ {
		if hdrs[i].BaseOffset < hdrs[i-1].NextOffset() {
			return fmt.Errorf("%w: batch at offset %d follows batch ending at %d", ErrCorruptBatch, hdrs[i].BaseOffset, hdrs[i-1].LastOffset())
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if leo := l.leo.Load(); hdrs[0].BaseOffset < leo {
		return fmt.Errorf("%w: follower append at offset %d, log end offset is %d", ErrOffsetOutOfRange, hdrs[0].BaseOffset, leo)
	}
	start := int64(0)
	for i := 0; i < len(hdrs); {
		h := &hdrs[i]
		if err := l.maybeRollLocked(cfg, h.Size(), h.BaseOffset, h.LastOffset()); err != nil {
			return err
		}
		// Extend the chunk while it fits in the active segment.
		s := l.active
		size := s.size.Load() + h.Size()
		j := i + 1
		for j < len(hdrs) && size+hdrs[j].Size() <= cfg.SegmentBytes && hdrs[j].LastOffset()-s.base <= math.MaxInt32 {
			size += hdrs[j].Size()
			j++
		}
		changed := false
		for k := i; k < j; k++ {
			if hdrs[k].PartitionLeaderEpoch >= 0 && l.epochs.assign(hdrs[k].PartitionLeaderEpoch, hdrs[k].BaseOffset) {
				changed = true
			}
		}
		if changed {
			if err := l.epochs.write(); err != nil {
				return err
			}
		}
		n := size - s.size.Load()
		l.lowerUnstableLocked(hdrs[i:j])
		if err := l.writeLocked(cfg, records[start:start+n], hdrs[i:j]); err != nil {
			l.publishUnstableLocked()
			return err
		}
		for k := i; k < j; k++ {
			l.applyBatchLocked(s, &hdrs[k], markers[k])
		}
		l.publishUnstableLocked()
		start += n
		i = j
	}
	return nil
}

// parseBatches validates the concatenated batches of records into hdrs.
func parseBatches(records []byte, hdrs []BatchHeader, leader bool, cfg *Config) ([]BatchHeader, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batch", ErrCorruptBatch)
	}
	if leader && int64(len(records)) > cfg.SegmentBytes {
		return nil, fmt.Errorf("%w: %d bytes appended at once, segment.bytes is %d", ErrAppendTooLarge, len(records), cfg.SegmentBytes)
	}
	var scratch []byte // decompressed records of a compacted topic's batch
	for pos := 0; pos < len(records); {
		h, err := ValidateBatch(records[pos:])
		if err == nil && leader {
			err = h.checkLeader()
		}
		if err != nil {
			return nil, err
		}
		if leader && h.Size() > int64(cfg.MaxMessageBytes) {
			return nil, fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", ErrRecordTooLarge, h.Size(), cfg.MaxMessageBytes)
		}
		if leader && cfg.CleanupPolicy.Compact() {
			// Compaction keeps the last record of each key: every record needs one
			// (Kafka's LogValidator). The only record decoding on the produce path.
			if err := checkKeys(&h, records[pos:pos+int(h.Size())], &scratch); err != nil {
				return nil, err
			}
		}
		if !leader && (h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64-int64(math.MaxInt32)-1) {
			return nil, fmt.Errorf("%w: base offset %d", ErrCorruptBatch, h.BaseOffset)
		}
		hdrs = append(hdrs, h)
		pos += int(h.Size())
	}
	return hdrs, nil
}

// writeLocked writes records (whole batches described by hdrs, offsets assigned) at the
// end of the active segment with one write, then publishes them: indexes, size, end offset.
// A failed write is truncated away; if even that fails the log is marked failed. mu held.
func (l *Log) writeLocked(cfg *Config, records []byte, hdrs []BatchHeader) error {
	s := l.active
	pos := s.size.Load()
	l.preallocLocked(cfg, s, pos+int64(len(records)))
	if _, err := s.log.WriteAt(records, pos); err != nil {
		err = fmt.Errorf("segment: append to %s: %w", s.path, err)
		if terr := s.log.Truncate(pos); terr != nil {
			return l.failLocked(err)
		}
		s.prealloc = 0 // freed by the truncate
		return err
	}
	if pos == 0 {
		s.rollBase = l.now()
	}
	mo, mt := maxEntries(cfg)
	interval := int64(cfg.IndexIntervalBytes)
	s.idxMu.Lock()
	p := pos
	for i := range hdrs {
		s.addBatchLocked(&hdrs[i], p, interval, mo, mt)
		p += hdrs[i].Size()
	}
	s.idxMu.Unlock()
	next := hdrs[len(hdrs)-1].NextOffset()
	s.size.Store(p)
	s.next.Store(next)
	l.leo.Store(next)
	return nil
}

// Reserving disk space ahead of the appends (preallocLocked): none before a segment holds
// preallocMin, then as much as it holds, at most preallocMax, past the end of a write.
const (
	preallocMin = 64 << 10
	preallocMax = 8 << 20
)

// preallocLocked reserves disk space for the active segment s past end, the end of the
// write about to happen, when the reservation does not reach it (vfs.Preallocator;
// fallocate with FALLOC_FL_KEEP_SIZE). On ext4, appends then find their blocks allocated,
// so neither the write nor the fdatasync that group commit runs after it has delayed
// allocation to do: about 10% less kernel CPU for 16 logs appending 64 KB batches with a
// sync per millisecond each, on ext4 on this project's machines (the memory copy into the
// page cache, which no reservation avoids, is most of the rest; BENCH.md, "Profiles"). The size is unchanged, so nothing that reads
// the file sees the reservation; a roll releases what the sealed segment did not use
// (releasePreallocLocked). The reservation grows with the segment (a segment of a few bytes
// reserves nothing, one of 64 KiB another 64 KiB) up to preallocMax ahead, and never past
// segment.bytes. A failure leaves the appends as they were without it; the segment does
// not try again. mu held.
func (l *Log) preallocLocked(cfg *Config, s *segment, end int64) {
	if end <= s.prealloc {
		return
	}
	p, ok := s.log.(vfs.Preallocator)
	if !ok {
		return
	}
	if end < preallocMin {
		return // small segments reserve nothing
	}
	to := min(end+min(end, preallocMax), cfg.SegmentBytes)
	if to <= end {
		return
	}
	from := max(s.prealloc, s.size.Load())
	if err := p.Preallocate(from, to-from); err != nil {
		s.prealloc = math.MaxInt64
		l.logger.Debug("segment: reserving disk space ahead of appends failed; appending without", "segment", s.path, "err", err)
		return
	}
	s.prealloc = to
}

// releasePreallocLocked gives back the disk space reserved past the end of s, which is
// sealed: a truncate to its size (ext4 frees the blocks past the size even when the size
// does not change). The reservation may be older than this process (a restart keeps it on
// disk, and s.prealloc starts at 0), so every segment of a file system that reserves is
// truncated: one ftruncate per roll. mu held.
func (l *Log) releasePreallocLocked(s *segment) {
	if _, ok := s.log.(vfs.Preallocator); !ok {
		return
	}
	if err := s.log.Truncate(s.size.Load()); err != nil {
		l.logger.Warn("segment: releasing the disk space reserved past a sealed segment", "segment", s.path, "err", err)
	}
	s.prealloc = 0
}

// maybeRollLocked rolls the active segment when an append of n bytes with offsets
// [first, last] should go to a new one: segment.bytes would be exceeded, segment.ms has
// elapsed since the segment's first append, an index is full, or the last offset would not
// fit the indexes' 32-bit relative offsets. An empty segment is never rolled, except that
// one whose base is too far below first is replaced. mu held.
func (l *Log) maybeRollLocked(cfg *Config, n, first, last int64) error {
	s := l.active
	size := s.size.Load()
	if size == 0 {
		if last-s.base > math.MaxInt32 {
			return l.rollLocked(first)
		}
		return nil
	}
	mo, mt := maxEntries(cfg)
	s.idxMu.RLock() // a reader may be rebuilding a bad index from disk
	full := s.oidx.len() >= mo || s.tidx.len() >= mt
	s.idxMu.RUnlock()
	if full || size+n > cfg.SegmentBytes ||
		l.now().Sub(s.rollBase) >= cfg.SegmentMs ||
		last-s.base > math.MaxInt32 {
		return l.rollLocked(first)
	}
	return nil
}

// MaybeRoll rolls the active segment if it is not empty and segment.ms has elapsed since
// its first append. The broker calls it periodically.
func (l *Log) MaybeRoll() error {
	cfg := l.config()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if s := l.active; s.size.Load() > 0 && l.now().Sub(s.rollBase) >= cfg.SegmentMs {
		return l.rollLocked(l.leo.Load())
	}
	return nil
}

// Roll seals the active segment and starts a new one at the log end offset. It does
// nothing when the active segment is empty.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	return l.rollLocked(l.leo.Load())
}

// rollLocked seals the active segment (final time index entry, indexes written, log and
// indexes fdatasync'ed), writes a producer snapshot at newBase, and creates the new
// segment's files, fsyncing the directory, before publishing it. An empty active segment is
// replaced instead (or kept when its base is already newBase). mu held.
func (l *Log) rollLocked(newBase int64) error {
	old := l.active
	segs := *l.segs.Load()
	if old.size.Load() == 0 {
		if old.base == newBase {
			return nil
		}
		s, err := l.createSegmentLocked(newBase)
		if err != nil {
			return err
		}
		nsegs := append(append([]*segment(nil), segs[:len(segs)-1]...), s)
		l.publishSegsLocked(nsegs)
		if err := l.removeSegmentFiles(old); err != nil {
			l.logger.Warn("segment: remove empty segment", "segment", old.path, "err", err)
		}
		old.release()
		return nil
	}
	old.idxMu.Lock()
	old.finalTimeEntryLocked()
	err := old.writeIndexesLocked(l.fs, true)
	old.idxMu.Unlock()
	if err != nil {
		return err
	}
	if err := old.log.Datasync(); err != nil {
		return l.failLocked(fmt.Errorf("sync %s: %w", old.path, err))
	}
	l.releasePreallocLocked(old)
	if err := l.producers.writeSnapshot(l.fs, l.dir, newBase); err != nil {
		return err
	}
	s, err := l.createSegmentLocked(newBase)
	if err != nil {
		return err
	}
	old.sealed = true
	nsegs := append(append(make([]*segment, 0, len(segs)+1), segs...), s)
	l.publishSegsLocked(nsegs)
	return nil
}
