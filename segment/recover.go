package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sedimentio/sediment/segment/vfs"
)

// Open opens (creating if needed) the partition log in dir and recovers it.
//
// Recovery relies on one invariant: a segment stops being the last one only after its log
// and indexes were fdatasync'ed (roll syncs before it creates the next segment). So every
// segment but the last is trusted: its metadata comes from the last entries of its index
// files plus a header scan of the few batches after the last offset index entry, and its
// indexes are loaded lazily on first read (rebuilt from the log if missing or corrupt).
//
// After a clean Close (the clean-shutdown marker exists) the last segment is treated the
// same way. After an unclean stop the last segment is scanned in full with CRC checks: a torn
// or corrupt tail is truncated to the last valid batch (logged with the segment, position
// and bytes dropped) and its indexes are rebuilt. Like Kafka, only segments being recovered
// lose what follows a corrupt batch; a corrupt index of a sealed segment only triggers an
// index rebuild of that segment, and corruption found in a sealed segment while rebuilding
// truncates that segment and leaves the segments after it alone (the offsets in between
// become a gap that reads skip).
//
// Producer state is loaded from the latest valid snapshot at or below the log end offset and
// rebuilt by replaying batch headers after it; the leader-epoch cache is loaded from its
// checkpoint and extended with the epochs of recovered batches.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, fs: opts.FS, logger: opts.Logger, now: opts.Now, syncSem: make(chan struct{}, 1), producers: newProducerState()}
	if l.fs == nil {
		l.fs = vfs.OS{}
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.cfg.Store(&cfg)
	// The directory's own entry must be durable too, or a power loss takes the whole log
	// with it (KAFKA-3968). MkdirAllDurable syncs the parents of what it creates; load
	// syncs the parent again when it starts an empty log, in case the directory came from
	// someone else (the broker) unsynced.
	if err := vfs.MkdirAllDurable(l.fs, dir); err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", dir, err)
	}
	if err := l.load(); err != nil {
		if segs := l.segs.Load(); segs != nil {
			for _, s := range *segs {
				s.release()
			}
		} else {
			for _, s := range l.loading {
				s.release()
			}
		}
		return nil, err
	}
	return l, nil
}

func (l *Log) load() error {
	if err := l.recoverSwaps(); err != nil {
		return err
	}
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("segment: open %s: %w", l.dir, err)
	}
	clean := l.exists(cleanMarkerName)
	var bases, snaps []int64
	indexFiles := map[int64][]string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			l.fs.Remove(filepath.Join(l.dir, name)) // an interrupted atomic write
			continue
		}
		if b, ok := parseFileName(name, logSuffix); ok {
			bases = append(bases, b)
		} else if b, ok := parseFileName(name, snapshotSuffix); ok {
			snaps = append(snaps, b)
		} else if b, ok := parseFileName(name, indexSuffix); ok {
			indexFiles[b] = append(indexFiles[b], name)
		} else if b, ok := parseFileName(name, timeIndexSuffix); ok {
			indexFiles[b] = append(indexFiles[b], name)
		} else if b, ok := parseFileName(name, txnIndexSuffix); ok {
			indexFiles[b] = append(indexFiles[b], name)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	for b, names := range indexFiles {
		if i := sort.Search(len(bases), func(i int) bool { return bases[i] >= b }); i == len(bases) || bases[i] != b {
			for _, n := range names {
				l.fs.Remove(filepath.Join(l.dir, n)) // index without a log
			}
		}
	}

	l.epochs, err = loadEpochCache(l.fs, l.dir)
	if err != nil {
		l.logger.Warn("segment: ignoring leader epoch checkpoint", "dir", l.dir, "err", err)
	}
	ckptStart, err := l.readLogStart()
	if err != nil {
		l.logger.Warn("segment: ignoring log start offset checkpoint", "dir", l.dir, "err", err)
		ckptStart = -1
	}

	for i, base := range bases {
		f, err := l.fs.OpenReadWrite(fileName(l.dir, base, logSuffix))
		if err != nil {
			return fmt.Errorf("segment: open segment: %w", err)
		}
		s := newSegment(l.dir, base, f)
		l.loading = append(l.loading, s)
		last := i == len(bases)-1
		if last {
			s.ring = new(tailRing)
		}
		if last && !clean {
			if err := l.recoverSegment(s, true); err != nil {
				return err
			}
		} else if err := l.loadSegment(s); err != nil {
			l.logger.Warn("segment: recovering segment", "segment", s.path, "reason", err)
			if err := l.recoverSegment(s, last); err != nil {
				return err
			}
		}
		if last {
			if err := s.loadIndexes(l); err != nil {
				return err
			}
		}
		// The aborted-transaction index: trusted like the other indexes, except that
		// the active segment's after an unclean stop only reached disk at the last roll
		// or Close. One that is stale or corrupt is rebuilt by the producer replay.
		if last && !clean {
			s.txnRebuild = true
		} else if err := s.loadTxnIndex(l.fs); err != nil {
			l.logger.Warn("segment: rebuilding transaction index", "segment", s.path, "err", err)
			s.txnRebuild = true
		}
	}
	for i := 1; i < len(l.loading); i++ {
		if prev, s := l.loading[i-1], l.loading[i]; prev.next.Load() > s.base {
			return &CorruptionError{Segment: s.path, Offset: 0, Err: fmt.Errorf("%w: segment %s ends at offset %d, after this segment's base", ErrCorruptBatch, prev.path, prev.next.Load())}
		}
	}
	segs := l.loading
	l.loading = nil
	if len(segs) == 0 {
		s, err := l.createSegmentLocked(max(ckptStart, 0))
		if err != nil {
			return err
		}
		segs = []*segment{s}
		if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
			s.release()
			return fmt.Errorf("segment: sync directory %s: %w", filepath.Dir(l.dir), err)
		}
	}
	for _, s := range segs[:len(segs)-1] {
		s.sealed = true
	}
	l.publishSegsLocked(segs)
	l.active.rollBase = l.now()
	leo := l.active.next.Load()
	l.leo.Store(leo)

	logStart := max(ckptStart, segs[0].base)
	if logStart > leo {
		// DeleteRecords moved the start past data that was then lost in a crash.
		l.logger.Warn("segment: log start offset beyond log end, starting empty", "dir", l.dir, "log_start", logStart, "log_end", leo)
		if err := l.truncateFullyLocked(logStart); err != nil {
			return err
		}
		leo = logStart
	}
	l.logStart.Store(logStart)

	if l.epochs.truncateFromEnd(leo) || l.epochs.truncateFromStart(logStart) {
		if err := l.epochs.write(); err != nil {
			return err
		}
	}
	if err := l.loadProducersLocked(snaps); err != nil {
		return err
	}
	l.readCleanerCheckpoint()
	if err := l.fs.Remove(filepath.Join(l.dir, cleanMarkerName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("segment: remove clean-shutdown marker: %w", err)
	}
	if err := l.active.log.Datasync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", l.active.path, err)
	}
	if err := l.syncDir(); err != nil {
		return err
	}
	l.durable.Store(leo)
	return nil
}

var errNeedRecovery = errors.New("segment needs recovery")

// loadSegment reads a trusted segment's metadata without scanning it: the last offset index
// entry gives a batch position, the batches after it are header-scanned to find the next
// offset and size, the last time index entry gives the max timestamp.
func (l *Log) loadSegment(s *segment) error {
	st, err := s.log.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size > math.MaxInt32 {
		return fmt.Errorf("%w: %d bytes", errNeedRecovery, size)
	}
	idxPos, ok, err := lastIndexEntryPos(l.fs, s.indexPath(), size)
	if err != nil {
		return err
	}
	if !ok {
		idxPos = 0
	}
	maxTs, maxTsRel, err := lastTimeIndexEntry(l.fs, s.timeIndexPath())
	if err != nil {
		return err
	}
	s.size.Store(size)
	s.maxTs = maxTs
	if maxTs >= 0 {
		s.maxTsOffset = s.base + int64(maxTsRel)
	}
	next := s.base
	sc := newScanner(s.log, idxPos, size)
	for {
		h, pos, err := sc.next(false)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: at %d: %w", errNeedRecovery, pos, err)
		}
		if h.BaseOffset < s.base || h.LastOffset()-s.base > math.MaxInt32 {
			return fmt.Errorf("%w: batch at %d has offsets [%d, %d] outside the segment", errNeedRecovery, pos, h.BaseOffset, h.LastOffset())
		}
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
		}
		next = h.NextOffset()
	}
	if maxTs >= 0 && s.maxTsOffset >= next && size > 0 {
		return fmt.Errorf("%w: time index points beyond the log", errNeedRecovery)
	}
	if size > 0 && next == s.base && idxPos > 0 {
		return fmt.Errorf("%w: no batch after the last index entry", errNeedRecovery)
	}
	s.next.Store(next)
	s.sinceIndex = size - idxPos
	return nil
}

// lastIndexEntryPos returns the position of the last offset index entry, sanity-checking
// the file's size and that the position lies inside the log.
func lastIndexEntryPos(fsys vfs.FS, path string, logSize int64) (int64, bool, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", errNeedRecovery, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if st.Size()%offsetEntrySize != 0 {
		return 0, false, fmt.Errorf("%w: offset index of %d bytes", errNeedRecovery, st.Size())
	}
	if st.Size() == 0 {
		return 0, false, nil
	}
	var e [offsetEntrySize]byte
	if _, err := f.ReadAt(e[:], st.Size()-offsetEntrySize); err != nil {
		return 0, false, err
	}
	x := offsetIndex{b: e[:]}
	_, pos := x.entry(0)
	if int64(pos) >= logSize {
		return 0, false, fmt.Errorf("%w: offset index entry at %d beyond the log (%d bytes)", errNeedRecovery, pos, logSize)
	}
	return int64(pos), true, nil
}

func lastTimeIndexEntry(fsys vfs.FS, path string) (ts int64, rel uint32, err error) {
	f, err := fsys.Open(path)
	if err != nil {
		return -1, 0, fmt.Errorf("%w: %w", errNeedRecovery, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return -1, 0, err
	}
	if st.Size()%timeEntrySize != 0 {
		return -1, 0, fmt.Errorf("%w: time index of %d bytes", errNeedRecovery, st.Size())
	}
	if st.Size() == 0 {
		return -1, 0, nil
	}
	var e [timeEntrySize]byte
	if _, err := f.ReadAt(e[:], st.Size()-timeEntrySize); err != nil {
		return -1, 0, err
	}
	x := timeIndex{b: e[:]}
	ts, rel = x.entry(0)
	return ts, rel, nil
}

// recoverSegment scans a segment's whole log with CRC checks, truncates it after the last
// valid batch, rebuilds its indexes and writes them. For the last segment (active) it also
// extends the leader-epoch cache from the batches' partitionLeaderEpoch, as Kafka does.
func (l *Log) recoverSegment(s *segment, active bool) error {
	st, err := s.log.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	cfg := l.config()
	mo, mt := maxEntries(cfg)
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	s.oidx, s.tidx = offsetIndex{}, timeIndex{}
	s.sinceIndex = 0
	s.maxTs, s.maxTsOffset = -1, -1
	if s.ring != nil {
		*s.ring = tailRing{}
	}
	next, valid := s.base, int64(0)
	var bad error
	epochChanged := false
	sc := newScanner(s.log, 0, size)
	for {
		h, pos, err := sc.next(true)
		if err == io.EOF {
			break
		}
		if err == nil && (h.BaseOffset < s.base || h.LastOffset()-s.base > math.MaxInt32 || pos > math.MaxInt32) {
			err = fmt.Errorf("%w: batch offsets [%d, %d] outside segment %d", ErrCorruptBatch, h.BaseOffset, h.LastOffset(), s.base)
		}
		if err != nil {
			if !isCorrupt(err) {
				return fmt.Errorf("segment: recover %s: %w", s.path, err)
			}
			bad = err
			break
		}
		s.addBatchLocked(&h, pos, int64(cfg.IndexIntervalBytes), mo, mt)
		if active && h.PartitionLeaderEpoch >= 0 && l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset) {
			epochChanged = true
		}
		next, valid = h.NextOffset(), pos+h.Size()
	}
	if bad != nil || valid < size {
		l.logger.Warn("segment: truncating corrupt or torn tail",
			"segment", s.path, "position", valid, "bytes_dropped", size-valid, "err", errString(bad))
		if err := s.log.Truncate(valid); err != nil {
			return fmt.Errorf("segment: truncate %s: %w", s.path, err)
		}
		if err := s.log.Datasync(); err != nil {
			return fmt.Errorf("segment: sync %s: %w", s.path, err)
		}
	}
	if !active {
		s.finalTimeEntryLocked()
	}
	s.size.Store(valid)
	s.next.Store(next)
	s.idxLoaded = true
	if epochChanged {
		if err := l.epochs.write(); err != nil {
			return err
		}
	}
	return s.writeIndexesLocked(l.fs, true)
}

// loadProducersLocked rebuilds producer state: the latest readable snapshot at or below
// the log end, then a replay of the batches after it. Snapshots above the log end (from a
// tail that was truncated) and below the first segment are deleted. Segments marked
// txnRebuild get their aborted-transaction index rebuilt by the replay, which then starts
// at a snapshot at or below the first of them (or at the first segment), and written.
func (l *Log) loadProducersLocked(snaps []int64) error {
	leo := l.leo.Load()
	segs := *l.segs.Load()
	first := segs[0].base
	limit := leo
	for _, s := range segs {
		if s.txnRebuild {
			limit = min(limit, s.base)
			s.idxMu.Lock()
			s.txn.b, s.txn.written = nil, 0 // rewritten whole
			s.idxMu.Unlock()
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i] > snaps[j] })
	from := int64(-1)
	l.producers = newProducerState()
	for _, off := range snaps {
		path := fileName(l.dir, off, snapshotSuffix)
		if off > leo || off < first {
			l.fs.Remove(path)
			continue
		}
		if from >= 0 || off > limit {
			continue
		}
		ps, err := readSnapshot(l.fs, path, off)
		if err != nil {
			l.logger.Warn("segment: ignoring producer snapshot", "path", path, "err", err)
			l.fs.Remove(path)
			continue
		}
		l.producers, from = ps, off
	}
	if from < 0 {
		from = first
	}
	if err := l.replayProducersLocked(from); err != nil {
		return err
	}
	l.publishUnstableLocked()
	for _, s := range segs {
		if !s.txnRebuild {
			continue
		}
		s.idxMu.Lock()
		err := s.writeTxnIndexLocked(l.fs, true)
		s.idxMu.Unlock()
		if err != nil {
			return err
		}
		s.txnRebuild = false
	}
	return nil
}

// replayProducersLocked applies the producer fields of every batch at or after from.
func (l *Log) replayProducersLocked(from int64) error {
	segs := *l.segs.Load()
	for i := segmentFor(segs, from); i < len(segs); i++ {
		s := segs[i]
		if s.next.Load() <= from {
			continue
		}
		if err := s.retryOnBadIndex(l, func() error { return l.replaySegmentLocked(s, from) }); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) replaySegmentLocked(s *segment, from int64) error {
	start := int64(0)
	if from > s.base {
		if err := s.loadIndexes(l); err != nil {
			return err
		}
		s.idxMu.RLock()
		key, pos, ok := s.oidx.lookup(s.relOf(from))
		s.idxMu.RUnlock()
		if ok {
			if _, err := s.entryHeader(key, pos, s.size.Load()); err != nil {
				return err
			}
			start = pos
		}
	}
	// Collect first: a scan that fails half way (a bad index position) must not have
	// applied anything, as it is retried from a rebuilt index.
	var hdrs []BatchHeader
	var markers []marker
	sc := newScanner(s.log, start, s.size.Load())
	for {
		h, pos, err := sc.next(false)
		if err == io.EOF {
			break
		}
		if err != nil {
			return &CorruptionError{Segment: s.path, Offset: pos, Err: err}
		}
		if h.BaseOffset >= from && h.HasProducer() {
			mk, err := parseMarker(&h, sc.ctl)
			if err != nil {
				// Appends check markers, so this is damage the scan cannot see (it
				// checks no CRC): the marker still ends its transaction, unindexed.
				l.logger.Warn("segment: undecodable transaction marker", "segment", s.path, "position", pos, "err", err)
				mk = marker{markerCommit, -1}
			}
			hdrs = append(hdrs, h)
			markers = append(markers, mk)
		}
	}
	target := s
	if !s.txnRebuild {
		target = nil
	}
	for i := range hdrs {
		l.applyBatchLocked(target, &hdrs[i], markers[i])
	}
	return nil
}
