package tier

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment"
)

// The Reader by file: this one holds the type, its life cycle and the read path (Read and
// ReadThen: find the position, scan and check the batch headers, check the CRCs of what is
// returned); reader_config.go and reader_metrics.go its configuration and metrics;
// reader_object.go what it keeps of one remote .log object (chunking, .index) and how that
// is loaded, with reader_frames.go for zstd frame indexes and reader_hints.go for where
// the last reads of the object ended; reader_cursor.go one read's view of the chunks;
// reader_chunk.go where a chunk comes from (memory, cache files, a GET); reader_fetch.go
// the GETs, bounded by MaxParallel; reader_flight.go the single flight that lets
// concurrent callers share one GET; reader_ahead.go read-ahead; reader_time.go
// OffsetForTimestamp; reader_txn.go the aborted transactions of read_committed reads;
// memcache.go and cache.go are the chunk cache's two layers.

// ErrRemoteCorrupt is wrapped by the errors of a remote read that found an object whose
// bytes contradict its metadata or themselves: a bad batch header or CRC, offsets outside
// the segment, an index pointing between batches, an object shorter than recorded, a bad
// frame index or zstd frame. The broker answers KAFKA_STORAGE_ERROR.
var ErrRemoteCorrupt = errors.New("tier: corrupt remote object")

// ErrReaderClosed is returned by Read after Close.
var ErrReaderClosed = errors.New("tier: remote reader closed")

const (
	// remoteBatchHeaderSize is the v2 record batch header (segment/FORMAT.md).
	remoteBatchHeaderSize = 61
	// remoteLogOverhead is baseOffset + batchLength: a batch is batchLength + 12 bytes.
	remoteLogOverhead = 12
	// remoteMinBatchLength is the smallest batchLength of a v2 batch with no records.
	remoteMinBatchLength = remoteBatchHeaderSize - remoteLogOverhead
	// metaCacheBytes bounds the memory of cached .index, frame-index and txnindex objects.
	metaCacheBytes = 64 << 20
	// maxMetaObject bounds one .index, frames or txnindex object read into memory. segment.index.bytes
	// defaults to 10 MiB; Kafka's largest sane setting is far below this.
	maxMetaObject = 64 << 20
)

// Reader reads record batches of remote segments: ranged GETs of fixed-size chunks (or of
// zstd frames) through a bounded on-disk chunk cache, concurrent GETs bounded across all
// partitions, concurrent reads of one chunk sharing one GET, and read-ahead of the chunks
// after each read for sequential consumers.
//
// Safe for concurrent use. Goroutines it starts (GETs, read-ahead) are owned by the Reader
// and stopped by Close. Reader.mu and chunkCache.mu are never held together; memCache.mu
// is taken under Reader.mu (read-ahead's reserve), never the other way round. One Reader
// per CacheDir: NewReader wipes the directory's cache files.
type Reader struct {
	store  ObjectStore
	cfg    ReaderConfig
	logger *slog.Logger
	cache  *chunkCache
	mem    *memCache     // recently used chunks, in front of cache
	writes chan struct{} // one token per cache file being written in the background
	seen   *seenSet      // chunks fetched lately: fetched again, they go to a cache file
	m      readerMetrics
	sem    chan struct{} // one token per GET in flight
	zstd   *zstd.Decoder // DecodeAll is safe for concurrent use

	ctx    context.Context // cancelled by Close: the context of every GET
	cancel context.CancelFunc
	wg     sync.WaitGroup // GETs and read-ahead

	mu          sync.Mutex
	closed      bool
	flights     map[string]*readFlight // GETs in progress, by chunk or metadata name
	prefetching int                    // read-ahead goroutines running
	ahead       map[string]bool        // flight names of the read-aheads launched (chunk/…, meta/…)
	metas       map[string]*list.Element
	metaLRU     *list.List // of metaEntry (*remoteObject, *remoteTxnIndex), most recently used first
	metaSize    int64
}

// NewReader returns a Reader of store. It wipes the cache files in cfg.CacheDir (see
// chunkCache for why). logger and reg may be nil.
func NewReader(store ObjectStore, cfg ReaderConfig, logger *slog.Logger, reg prometheus.Registerer) (*Reader, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newReaderMetrics(reg)
	if err != nil {
		return nil, err
	}
	cache, err := newChunkCache(cfg.CacheDir, cfg.CacheBytes, m.cacheBytes)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxChunkSize))
	if err != nil {
		return nil, fmt.Errorf("tier: reader: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Reader{
		store:   store,
		cfg:     cfg,
		logger:  logger,
		cache:   cache,
		mem:     newMemCache(max(cfg.MemBytes, 0)),
		writes:  make(chan struct{}, 2),
		seen:    newSeenSet(1 << 16),
		m:       m,
		sem:     make(chan struct{}, cfg.MaxParallel),
		zstd:    dec,
		ctx:     ctx,
		cancel:  cancel,
		flights: make(map[string]*readFlight),
		ahead:   make(map[string]bool),
		metas:   make(map[string]*list.Element),
		metaLRU: list.New(),
	}, nil
}

// Close stops read-ahead and cancels the GETs in flight, waits for their goroutines and
// releases the decoder. Reads in progress fail; later ones return ErrReaderClosed. The
// cache files stay (the next NewReader wipes them).
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.zstd.Close()
	return nil
}

// Read returns whole record batches of seg starting with the batch containing offset, at
// most maxBytes (but at least one whole batch when minOneBatch, KIP-74), never bytes past
// seg.EndOffset. An empty result (nil, nil) means the first batch alone exceeds maxBytes
// and minOneBatch is false. An offset outside [seg.BaseOffset, seg.EndOffset] gives an error
// wrapping segment.ErrOffsetOutOfRange.
//
// It finds the position from the segment's .index object (fetched once, cached in memory),
// then scans batch headers from there through the chunk cache. Every batch returned has a
// valid header and CRC-32C and offsets inside the segment; anything else gives an error
// wrapping ErrRemoteCorrupt, and a missing object one wrapping ErrNotExist, never bytes.
// (A read racing remote retention sees ErrNotExist: the caller re-checks the segment's
// metadata and answers OFFSET_OUT_OF_RANGE if it is gone, REMOTE.md.)
// When a corrupt read used cached chunks, those chunks are dropped and the read is tried
// once more from the store (the cache files are not checksummed themselves).
//
// The caller checks that seg is COPY_FINISHED; ctx bounds the caller's wait, while GETs run
// until done (their chunks go to the cache) or until Close.
func (r *Reader) Read(ctx context.Context, seg RemoteSegment, offset int64, maxBytes int, minOneBatch bool) ([]byte, error) {
	return r.ReadThen(ctx, seg, nil, offset, maxBytes, minOneBatch)
}

// ReadThen is Read for a consumer that goes on into next (nil: not known) after seg: once
// the read-ahead window reaches past seg's last chunk, it goes on into next, whose
// metadata is loaded in the background first. Without it a consumer stalls at every
// segment boundary on the .index GET and the first chunk's.
func (r *Reader) ReadThen(ctx context.Context, seg RemoteSegment, next *RemoteSegment, offset int64, maxBytes int, minOneBatch bool) ([]byte, error) {
	rec, err := r.readRecords(ctx, seg, next, offset, maxBytes, minOneBatch, false)
	return rec.Bytes, err
}

// ReadRecords is ReadThen for a caller that can send a file range: when the batches
// read lie in one chunk held by a cache file, they come back as a range of that file,
// pinned until Records.Release, and are not copied (the bytes were checked in place,
// as every read's are). Otherwise, or for zero bytes, as Bytes. Records from an error
// hold nothing.
func (r *Reader) ReadRecords(ctx context.Context, seg RemoteSegment, next *RemoteSegment, offset int64, maxBytes int, minOneBatch bool) (Records, error) {
	return r.readRecords(ctx, seg, next, offset, maxBytes, minOneBatch, true)
}

func (r *Reader) readRecords(ctx context.Context, seg RemoteSegment, next *RemoteSegment, offset int64, maxBytes int, minOneBatch, wantFile bool) (Records, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return Records{}, ErrReaderClosed
	}
	if offset < seg.BaseOffset || offset > seg.EndOffset {
		return Records{}, fmt.Errorf("tier: offset %d outside remote segment [%d, %d]: %w", offset, seg.BaseOffset, seg.EndOffset, segment.ErrOffsetOutOfRange)
	}
	obj, err := r.object(ctx, seg)
	if err != nil {
		return Records{}, err
	}
	cur := r.cursor(ctx, obj, false)
	defer func() { cur.close() }()
	rec, err := r.read(cur, seg, offset, maxBytes, minOneBatch, wantFile)
	if err != nil && errors.Is(err, ErrRemoteCorrupt) && len(cur.cached) > 0 {
		r.logger.Warn("remote read found corrupt data in cached chunks; refetching", "key", obj.key, "offset", offset, "err", err)
		for _, name := range cur.cached {
			r.uncache(name)
		}
		cur.close()
		cur = r.cursor(ctx, obj, true)
		rec, err = r.read(cur, seg, offset, maxBytes, minOneBatch, wantFile)
	}
	if err != nil {
		return Records{}, err
	}
	if rec.Size() > 0 {
		k := obj.chunkOf(cur.last)
		r.readAhead(obj, k, r.cfg.ReadAhead)
		if over := k + r.cfg.ReadAhead - (obj.numChunks() - 1); over > 0 && next != nil {
			r.readAheadInto(*next, over)
		}
	}
	return rec, nil
}

func (r *Reader) cursor(ctx context.Context, obj *remoteObject, noCache bool) *chunkCursor {
	return &chunkCursor{r: r, ctx: ctx, obj: obj, chunks: make(map[int][]byte), views: make(map[int]*cacheView), noCache: noCache}
}

// read does one attempt of Read. Bytes it returns never point into a cache file's
// mapping (the cursor's pins end with the read): with wantFile such a range comes back as
// a file range with a pin of its own, else copied.
func (r *Reader) read(cur *chunkCursor, seg RemoteSegment, offset int64, maxBytes int, minOneBatch, wantFile bool) (Records, error) {
	obj := cur.obj
	// next is the base offset the next batch must have. The first batch scanned may start
	// at or after it (it is checked by its index entry, or by its successor below); every
	// later one must follow its predecessor exactly, because a remote segment's offsets are
	// contiguous (tiering is refused for compacted topics, as in Kafka). The base offset is
	// outside the batch CRC, so this chain is what checks it.
	next, exact := seg.BaseOffset, false
	pos, wantLast := obj.lookup(offset - seg.BaseOffset)
	if hp, ok := obj.hint(offset); ok {
		// A read ended where this one starts: the batch there must begin at offset.
		pos, wantLast, next, exact = hp, -1, offset, true
	}
	var h batchHead
	for {
		if pos >= obj.size {
			return Records{}, obj.corrupt(pos, "no batch holds offset %d: the object ends before end offset %d", offset, seg.EndOffset)
		}
		var err error
		if h, err = cur.head(pos, seg, next, exact); err != nil {
			return Records{}, err
		}
		exact = true
		if wantLast >= 0 {
			if h.last != seg.BaseOffset+wantLast {
				return Records{}, obj.corrupt(pos, "index entry says last offset %d, batch has %d", seg.BaseOffset+wantLast, h.last)
			}
			wantLast = -1
		}
		next = h.last + 1
		if h.last >= offset {
			break
		}
		pos += h.size
	}
	first, end := pos, pos+h.size
	limit := first + int64(max(maxBytes, 0))
	successorChecked := false
	if end > limit {
		if !minOneBatch {
			return Records{}, nil
		}
	} else {
		for end < obj.size {
			h, err := cur.head(end, seg, next, true)
			if err != nil {
				return Records{}, err
			}
			if end+h.size > limit {
				successorChecked = true
				break
			}
			next = h.last + 1
			end += h.size
		}
	}
	// The last batch returned is vouched for by the one after it, or by the segment's end.
	if !successorChecked && end < obj.size {
		if _, err := cur.head(end, seg, next, true); err != nil {
			return Records{}, err
		}
	}
	if end == obj.size && next-1 != seg.EndOffset {
		return Records{}, obj.corrupt(end, "the last batch ends at offset %d, the segment at %d", next-1, seg.EndOffset)
	}
	b, v, vpos, err := cur.bytes(first, end)
	if err != nil {
		return Records{}, err
	}
	// The headers were checked while scanning; now the CRCs (and the header fields only
	// ValidateBatch knows) of what is returned, in place for a cache file's mapping.
	for p := int64(0); p < int64(len(b)); {
		vh, err := segment.ValidateBatch(b[p:])
		if err != nil {
			return Records{}, obj.corrupt(first+p, "%w", err)
		}
		p += vh.Size()
	}
	obj.setHint(offset, next, end) // at the object's end: this reader is past every chunk
	switch {
	case v == nil:
		return Records{Bytes: b}, nil
	case wantFile:
		v.c.repin(v)
		return Records{File: v.f, Pos: vpos, Len: int64(len(b)), pin: &recordsPin{v: v}}, nil
	default:
		return Records{Bytes: append([]byte(nil), b...)}, nil
	}
}

// batchHead is what the scan needs of a batch header.
type batchHead struct {
	last int64 // last offset
	size int64 // bytes
}

// parseHead checks the batch header h found at pos: magic 2, a sane length inside the
// object, offsets at next (exact) or at or after it, and inside the segment.
func (o *remoteObject) parseHead(hb []byte, pos int64, seg RemoteSegment, next int64, exact bool) (batchHead, error) {
	base := int64(binary.BigEndian.Uint64(hb[0:]))
	length := int64(int32(binary.BigEndian.Uint32(hb[8:])))
	magic := int8(hb[16])
	delta := int64(int32(binary.BigEndian.Uint32(hb[23:])))
	switch {
	case magic != 2:
		return batchHead{}, o.corrupt(pos, "magic %d", magic)
	case length < remoteMinBatchLength:
		return batchHead{}, o.corrupt(pos, "batchLength %d", length)
	case pos+remoteLogOverhead+length > o.size:
		return batchHead{}, o.corrupt(pos, "batch of %d bytes runs past the object's %d bytes", remoteLogOverhead+length, o.size)
	case delta < 0:
		return batchHead{}, o.corrupt(pos, "lastOffsetDelta %d", delta)
	case base < next:
		return batchHead{}, o.corrupt(pos, "base offset %d below %d", base, next)
	case exact && base != next:
		return batchHead{}, o.corrupt(pos, "base offset %d does not follow the previous batch (want %d)", base, next)
	case base+delta > seg.EndOffset:
		return batchHead{}, o.corrupt(pos, "offsets [%d, %d] past the segment's end offset %d", base, base+delta, seg.EndOffset)
	}
	return batchHead{last: base + delta, size: remoteLogOverhead + length}, nil
}
