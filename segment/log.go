package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedimentio/sediment/segment/vfs"
)

// Log is the durable log of one partition: a directory of segments in Kafka's format.
//
// All methods are safe for concurrent use. Appends, rolls, truncation and retention
// serialize on an append lock held only for in-memory work and one write; Read, the
// offset getters, DurableOffset and OffsetForTimestamp do not take it (they use atomics
// and per-segment index locks); WaitDurable queues on a group-commit token, not on the
// append lock.
//
// Lock order: cl.mu (one Clean at a time) → syncSem (group commit token) → mu (append
// lock) → segment.idxMu. A Log owns no goroutines: Clean runs on its caller's.
type Log struct {
	dir    string
	fs     vfs.FS
	logger *slog.Logger
	now    func() time.Time
	cfg    atomic.Pointer[Config]

	// syncSem is the group-commit token: a one-slot semaphore (not a mutex, so waiting for
	// it honours a context). Its holder may fdatasync the active segment and advance durable.
	syncSem chan struct{}
	durable atomic.Int64 // offsets below it are on stable storage
	syncs   atomic.Int64 // fdatasyncs issued by group commit and Sync (for tests)

	segs     atomic.Pointer[[]*segment] // immutable, sorted by base offset; replaced on change
	leo      atomic.Int64               // log end offset, published after the segment's size
	unstable atomic.Int64               // first offset of the oldest ongoing transaction, -1 none (txn.go)
	logStart atomic.Int64
	closedA  atomic.Bool

	mu        sync.Mutex // the append lock
	closed    bool
	failed    error    // set when an I/O error left the log in an unknown state
	active    *segment // last of segs
	producers *producerState
	verifying verifications // KIP-890 guards (verify.go)
	epochs    *epochCache
	loading   []*segment // segments opened so far during Open

	cl cleanerState // compaction (clean.go)
}

// AppendResult describes a successful AppendLeader.
type AppendResult struct {
	FirstOffset, LastOffset int64
	LogAppendTime           int64 // ms; -1 when the topic uses CreateTime
	LogStartOffset          int64
	Duplicate               bool // an idempotent retry: nothing written, offsets are the original ones
}

// SegmentInfo describes one segment, for tiering and admin APIs.
type SegmentInfo struct {
	BaseOffset    int64
	NextOffset    int64 // offset after its last batch
	Size          int64
	MaxTimestamp  int64 // -1 when no batch had a timestamp
	Sealed        bool  // immutable: not the active segment
	LogPath       string
	IndexPath     string
	TimeIndexPath string
	// TxnIndexPath names the aborted-transaction index; the file exists only when
	// HasTxnIndex (Kafka's too is created on the first aborted transaction). For a sealed
	// segment it is final; the active segment's reaches disk when it is sealed.
	TxnIndexPath string
	HasTxnIndex  bool
}

func (l *Log) config() *Config { return l.cfg.Load() }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset is the first offset that can be read.
func (l *Log) LogStartOffset() int64 { return l.logStart.Load() }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// DurableOffset: every offset below it is on stable storage (with FlushOS, LogEndOffset).
func (l *Log) DurableOffset() int64 {
	if l.config().Flush == FlushOS {
		return l.leo.Load()
	}
	return min(l.durable.Load(), l.leo.Load())
}

// Size is the total bytes of all segments.
func (l *Log) Size() int64 {
	var n int64
	for _, s := range *l.segs.Load() {
		n += s.size.Load()
	}
	return n
}

// SetConfig changes the configuration at runtime (AlterConfigs). New sizes and times apply
// from the next append, roll or retention pass.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.cfg.Store(&cfg)
	return nil
}

// Segments lists the segments, oldest first; the last one is the active segment.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := *l.segs.Load()
	out := make([]SegmentInfo, 0, len(segs))
	for _, s := range segs {
		s.idxMu.RLock()
		maxTs, hasTxn := s.maxTs, s.txn.onDisk
		s.idxMu.RUnlock()
		out = append(out, SegmentInfo{
			BaseOffset: s.base, NextOffset: s.next.Load(), Size: s.size.Load(), MaxTimestamp: maxTs,
			Sealed: s.sealed, LogPath: s.path, IndexPath: s.indexPath(), TimeIndexPath: s.timeIndexPath(),
			TxnIndexPath: s.txnIndexPath(), HasTxnIndex: hasTxn,
		})
	}
	return out
}

// LatestEpoch is the latest leader epoch in the epoch cache, -1 when none.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epochs.latest()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101/279): the largest epoch <= epoch
// that this log knows and the start offset of the epoch after it (or the log end offset
// for the latest epoch); (-1, -1) when unknown.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epochs.endOffsetFor(epoch, l.leo.Load())
}

// writableLocked reports why the log cannot take writes. mu held.
func (l *Log) writableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// failLocked records an I/O error after which the on-disk state is unknown (a failed
// fdatasync must never be retried as if it had worked). mu held.
func (l *Log) failLocked(err error) error {
	if l.failed == nil {
		l.failed = fmt.Errorf("segment: log %s failed, reopen it to recover: %w", l.dir, err)
		l.logger.Error("segment: log failed", "dir", l.dir, "err", err)
	}
	return l.failed
}

// Close syncs the active segment and its indexes, writes a producer-state snapshot and the
// clean-shutdown marker, and closes the files. Files with outstanding Slices are closed
// when the last Slice is released. Close is idempotent.
func (l *Log) Close() error { return l.close(true) }

// Delete closes the log and removes its directory, durably (the parent directory is
// synced, so a power loss does not bring the log back).
func (l *Log) Delete() error {
	err := l.close(false)
	if rerr := l.fs.RemoveAll(l.dir); rerr != nil {
		err = errors.Join(err, rerr)
	} else if serr := l.fs.SyncDir(filepath.Dir(l.dir)); serr != nil {
		err = errors.Join(err, fmt.Errorf("segment: sync directory %s: %w", filepath.Dir(l.dir), serr))
	}
	return err
}

// abandon drops the log without writing anything, as if the process had been killed:
// no index flush, no snapshot, no clean-shutdown marker. For tests.
func (l *Log) abandon() { l.close(false) }

func (l *Log) close(clean bool) error {
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.closedA.Store(true)
	var errs []error
	if clean && l.failed == nil {
		errs = append(errs, l.flushForCloseLocked())
	}
	for _, s := range *l.segs.Load() {
		s.release()
	}
	return errors.Join(errs...)
}

func (l *Log) flushForCloseLocked() error {
	s := l.active
	s.idxMu.Lock()
	s.finalTimeEntryLocked()
	err := s.writeIndexesLocked(l.fs, true)
	s.idxMu.Unlock()
	if err != nil {
		return err
	}
	if err := s.log.Datasync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", s.path, err)
	}
	leo := l.leo.Load()
	l.durable.Store(leo)
	if err := l.producers.writeSnapshot(l.fs, l.dir, leo); err != nil {
		return err
	}
	return vfs.WriteFileAtomic(l.fs, filepath.Join(l.dir, cleanMarkerName), []byte("0\n"), true)
}

// createSegmentLocked creates empty files for a segment at base (truncating stale files of
// a previous incarnation) and makes their directory entries durable.
func (l *Log) createSegmentLocked(base int64) (*segment, error) {
	f, err := l.fs.Create(fileName(l.dir, base, logSuffix))
	if err != nil {
		return nil, fmt.Errorf("segment: create segment: %w", err)
	}
	s := newSegment(l.dir, base, f)
	s.idxLoaded = true
	s.ring = new(tailRing)
	s.rollBase = l.now()
	for _, p := range []string{s.indexPath(), s.timeIndexPath()} {
		if err := vfs.WriteFile(l.fs, p, nil); err != nil {
			f.Close()
			return nil, fmt.Errorf("segment: create index: %w", err)
		}
	}
	// A .txnindex exists only once there is an entry: a stale one would be believed.
	if err := l.fs.Remove(s.txnIndexPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Close()
		return nil, fmt.Errorf("segment: remove stale transaction index: %w", err)
	}
	if err := l.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// removeSegmentFiles unlinks a segment's files; open Slices keep reading the log file.
func (l *Log) removeSegmentFiles(s *segment) error {
	var errs []error
	for _, p := range []string{s.path, s.indexPath(), s.timeIndexPath(), s.txnIndexPath()} {
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// publishSegsLocked replaces the published segment list. mu held.
func (l *Log) publishSegsLocked(segs []*segment) {
	l.segs.Store(&segs)
	l.active = segs[len(segs)-1]
}

// segmentFor returns the index in segs of the segment that holds off: the last one whose
// base is <= off (0 when off is below them all).
func segmentFor(segs []*segment, off int64) int {
	lo, hi := 0, len(segs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if segs[m].base <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}
