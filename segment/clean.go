package segment

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedimentio/sediment/segment/vfs"
)

// Log compaction (cleanup.policy=compact), Kafka's log cleaner for one log.
//
// The log is two sections: the clean one, [log start, firstDirty), which holds at most one
// record per key, and the dirty one after it. A clean builds an OffsetMap of key → latest
// offset from the dirty section (up to the first uncleanable offset: the active segment,
// the caller's limit, the first unstable offset, min.compaction.lag.ms), stopping early
// when the map is full, then rewrites every segment from the log start up to where the
// map reached, keeping of each key only the record at its latest offset (records past the
// map's reach are all kept), and swaps the rewritten segments in. firstDirty then moves to
// where the map reached and is checkpointed. Small rewritten segments are merged up to
// segment.bytes.
//
// What survives, as in Kafka 4:
//
//   - Offsets: a record keeps its offset, timestamp, attributes and headers; a batch keeps
//     its base and last offsets, leader epoch, producer id, epoch and base sequence, codec
//     and flags, so offsets only gain gaps and producers' last sequences stay. A batch that
//     loses no record is copied byte for byte.
//   - Tombstones (null values) stay while a reader could still have seen an older value:
//     the first clean that keeps a batch with tombstones sets its delete horizon, now +
//     delete.retention.ms, in the batch (KIP-534: attributes bit 6, baseTimestamp holds the
//     horizon, record timestamp deltas adjusted); a clean after the horizon removes them.
//     Cleanable reports a log due for cleaning once its earliest horizon has passed.
//   - Producers: the batch holding an active producer's last data offset is kept, empty if
//     all its records went (an idempotent producer's sequence and epoch must survive, and
//     a recovery that replays the log from its start finds them); other batches that lose
//     every record are dropped.
//   - Transactions (KIP-98; clean_txn.go): the cleanable range ends at or below the first
//     unstable offset, so open transactions are never read, and every transactional batch
//     in it belongs to a transaction that a marker ended. A data batch of an aborted
//     transaction (transactional, of producer P, inside [firstOffset, lastOffset] of an
//     aborted-transaction index entry of P, whatever segment holds the marker) loses all
//     its records, and they never enter the offset map: an aborted value never hides an
//     older committed one. Committed transactional records are compacted like any other,
//     their batches keeping the transactional bit and producer fields.
//   - Markers (control batches) stay whole while their transaction has a batch in the log
//     (even an empty one: recovery replays it, opening the transaction, and needs the
//     marker to end it). Once none is left, the clean sets the marker's delete horizon as
//     for tombstones, and a clean after it drops the marker, and with it the marker's
//     aborted-transaction index entry (a read_committed consumer that learns of an aborted
//     transaction drops its producer's batches until it meets the ABORT marker, so an
//     entry never outlives its marker; Kafka drops it as soon as a clean finds none of
//     the transaction's data, marker or not). The markers of a producer's current epoch
//     stay while it has no data batch in that epoch: they carry the epoch (Kafka keeps
//     them too, emptied; here whole, with their coordinator epoch). Kafka gives a marker
//     its horizon in the clean after the one that removed the last of its data; here the
//     same clean does. A marker that is the last batch of its group stays whole past its
//     horizon (see below).
//   - The last batch of every rewritten group of segments is kept, empty if need be (Kafka
//     keeps the last batch of a clean round): a rewritten segment then ends where the
//     segments it replaces ended, which recovery of an interrupted swap relies on.
//   - Records without a key (written before the topic became compacted) are removed.
//
// The cleaner reads only sealed segments, through references, and takes the append lock
// only to plan and to swap: appends, reads and the other operations go on meanwhile. A
// retention, DeleteRecords or truncation that changes the segments being cleaned makes the
// swap of that group abort (ErrCleanAborted), never mix. The swap is crash-safe (swap.go).

// ErrCleanAborted reports a clean stopped because the log changed under it (truncation,
// retention of the segments being cleaned, Close) or its context ended. What it swapped in
// before stopping is kept; the next clean goes on.
var ErrCleanAborted = errors.New("segment: clean aborted")

// ErrNotCompacted reports a Clean of a log whose cleanup.policy does not include compact.
var ErrNotCompacted = errors.New("segment: log is not compacted")

// errMapFull stops the walk of a batch's records when the offset map is full.
var errMapFull = errors.New("offset map full")

// cleanerState is the Log's compaction bookkeeping.
type cleanerState struct {
	mu sync.Mutex // one Clean at a time; taken before syncSem and Log.mu
	// firstDirty is the cleaner checkpoint: the first offset not yet cleaned, -1 when never
	// cleaned. Written under Log.mu.
	firstDirty atomic.Int64
	// nextHorizon is the earliest delete horizon of a batch with tombstones, or of a
	// marker, in the clean section (ms), -1 when none. Written under Log.mu.
	nextHorizon atomic.Int64
	gen         int64 // Log.mu: bumped by truncations, which a clean in progress must not outlive

	// naiveSwap is a test seam: swap by renaming the cleaned files straight to their final
	// names, without the .swap commit, to show that the power-loss tests catch it.
	naiveSwap bool
}

// Cleanable describes how much of a compacted log a clean would work on (Kafka's
// LogToClean).
type Cleanable struct {
	FirstDirty int64 // the first offset not yet cleaned
	// FirstUncleanable is the base of the first segment a clean may not read: the
	// active one, or the first holding offsets at or above the limit or records
	// younger than min.compaction.lag.ms. Below FirstDirty when the segment holding
	// FirstDirty is such a segment.
	FirstUncleanable int64
	CleanBytes       int64 // bytes of segments below FirstDirty
	DirtyBytes       int64 // bytes of segments holding offsets in [FirstDirty, FirstUncleanable)
	// LagExceeded: a dirty segment's first batch is older than max.compaction.lag.ms
	// (KIP-354). HorizonPassed: a tombstone in the clean section may now be removed.
	LagExceeded, HorizonPassed bool
	// Due: worth a clean now, by Kafka's rule (dirty ratio above
	// min.cleanable.dirty.ratio, or the lag exceeded) or because a horizon passed.
	Due bool
}

// DirtyRatio is DirtyBytes over the bytes a clean would read: Kafka's cleanable ratio.
func (c Cleanable) DirtyRatio() float64 {
	if c.CleanBytes+c.DirtyBytes == 0 {
		return 0
	}
	return float64(c.DirtyBytes) / float64(c.CleanBytes+c.DirtyBytes)
}

// Cleanable reports how dirty the log is, given that nothing at or after limit may be
// cleaned (the high watermark: records not yet committed can still be truncated, and must
// not remove older ones), nor at or after FirstUnstableOffset (open transactions). It
// takes no lock and reads at most one batch header per dirty segment (with
// max.compaction.lag.ms set). A log that is not compacted is never Due.
func (l *Log) Cleanable(limit int64) Cleanable {
	return l.cleanable(*l.segs.Load(), l.config(), limit, l.now().UnixMilli())
}

// Compacted reports whether the log's cleanup.policy includes compact.
func (l *Log) Compacted() bool { return l.config().CleanupPolicy.Compact() }

func (l *Log) cleanable(segs []*segment, cfg *Config, limit, now int64) Cleanable {
	start, leo := l.logStart.Load(), l.leo.Load()
	limit = min(limit, l.FirstUnstableOffset()) // open transactions are never cleaned
	c := Cleanable{FirstDirty: l.cl.firstDirty.Load()}
	if c.FirstDirty < start || c.FirstDirty > leo {
		c.FirstDirty = start // never cleaned, or the checkpoint is stale: everything is dirty
	}
	sealed := segs[:len(segs)-1]
	c.FirstUncleanable = segs[len(segs)-1].base
	for _, s := range sealed {
		if s.next.Load() <= c.FirstDirty {
			continue
		}
		if s.next.Load() > limit || (cfg.MinCompactionLag > 0 && s.maxTsOrMtime() > now-cfg.MinCompactionLag.Milliseconds()) {
			c.FirstUncleanable = s.base
			break
		}
	}
	for _, s := range sealed {
		if s.base >= c.FirstUncleanable {
			break
		}
		if s.next.Load() <= c.FirstDirty {
			c.CleanBytes += s.size.Load()
			continue
		}
		c.DirtyBytes += s.size.Load()
		if cfg.MaxCompactionLag != MaxCompactionLagNone && !c.LagExceeded {
			if ts := s.firstBatchTimestamp(); ts > 0 && ts < now-cfg.MaxCompactionLag.Milliseconds() {
				c.LagExceeded = true
			}
		}
	}
	h := l.cl.nextHorizon.Load()
	c.HorizonPassed = h >= 0 && now >= h && c.CleanBytes > 0
	if cfg.CleanupPolicy.Compact() {
		c.Due = (c.LagExceeded && c.DirtyBytes > 0) || c.DirtyRatio() > cfg.MinCleanableDirtyRatio || c.HorizonPassed
	}
	return c
}

// maxTsOrMtime is largestTimestamp without an error: a failed stat counts as now.
func (s *segment) maxTsOrMtime() int64 {
	ts, err := s.largestTimestamp()
	if err != nil {
		return math.MaxInt64
	}
	return ts
}

// firstBatchTimestamp is the maxTimestamp of the segment's first batch, -1 when unknown.
func (s *segment) firstBatchTimestamp() int64 {
	if !s.tryAcquire() {
		return -1
	}
	defer s.release()
	h, err := s.readFullHeader(0, s.size.Load())
	if err != nil {
		return -1
	}
	return h.MaxTimestamp
}

// CleanStats describes one clean.
type CleanStats struct {
	FirstDirty, EndOffset         int64 // dirty section mapped; the log was cleaned below EndOffset
	MapBytesRead                  int64 // bytes read to build the offset map
	BytesRead, BytesWritten       int64 // of the segments rewritten, and what they became
	RecordsRead, RecordsKept      int64
	SegmentsBefore, SegmentsAfter int     // rewritten, and what they became
	MapUtilization                float64 // fraction of the offset map's slots used
	Duration                      time.Duration
}

// Clean compacts the log once, below limit (the high watermark) and the first unstable
// offset, with m as its offset map: see the top of clean.go. It returns ErrNotCompacted
// unless cleanup.policy includes compact, ErrCleanAborted when the log changed under it or
// ctx ended (what it finished is kept), and I/O and corruption errors otherwise. With
// nothing dirty (and no delete horizon passed) it does nothing. One Clean runs at a time
// per log; appends and reads are not held up beyond the few file renames of each swap.
func (l *Log) Clean(ctx context.Context, m *OffsetMap, limit int64) (st CleanStats, err error) {
	l.cl.mu.Lock()
	defer l.cl.mu.Unlock()
	defer func() {
		if err != nil && !errors.Is(err, ErrClosed) && l.closedA.Load() {
			err = ErrCleanAborted // closed or deleted meanwhile: its directory may be gone
		}
	}()
	began := time.Now()
	now := l.now().UnixMilli()

	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return st, err
	}
	cfg := l.config()
	if !cfg.CleanupPolicy.Compact() {
		l.mu.Unlock()
		return st, ErrNotCompacted
	}
	segs := *l.segs.Load()
	c := l.cleanable(segs, cfg, limit, now)
	gen := l.cl.gen
	// The batches holding active producers' last sequences stay, and so do the markers
	// of a producer's epoch when it has no data in it (Kafka's cleaner does the same).
	lastData := make(map[int64]int64, len(l.producers.m))
	epochMarkers := map[int64]int16{}
	for id, e := range l.producers.m {
		if e.n > 0 {
			lastData[id] = e.batches[e.n-1].lastOffset
		} else if e.epoch >= 0 {
			epochMarkers[id] = e.epoch
		}
	}
	var work []*segment // sealed segments below FirstUncleanable, referenced
	for _, s := range segs[:len(segs)-1] {
		if s.base >= c.FirstUncleanable || !s.tryAcquire() {
			break
		}
		work = append(work, s)
	}
	l.mu.Unlock()
	defer func() {
		for _, s := range work {
			s.release()
		}
	}()
	st.FirstDirty, st.EndOffset = c.FirstDirty, c.FirstDirty
	if len(work) == 0 || (c.DirtyBytes == 0 && !c.HorizonPassed) {
		return st, nil
	}

	cw := cleanWork{l: l, ctx: ctx, cfg: cfg, m: m, now: now, lastData: lastData, stats: &st, horizon: -1,
		txn: newTxnClean(segs, work[0].base, c.FirstUncleanable, epochMarkers)}
	end, err := cw.buildMap(work, c.FirstDirty, c.FirstUncleanable)
	if err != nil {
		return st, err
	}
	cw.txn.rewind()
	st.EndOffset = end
	st.MapUtilization = m.Utilization()
	groups := groupSegments(work, end, cfg)
	var swapped int
	for _, g := range groups {
		ns, err := cw.rewrite(g)
		if err == nil {
			err = l.swapIn(ns, g, gen)
		}
		if err != nil {
			if swapped > 0 {
				l.mu.Lock()
				l.noteHorizonLocked(cw.horizon, false)
				l.mu.Unlock()
			}
			st.Duration = time.Since(began)
			return st, err
		}
		swapped++
		st.SegmentsBefore += len(g)
		st.SegmentsAfter++
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st.Duration = time.Since(began)
	if l.cl.gen != gen || l.closed {
		return st, ErrCleanAborted
	}
	l.noteHorizonLocked(cw.horizon, true)
	l.cl.firstDirty.Store(end)
	if err := l.writeCleanerCheckpointLocked(); err != nil {
		return st, err
	}
	return st, nil
}

// noteHorizonLocked records the earliest delete horizon a clean left in the segments it
// rewrote: all of the clean section when complete, else a part. mu held.
func (l *Log) noteHorizonLocked(h int64, complete bool) {
	old := l.cl.nextHorizon.Load()
	switch {
	case complete:
		l.cl.nextHorizon.Store(h)
	case h >= 0 && (old < 0 || h < old):
		l.cl.nextHorizon.Store(h)
	}
}

// cleanTruncatedLocked aborts a clean in progress and pulls the cleaner checkpoint back to
// end if it was past it (Kafka's maybeTruncateCheckpoint): offsets truncated and written
// again are dirty. mu held.
func (l *Log) cleanTruncatedLocked(end int64) error {
	l.cl.gen++
	if l.cl.firstDirty.Load() <= end {
		return nil
	}
	l.cl.firstDirty.Store(end)
	return l.writeCleanerCheckpointLocked()
}

// cleanWork is the state of one Clean.
type cleanWork struct {
	l        *Log
	ctx      context.Context
	cfg      *Config
	m        *OffsetMap
	now      int64           // ms
	lastData map[int64]int64 // producer → offset of its last data batch, which stays
	txn      *txnClean
	stats    *CleanStats
	horizon  int64 // earliest delete horizon of a kept batch with tombstones or of a marker, -1 none

	w        *bufio.Writer // to the cleaned segment being written
	enc      batchEncoder
	dec      []byte      // decompressed records
	recs     []byte      // records being re-encoded
	out      []byte      // the rewritten batch
	kept     []rawRecord // records of the current batch that stay
	batchBuf []byte
	checks   int
}

// aborted reports whether the clean must stop: ctx done or the log closed. Checked every
// few batches.
func (cw *cleanWork) aborted() error {
	if cw.checks++; cw.checks%64 != 0 {
		return nil
	}
	if cw.ctx.Err() != nil || cw.l.closedA.Load() {
		return ErrCleanAborted
	}
	return nil
}

// buildMap maps the keys of the dirty segments, from offset start up to the first
// uncleanable one, and returns the offset the clean reaches: everything below it is
// either in the map or superseded by what is.
func (cw *cleanWork) buildMap(work []*segment, start, uncleanable int64) (int64, error) {
	m := cw.m
	m.reset(start - 1)
	for i, s := range work {
		if s.next.Load() <= start {
			continue
		}
		nextBase := uncleanable
		if i+1 < len(work) {
			nextBase = work[i+1].base
		}
		full, err := cw.mapSegment(s, start)
		if err != nil {
			return 0, err
		}
		if full {
			return m.latest + 1, nil
		}
		m.latest = max(m.latest, nextBase-1) // a gap at the segment's end is covered too
	}
	return m.latest + 1, nil
}

// mapSegment adds the keys of s at or after start to the map; full reports that the map
// filled before the segment's end (m.latest then is the last offset it took).
func (cw *cleanWork) mapSegment(s *segment, start int64) (full bool, err error) {
	from := int64(0)
	if start > s.base {
		if err := s.loadIndexes(cw.l); err != nil {
			return false, err
		}
		s.idxMu.RLock()
		_, pos, ok := s.oidx.lookup(s.relOf(start))
		s.idxMu.RUnlock()
		if ok {
			from = pos
		}
	}
	br := newBatchReader(s, from, &cw.batchBuf)
	for {
		h, b, _, err := br.next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := cw.aborted(); err != nil {
			return false, err
		}
		cw.stats.MapBytesRead += h.Size()
		if h.LastOffset() < start {
			continue
		}
		if !h.Control() && !cw.txn.isAborted(&h) { // an aborted record never hides a committed one
			recs, err := decompress(cw.dec, &h, b)
			if err != nil {
				return false, &CorruptionError{Segment: s.path, Offset: br.pos - h.Size(), Err: fmt.Errorf("%w: %w", ErrCorruptBatch, err)}
			}
			if h.Compression() != CompressionNone {
				cw.dec = recs
			}
			err = eachRawRecord(recs, h.RecordCount, func(r *rawRecord) error {
				off := h.BaseOffset + int64(r.offDelta)
				if r.key != nil && off >= start && !cw.m.put(r.key, off) {
					return errMapFull
				}
				return nil
			})
			if err == errMapFull {
				return true, nil
			}
			if err != nil {
				return false, &CorruptionError{Segment: s.path, Offset: br.pos - h.Size(), Err: fmt.Errorf("%w: %w", ErrCorruptBatch, err)}
			}
		}
		cw.m.latest = max(cw.m.latest, h.LastOffset())
	}
}

// groupSegments splits the segments below end into runs to rewrite into one segment each,
// as Kafka's groupSegmentsBySize: at most segment.bytes of log, index entries within
// segment.index.bytes, and offsets within 2^31 of the group's base.
func groupSegments(work []*segment, end int64, cfg *Config) [][]*segment {
	var cands []*segment
	for _, s := range work {
		if s.base < end {
			cands = append(cands, s)
		}
	}
	interval := max(int64(cfg.IndexIntervalBytes), 1)
	indexBytes := func(size int64) int64 { return (size/interval + 1) * timeEntrySize }
	var groups [][]*segment
	for len(cands) > 0 {
		g := cands[:1]
		size, idx := cands[0].size.Load(), indexBytes(cands[0].size.Load())
		for len(g) < len(cands) {
			next := cands[len(g)]
			lastOff := end - 1
			if len(g)+1 < len(cands) {
				lastOff = cands[len(g)+1].base - 1
			} else {
				lastOff = max(lastOff, next.next.Load()-1)
			}
			if size+next.size.Load() > cfg.SegmentBytes || idx+indexBytes(next.size.Load()) > int64(cfg.SegmentIndexBytes) ||
				lastOff-g[0].base > math.MaxInt32 {
				break
			}
			size += next.size.Load()
			idx += indexBytes(next.size.Load())
			g = cands[:len(g)+1]
		}
		groups = append(groups, g)
		cands = cands[len(g):]
	}
	return groups
}

// rewrite writes the cleaned copy of group g to <base>.log.cleaned and its indexes to
// <base>.index.cleaned, <base>.timeindex.cleaned and <base>.txnindex.cleaned (the group's
// aborted transactions, always written), all synced, and returns it as a
// sealed segment whose file is the .cleaned one (swapIn renames it).
func (cw *cleanWork) rewrite(g []*segment) (ns *segment, err error) {
	l := cw.l
	base := g[0].base
	f, err := l.fs.Create(fileName(l.dir, base, logSuffix) + cleanedSuffix)
	if err != nil {
		return nil, fmt.Errorf("segment: create cleaned segment: %w", err)
	}
	ns = newSegment(l.dir, base, f)
	ns.idxLoaded = true
	ns.sealed = true
	created := ns // the error returns below set ns to nil
	defer func() {
		if err != nil {
			created.release()
			removeCleaned(l.fs, l.dir, base)
		}
	}()
	if cw.w == nil {
		cw.w = bufio.NewWriterSize(f, int(min(cw.cfg.SegmentBytes, 256<<10)))
	}
	w := cw.w
	w.Reset(f)
	mo, mt := maxEntries(cw.cfg)
	interval := int64(cw.cfg.IndexIntervalBytes)
	pos, next := int64(0), base
	cw.txn.dropped = cw.txn.dropped[:0]
	for i, s := range g {
		size := s.size.Load()
		br := newBatchReader(s, 0, &cw.batchBuf)
		for {
			h, b, end, err := br.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if err := cw.aborted(); err != nil {
				return nil, err
			}
			cw.stats.BytesRead += h.Size()
			last := i == len(g)-1 && end == size
			out, oh, err := cw.filter(&h, b, last)
			if err != nil {
				return nil, &CorruptionError{Segment: s.path, Offset: end - h.Size(), Err: fmt.Errorf("%w: %w", ErrCorruptBatch, err)}
			}
			if out == nil {
				continue
			}
			if pos+int64(len(out)) > math.MaxInt32 {
				return nil, fmt.Errorf("segment: cleaned segment %d would exceed 2 GiB", base)
			}
			if _, err := w.Write(out); err != nil {
				return nil, fmt.Errorf("segment: write cleaned segment: %w", err)
			}
			ns.idxMu.Lock()
			ns.addBatchLocked(&oh, pos, interval, mo, mt)
			ns.idxMu.Unlock()
			pos += int64(len(out))
			next = oh.NextOffset()
		}
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("segment: write cleaned segment: %w", err)
	}
	if err := f.Datasync(); err != nil {
		return nil, fmt.Errorf("segment: sync cleaned segment: %w", err)
	}
	ns.size.Store(pos)
	ns.next.Store(next)
	cw.stats.BytesWritten += pos
	// The aborted transactions of the group whose markers stay: an entry goes with its
	// marker (and so only once its transaction's data is gone).
	var txn []byte
	for _, s := range g {
		s.idxMu.RLock()
		txn = append(txn, s.txn.b...)
		s.idxMu.RUnlock()
	}
	txn = cw.txn.keepEntries(txn)
	ns.idxMu.Lock()
	defer ns.idxMu.Unlock()
	ns.finalTimeEntryLocked()
	ns.txn = txnIndex{b: txn, onDisk: true}
	for _, x := range []struct {
		path string
		b    []byte
		w    *int
	}{{ns.indexPath(), ns.oidx.b, &ns.oidx.written}, {ns.timeIndexPath(), ns.tidx.b, &ns.tidx.written}, {ns.txnIndexPath(), ns.txn.b, &ns.txn.written}} {
		if err := vfs.WriteFileAtomic(l.fs, x.path+cleanedSuffix, x.b, false); err != nil {
			return nil, err
		}
		*x.w = len(x.b)
	}
	return ns, nil
}

// filter decides what batch h (bytes b) becomes in the cleaned segment: nil to drop it,
// b itself when it keeps every record, else a rewritten batch. last marks the group's
// last batch, which stays even when empty.
func (cw *cleanWork) filter(h *BatchHeader, b []byte, last bool) ([]byte, BatchHeader, error) {
	if h.Control() {
		return cw.filterMarker(h, b, last)
	}
	out, oh, err := cw.filterData(h, b, last)
	if out != nil {
		cw.txn.keptData(h)
	}
	return out, oh, err
}

// filterData is filter for a data batch.
func (cw *cleanWork) filterData(h *BatchHeader, b []byte, last bool) ([]byte, BatchHeader, error) {
	recs, err := decompress(cw.dec, h, b)
	if err != nil {
		return nil, *h, err
	}
	if h.Compression() != CompressionNone {
		cw.dec = recs
	}
	horizon, hasHorizon := h.DeleteHorizon()
	cw.kept = cw.kept[:0]
	tombstones := false
	m := cw.m
	aborted := cw.txn.isAborted(h) // its records all go, wherever they are
	err = eachRawRecord(recs, h.RecordCount, func(r *rawRecord) error {
		off := h.BaseOffset + int64(r.offDelta)
		keep := !aborted && (off > m.latest ||
			(r.key != nil && off >= m.get(r.key) && (r.value != nil || !hasHorizon || cw.now < horizon)))
		if keep {
			cw.kept = append(cw.kept, *r)
			tombstones = tombstones || r.value == nil
		}
		return nil
	})
	if err != nil {
		return nil, *h, err
	}
	cw.stats.RecordsRead += int64(h.RecordCount)
	cw.stats.RecordsKept += int64(len(cw.kept))
	setHorizon := tombstones && !hasHorizon
	if setHorizon {
		horizon, hasHorizon = cw.now+cw.cfg.DeleteRetention.Milliseconds(), true
	}
	if tombstones {
		cw.noteHorizon(horizon)
	}
	if len(cw.kept) == int(h.RecordCount) && !setHorizon && h.RecordCount > 0 {
		return b, *h, nil // nothing to change: the batch as it was
	}
	if len(cw.kept) == 0 { // an empty batch too: it stays only while it has a reason to
		lastOfProducer := h.HasProducer() && cw.lastData[h.ProducerID] == h.LastOffset()
		if !lastOfProducer && !last {
			return nil, *h, nil
		}
		// An empty batch, as Kafka writes it: the producer fields and offsets stay, the
		// timestamps are the batch's maxTimestamp, no codec.
		oh := *h
		oh.Attributes &^= attrCompressionMask | attrDeleteHorizon
		oh.BaseTimestamp = h.MaxTimestamp
		oh.RecordCount = 0
		cw.out, err = cw.enc.encode(cw.out[:0], &oh, nil)
		return cw.out, cw.outHeader(), err
	}
	return cw.encodeKept(h, horizon, hasHorizon)
}

// noteHorizon records the delete horizon of a batch the clean keeps with it.
func (cw *cleanWork) noteHorizon(h int64) {
	if cw.horizon < 0 || h < cw.horizon {
		cw.horizon = h
	}
}

// encodeKept encodes batch h with the records in cw.kept (at least one), with delete
// horizon hz when hasHorizon.
func (cw *cleanWork) encodeKept(h *BatchHeader, hz int64, hasHorizon bool) ([]byte, BatchHeader, error) {
	oh := *h
	baseTs := h.BaseTimestamp + cw.kept[0].tsDelta
	if hasHorizon {
		baseTs = hz
		oh.Attributes |= attrDeleteHorizon
	}
	maxTs := int64(-1)
	cw.recs = cw.recs[:0]
	for i := range cw.kept {
		r := &cw.kept[i]
		ts := h.BaseTimestamp + r.tsDelta
		maxTs = max(maxTs, ts)
		cw.recs = appendRawRecord(cw.recs, r, int64(r.offDelta), ts-baseTs)
	}
	oh.BaseTimestamp = baseTs
	if !h.LogAppendTime() {
		oh.MaxTimestamp = maxTs
	}
	oh.RecordCount = int32(len(cw.kept))
	var err error
	cw.out, err = cw.enc.encode(cw.out[:0], &oh, cw.recs)
	return cw.out, cw.outHeader(), err
}

// outHeader is the header of the batch just encoded into cw.out.
func (cw *cleanWork) outHeader() BatchHeader {
	if len(cw.out) < batchHeaderSize {
		return BatchHeader{}
	}
	return decodeHeader(cw.out)
}

// batchReader reads the whole batches of a segment sequentially, CRC-checked.
type batchReader struct {
	s   *segment
	r   *bufio.Reader
	pos int64
	end int64
	buf *[]byte
}

func newBatchReader(s *segment, from int64, buf *[]byte) *batchReader {
	end := s.size.Load()
	return &batchReader{
		s:   s,
		r:   bufio.NewReaderSize(io.NewSectionReader(s.log, from, end-from), int(min(max(end-from, 16), 256<<10))),
		pos: from, end: end, buf: buf,
	}
}

// next returns the next batch, its bytes (valid until the next call) and the position
// after it; io.EOF at the end.
func (br *batchReader) next() (BatchHeader, []byte, int64, error) {
	if br.pos >= br.end {
		return BatchHeader{}, nil, br.pos, io.EOF
	}
	corrupt := func(err error) error { return &CorruptionError{Segment: br.s.path, Offset: br.pos, Err: err} }
	if br.end-br.pos < batchHeaderSize {
		return BatchHeader{}, nil, br.pos, corrupt(fmt.Errorf("%w: partial header", ErrCorruptBatch))
	}
	b := *br.buf
	if cap(b) < batchHeaderSize {
		b = make([]byte, 64<<10)
	}
	b = b[:batchHeaderSize]
	if _, err := io.ReadFull(br.r, b); err != nil {
		return BatchHeader{}, nil, br.pos, fmt.Errorf("segment: read %s at %d: %w", br.s.path, br.pos, err)
	}
	h, err := ParseBatchHeader(b)
	if err == nil && h.Size() > br.end-br.pos {
		err = fmt.Errorf("%w: batch of %d bytes overruns the segment", ErrCorruptBatch, h.Size())
	}
	if err != nil {
		return h, nil, br.pos, corrupt(err)
	}
	if int64(cap(b)) < h.Size() {
		nb := make([]byte, h.Size())
		copy(nb, b)
		b = nb
	}
	b = b[:h.Size()]
	*br.buf = b
	if _, err := io.ReadFull(br.r, b[batchHeaderSize:]); err != nil {
		return h, nil, br.pos, fmt.Errorf("segment: read %s at %d: %w", br.s.path, br.pos, err)
	}
	if _, err := ValidateBatch(b); err != nil {
		return h, nil, br.pos, corrupt(err)
	}
	br.pos += h.Size()
	return h, b, br.pos, nil
}

// The cleaner checkpoint, "cleaner-offset-checkpoint": three text lines, replaced
// atomically and durably: version 0, the first dirty offset, the earliest delete horizon
// in the clean section (ms, -1 none).
const cleanerCheckpointName = "cleaner-offset-checkpoint"

func (l *Log) writeCleanerCheckpointLocked() error {
	b := fmt.Appendf(nil, "0\n%d\n%d\n", l.cl.firstDirty.Load(), l.cl.nextHorizon.Load())
	if err := vfs.WriteFileAtomic(l.fs, filepath.Join(l.dir, cleanerCheckpointName), b, true); err != nil {
		return l.failLocked(err)
	}
	return nil
}

// readCleanerCheckpoint loads the checkpoint; a missing or unreadable one means never
// cleaned (everything is dirty: the next clean does all the work again, losing nothing).
func (l *Log) readCleanerCheckpoint() {
	l.cl.firstDirty.Store(-1)
	l.cl.nextHorizon.Store(-1)
	b, err := vfs.ReadFile(l.fs, filepath.Join(l.dir, cleanerCheckpointName))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var off, hz int64 = -1, -1
	lines := strings.Fields(string(b))
	if err == nil && len(lines) == 3 && lines[0] == "0" {
		off, err = strconv.ParseInt(lines[1], 10, 64)
		if err == nil {
			hz, err = strconv.ParseInt(lines[2], 10, 64)
		}
	} else if err == nil {
		err = fmt.Errorf("%w: %s: %q", errCheckpoint, cleanerCheckpointName, b)
	}
	if err != nil || off < 0 {
		l.logger.Warn("segment: ignoring cleaner checkpoint", "dir", l.dir, "err", err)
		return
	}
	l.cl.firstDirty.Store(off)
	l.cl.nextHorizon.Store(hz)
}
