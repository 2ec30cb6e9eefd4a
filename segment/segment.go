package segment

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedimentio/sediment/segment/vfs"
)

// File name suffixes; names are the segment's base offset as %020d (Kafka's).
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	tmpSuffix       = vfs.TmpSuffix
)

func fileName(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseFileName returns the base offset of a "%020d<suffix>" name.
func parseFileName(name, suffix string) (int64, bool) {
	if len(name) != 20+len(suffix) || name[20:] != suffix {
		return 0, false
	}
	var v int64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// batchLoc locates one batch in a segment file.
type batchLoc struct {
	base, last int64 // first and last offset
	pos, size  int64 // file position and size
}

// ringSize is how many recent batch positions a segment remembers so that tail fetches
// (a consumer asking for the offset right after what it last read) never scan.
const ringSize = 256

// tailRing remembers the last ringSize batches appended to a segment, oldest first.
//
// locs grows with the batches up to ringSize entries (8 KiB) instead of being allocated
// whole: every partition's active segment has a ring, and an idle or quiet partition must
// not cost its full size (issue 14: idle RSS per partition). Until locs is full, start is 0
// and n <= len(locs), so (start+n)%ringSize is at most len(locs).
type tailRing struct {
	locs  []batchLoc
	start int // index of the oldest
	n     int
}

func (r *tailRing) push(l batchLoc) {
	if r.n < ringSize {
		if i := (r.start + r.n) % ringSize; i < len(r.locs) {
			r.locs[i] = l
		} else {
			r.locs = append(r.locs, l)
		}
		r.n++
		return
	}
	r.locs[r.start] = l
	r.start = (r.start + 1) % ringSize
}

func (r *tailRing) at(i int) *batchLoc { return &r.locs[(r.start+i)%ringSize] }

// find returns the first remembered batch whose last offset is >= off. covered reports
// whether the ring reaches back far enough (its first batch starts at or before off) for
// the answer to be definitive: then found=false means no such batch exists yet.
func (r *tailRing) find(off int64) (loc batchLoc, covered, found bool) {
	if r.n == 0 || r.at(0).base > off {
		return batchLoc{}, false, false
	}
	i := sort.Search(r.n, func(i int) bool { return r.at(i).last >= off })
	if i == r.n {
		return batchLoc{}, true, false
	}
	return *r.at(i), true, true
}

// boundary returns the largest batch end <= limit among remembered batches, if the ring
// covers limit (its first batch starts at or before limit).
func (r *tailRing) boundary(limit int64) (int64, bool) {
	if r.n == 0 || r.at(0).pos > limit {
		return 0, false
	}
	i := sort.Search(r.n, func(i int) bool { l := r.at(i); return l.pos+l.size > limit })
	if i == 0 {
		return r.at(0).pos, true
	}
	l := r.at(i - 1)
	return l.pos + l.size, true
}

// firstBaseAtOrAfter is like find for the first batch whose base offset is >= off.
func (r *tailRing) firstBaseAtOrAfter(off int64) (loc batchLoc, covered, found bool) {
	if r.n == 0 || r.at(0).base > off {
		return batchLoc{}, false, false
	}
	i := sort.Search(r.n, func(i int) bool { return r.at(i).base >= off })
	if i == r.n {
		return batchLoc{}, true, false
	}
	return *r.at(i), true, true
}

func (r *tailRing) truncate(size int64) {
	for r.n > 0 {
		l := r.at(r.n - 1)
		if l.pos+l.size <= size {
			return
		}
		r.n--
	}
}

// segment is one .log file with its two indexes.
//
// Concurrency: the fields marked "Log.mu" change only with the Log's append lock held.
// size, next and refs are atomics readers use without locks. The indexes, the ring and
// the max-timestamp bookkeeping are guarded by idxMu, which readers take briefly. Lock
// order: Log.mu before idxMu.
type segment struct {
	base int64
	path string // .log path
	log  vfs.File

	refs atomic.Int64 // the Log's reference plus one per outstanding Slice; 0 closes log
	size atomic.Int64 // bytes of whole batches in the file, published after each write
	next atomic.Int64 // offset after the last batch (base when empty), published after size

	sealed   bool      // Log.mu: no longer the active segment
	rollBase time.Time // Log.mu: wall-clock time of the first append since creation or load
	prealloc int64     // Log.mu: end of the disk space reserved for appends (preallocLocked)

	idxMu       sync.RWMutex
	idxLoaded   bool // indexes in memory (always for the active segment)
	idxFromDisk bool // loaded from files, not built here: a bad position means a bad index
	oidx        offsetIndex
	tidx        timeIndex
	sinceIndex  int64 // bytes appended since the last offset index entry
	maxTs       int64 // largest batch maxTimestamp, -1 when none
	maxTsOffset int64 // last offset of the batch that has maxTs
	ring        *tailRing
	txn         txnIndex // aborted transactions (txnindex.go): always in memory

	txnRebuild bool // Log.mu: Open rebuilds txn from a replay of producer state

	closeOnce sync.Once
	closeErr  error
}

func newSegment(dir string, base int64, f vfs.File) *segment {
	s := &segment{base: base, path: fileName(dir, base, logSuffix), log: f, maxTs: -1, maxTsOffset: -1}
	s.refs.Store(1)
	s.next.Store(base)
	return s
}

func (s *segment) indexPath() string { return s.path[:len(s.path)-len(logSuffix)] + indexSuffix }
func (s *segment) timeIndexPath() string {
	return s.path[:len(s.path)-len(logSuffix)] + timeIndexSuffix
}

// tryAcquire takes a reference unless the segment has already been closed.
func (s *segment) tryAcquire() bool {
	for {
		r := s.refs.Load()
		if r <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes the file.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeFile()
	}
}

func (s *segment) closeFile() error {
	s.closeOnce.Do(func() { s.closeErr = s.log.Close() })
	return s.closeErr
}

// relOf converts an offset of this segment to an index key, clamped into uint32.
func (s *segment) relOf(off int64) uint32 {
	d := off - s.base
	if d < 0 {
		return 0
	}
	if d > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(d)
}

// addBatchLocked records a batch appended (or recovered) at pos in the in-memory indexes.
// Kafka's cadence: the entry is made for the batch that finds more than indexInterval bytes
// since the previous entry, and the time index entry carries the max timestamp including it.
// Entries beyond maxEntries are skipped (the roll check keeps that rare). idxMu held.
func (s *segment) addBatchLocked(h *BatchHeader, pos int64, indexInterval int64, maxOffsetEntries, maxTimeEntries int) {
	if h.MaxTimestamp > s.maxTs {
		s.maxTs = h.MaxTimestamp
		s.maxTsOffset = h.LastOffset()
	}
	if s.sinceIndex > indexInterval {
		if s.oidx.len() < maxOffsetEntries {
			s.oidx.append(s.relOf(h.LastOffset()), uint32(pos))
		}
		if s.maxTs >= 0 && s.tidx.len() < maxTimeEntries {
			s.tidx.maybeAppend(s.maxTs, s.relOf(s.maxTsOffset))
		}
		s.sinceIndex = 0
	}
	s.sinceIndex += h.Size()
	if s.ring != nil {
		s.ring.push(batchLoc{base: h.BaseOffset, last: h.LastOffset(), pos: pos, size: h.Size()})
	}
}

// writeIndexesLocked writes the in-memory indexes, the aborted-transaction index too, to
// their files (whole rewrite when they shrank, else append) and optionally syncs them.
// idxMu held.
func (s *segment) writeIndexesLocked(fsys vfs.FS, sync bool) error {
	if err := writeIndexFile(fsys, s.indexPath(), s.oidx.b, &s.oidx.written, sync); err != nil {
		return err
	}
	if err := writeIndexFile(fsys, s.timeIndexPath(), s.tidx.b, &s.tidx.written, sync); err != nil {
		return err
	}
	return s.writeTxnIndexLocked(fsys, sync)
}

func writeIndexFile(fsys vfs.FS, path string, b []byte, written *int, doSync bool) error {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Size() != int64(*written) {
		*written = 0 // the file is not what we think: rewrite it whole
		err = f.Truncate(0)
	}
	if err == nil && *written < len(b) {
		_, err = f.WriteAt(b[*written:], int64(*written))
	}
	if err == nil && int64(len(b)) < st.Size() {
		err = f.Truncate(int64(len(b)))
	}
	if err == nil && doSync {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("segment: write index %s: %w", path, err)
	}
	*written = len(b)
	return nil
}

// loadIndexes reads a sealed segment's index files into memory on first use. When they are
// missing or fail the sanity check, they are rebuilt from the log.
func (s *segment) loadIndexes(l *Log) error {
	s.idxMu.RLock()
	loaded := s.idxLoaded
	s.idxMu.RUnlock()
	if loaded {
		return nil
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.idxLoaded {
		return nil
	}
	size := s.size.Load()
	next := s.next.Load()
	ob, oerr := vfs.ReadFile(l.fs, s.indexPath())
	tb, terr := vfs.ReadFile(l.fs, s.timeIndexPath())
	if oerr == nil {
		oerr = checkOffsetIndex(ob, size)
	}
	if terr == nil {
		terr = checkTimeIndex(tb, next-s.base)
	}
	if oerr == nil && terr == nil {
		s.oidx = offsetIndex{b: ob, written: len(ob)}
		s.tidx = timeIndex{b: tb, written: len(tb)}
		s.idxLoaded = true
		s.idxFromDisk = true
		return nil
	}
	l.logger.Warn("segment: rebuilding index", "segment", s.path, "offset_index_err", errString(oerr), "time_index_err", errString(terr))
	return s.rebuildIndexesLocked(l)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// rebuildIndexesLocked rebuilds the indexes of a segment from its log by scanning batch
// headers up to the published size, and rewrites the index files. idxMu held.
func (s *segment) rebuildIndexesLocked(l *Log) error {
	cfg := l.config()
	s.oidx = offsetIndex{}
	s.tidx = timeIndex{}
	s.sinceIndex = 0
	s.maxTs, s.maxTsOffset = -1, -1
	s.idxFromDisk = false
	if s.ring != nil {
		*s.ring = tailRing{}
	}
	mo, mt := maxEntries(cfg)
	size := s.size.Load()
	sc := newScanner(s.log, 0, size)
	for {
		h, pos, err := sc.next(false)
		if err == io.EOF {
			break
		}
		if err != nil {
			return &CorruptionError{Segment: s.path, Offset: pos, Err: err}
		}
		s.addBatchLocked(&h, pos, int64(cfg.IndexIntervalBytes), mo, mt)
	}
	s.finalTimeEntryLocked()
	s.idxLoaded = true
	return s.writeIndexesLocked(l.fs, true)
}

// retryOnBadIndex runs op, and if it fails on corruption while the segment's indexes came
// from disk, blames the indexes (their entries are well-formed but may point between batches),
// rebuilds them from the log and runs op once more.
func (s *segment) retryOnBadIndex(l *Log, op func() error) error {
	err := op()
	if err == nil || !isCorrupt(err) {
		return err
	}
	s.idxMu.Lock()
	rebuilt := false
	if s.idxFromDisk {
		l.logger.Warn("segment: index points between batches, rebuilding", "segment", s.path, "err", err)
		if rerr := s.rebuildIndexesLocked(l); rerr != nil {
			s.idxMu.Unlock()
			return rerr
		}
		rebuilt = true
	}
	s.idxMu.Unlock()
	if !rebuilt {
		return err
	}
	return op()
}

// finalTimeEntryLocked appends the segment's max timestamp to the time index, as Kafka does
// when a segment becomes inactive, so the last time index entry is the segment's maximum.
func (s *segment) finalTimeEntryLocked() {
	if s.maxTs >= 0 {
		s.tidx.maybeAppend(s.maxTs, s.relOf(s.maxTsOffset))
	}
}

func maxEntries(cfg *Config) (offsetEntries, timeEntries int) {
	return cfg.SegmentIndexBytes / offsetEntrySize, cfg.SegmentIndexBytes / timeEntrySize
}

// headerBufs holds scratch space for the batch headers Read and ListOffsets pread. A stack
// array would do, but a slice passed to an interface method (vfs.File.ReadAt) escapes to
// the heap: that would be an allocation per header on the fetch path.
var headerBufs = sync.Pool{New: func() any { return new([batchHeaderSize]byte) }}

// readHeader preads the header of the batch at pos, checking that it fits in size bytes.
func (s *segment) readHeader(pos, size int64) (batchLoc, error) {
	if size-pos < batchHeaderSize {
		return batchLoc{}, &CorruptionError{Segment: s.path, Offset: pos, Err: fmt.Errorf("%w: partial header at end of segment", ErrCorruptBatch)}
	}
	buf := headerBufs.Get().(*[batchHeaderSize]byte)
	defer headerBufs.Put(buf)
	if _, err := s.log.ReadAt(buf[:], pos); err != nil {
		return batchLoc{}, fmt.Errorf("segment: read %s at %d: %w", s.path, pos, err)
	}
	h, err := ParseBatchHeader(buf[:])
	if err == nil && (h.Size() > size-pos || h.LastOffsetDelta < 0) {
		err = fmt.Errorf("%w: batch of %d bytes overruns the segment", ErrCorruptBatch, h.Size())
	}
	if err != nil {
		return batchLoc{}, &CorruptionError{Segment: s.path, Offset: pos, Err: err}
	}
	return batchLoc{base: h.BaseOffset, last: h.LastOffset(), pos: pos, size: h.Size()}, nil
}

// entryHeader reads the header of the batch an offset index entry (key, pos) names and
// checks that it is that batch: its last offset must be the entry's key. An index whose
// entry points inside a batch, at bytes that happen to parse as a header, fails here with
// a CorruptionError, which retryOnBadIndex answers by rebuilding the index.
func (s *segment) entryHeader(key uint32, pos, size int64) (batchLoc, error) {
	loc, err := s.readHeader(pos, size)
	if err != nil {
		return batchLoc{}, err
	}
	if loc.last != s.base+int64(key) || loc.base < s.base {
		return batchLoc{}, &CorruptionError{Segment: s.path, Offset: pos, Err: fmt.Errorf(
			"%w: index entry for offset %d names a batch of offsets [%d, %d]", ErrCorruptBatch, s.base+int64(key), loc.base, loc.last)}
	}
	return loc, nil
}

// scanner reads the batches of a segment file sequentially through a buffer.
type scanner struct {
	r    *bufio.Reader
	pos  int64
	end  int64
	hdr  [batchHeaderSize]byte
	prev int64 // next offset after the previous batch, for monotonicity; -1 before the first
	// ctl is the whole batch when the last one returned was a control batch (a transaction
	// marker, whose record producer state needs) no bigger than the read buffer; else empty.
	ctl []byte
}

func newScanner(f io.ReaderAt, from, end int64) *scanner {
	return &scanner{
		// No bigger than the range: Open header-scans only the few KiB after each sealed
		// segment's last index entry.
		r:    bufio.NewReaderSize(io.NewSectionReader(f, from, end-from), int(min(max(end-from, 16), 256<<10))),
		pos:  from,
		end:  end,
		prev: -1,
	}
}

// next returns the next batch header and its position. With validate it also checks the
// CRC and the field rules of ValidateBatch. It returns io.EOF at a clean end, and an error
// wrapping ErrCorruptBatch (or ErrUnsupportedMagic) for a torn or corrupt batch; the
// returned position is then where the bad batch starts.
func (sc *scanner) next(validate bool) (BatchHeader, int64, error) {
	pos := sc.pos
	if pos == sc.end {
		return BatchHeader{}, pos, io.EOF
	}
	if sc.end-pos < batchHeaderSize {
		return BatchHeader{}, pos, fmt.Errorf("%w: %d trailing bytes, shorter than a header", ErrCorruptBatch, sc.end-pos)
	}
	if _, err := io.ReadFull(sc.r, sc.hdr[:]); err != nil {
		return BatchHeader{}, pos, fmt.Errorf("segment: read at %d: %w", pos, err)
	}
	h, err := ParseBatchHeader(sc.hdr[:])
	if err != nil {
		return h, pos, err
	}
	if h.Size() > sc.end-pos {
		return h, pos, fmt.Errorf("%w: batch of %d bytes but %d left in the file", ErrCorruptBatch, h.Size(), sc.end-pos)
	}
	if err := h.checkFields(); err != nil {
		return h, pos, err
	}
	if h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64-int64(math.MaxInt32)-1 || h.BaseOffset < sc.prev {
		return h, pos, fmt.Errorf("%w: base offset %d after offset %d", ErrCorruptBatch, h.BaseOffset, sc.prev)
	}
	rest := h.Size() - batchHeaderSize
	sc.ctl = sc.ctl[:0]
	if h.Control() && rest <= int64(sc.r.Size()) {
		if p, err := sc.r.Peek(int(rest)); err == nil {
			sc.ctl = append(append(sc.ctl, sc.hdr[:]...), p...)
		}
	}
	if validate {
		crc := crc32.Update(0, castagnoli, sc.hdr[offAttributes:])
		for rest > 0 {
			chunk, err := sc.r.Peek(int(min(rest, int64(sc.r.Size()))))
			if err != nil {
				return h, pos, fmt.Errorf("segment: read at %d: %w", pos, err)
			}
			crc = crc32.Update(crc, castagnoli, chunk)
			sc.r.Discard(len(chunk))
			rest -= int64(len(chunk))
		}
		if crc != h.CRC {
			return h, pos, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorruptBatch, h.CRC, crc)
		}
	} else if _, err := sc.r.Discard(int(rest)); err != nil {
		return h, pos, fmt.Errorf("segment: read at %d: %w", pos, err)
	}
	sc.pos += h.Size()
	sc.prev = h.NextOffset()
	return h, pos, nil
}

// isCorrupt tells corruption (truncate it away) from I/O errors (give up).
func isCorrupt(err error) bool {
	return errors.Is(err, ErrCorruptBatch) || errors.Is(err, ErrUnsupportedMagic)
}
