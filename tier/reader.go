package tier

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment"
)

// ErrRemoteCorrupt is wrapped by the errors of a remote read that found an object whose
// bytes contradict its metadata or themselves: a bad batch header or CRC, offsets outside
// the segment, an index pointing between batches, an object shorter than recorded, a bad
// frame index or zstd frame. The broker answers KAFKA_STORAGE_ERROR.
var ErrRemoteCorrupt = errors.New("tier: corrupt remote object")

// ErrReaderClosed is returned by Read after Close.
var ErrReaderClosed = errors.New("tier: remote reader closed")

// ReaderConfig configures a Reader. Zero fields take their defaults (DefaultReaderConfig),
// except CacheDir, which is required.
type ReaderConfig struct {
	ChunkSize   int64  // bytes per ranged GET, default 4 MiB
	CacheDir    string // on-disk chunk cache directory; its cache files are wiped by NewReader
	CacheBytes  int64  // bound of the cache (LRU eviction), default 1 GiB
	MemBytes    int64  // bound of the most recently used chunks kept in memory, default 256 MiB; negative: none
	ReadAhead   int    // chunks prefetched after a sequential read, default 2; negative: none
	MaxParallel int    // concurrent GETs across partitions, default 16
}

// DefaultReaderConfig returns the defaults for a Reader caching in cacheDir.
func DefaultReaderConfig(cacheDir string) ReaderConfig {
	return ReaderConfig{
		ChunkSize:   4 << 20,
		CacheDir:    cacheDir,
		CacheBytes:  1 << 30,
		MemBytes:    256 << 20,
		ReadAhead:   2,
		MaxParallel: 16,
	}
}

// withDefaults fills the zero fields.
func (c ReaderConfig) withDefaults() ReaderConfig {
	d := DefaultReaderConfig(c.CacheDir)
	if c.ChunkSize == 0 {
		c.ChunkSize = d.ChunkSize
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = d.CacheBytes
	}
	if c.MemBytes == 0 {
		c.MemBytes = d.MemBytes
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = d.ReadAhead
	}
	if c.MaxParallel == 0 {
		c.MaxParallel = d.MaxParallel
	}
	return c
}

// maxChunkSize bounds ChunkSize: a chunk is held in memory whole.
const maxChunkSize = 256 << 20

// Validate reports the first problem with c (after defaults are applied by NewReader).
func (c ReaderConfig) Validate() error {
	switch {
	case c.CacheDir == "":
		return errors.New("tier: reader: empty CacheDir")
	case c.ChunkSize < remoteBatchHeaderSize || c.ChunkSize > maxChunkSize:
		return fmt.Errorf("tier: reader: ChunkSize %d outside [%d, %d]", c.ChunkSize, remoteBatchHeaderSize, maxChunkSize)
	case c.CacheBytes < 0:
		return fmt.Errorf("tier: reader: CacheBytes %d < 0", c.CacheBytes)
	case c.MaxParallel < 1:
		return fmt.Errorf("tier: reader: MaxParallel %d < 1", c.MaxParallel)
	}
	return nil
}

const (
	// remoteBatchHeaderSize is the v2 record batch header (segment/FORMAT.md).
	remoteBatchHeaderSize = 61
	// remoteLogOverhead is baseOffset + batchLength: a batch is batchLength + 12 bytes.
	remoteLogOverhead = 12
	// remoteMinBatchLength is the smallest batchLength of a v2 batch with no records.
	remoteMinBatchLength = remoteBatchHeaderSize - remoteLogOverhead
	// metaCacheBytes bounds the memory of cached .index and frame-index objects.
	metaCacheBytes = 64 << 20
	// maxMetaObject bounds one .index or frames object read into memory. segment.index.bytes
	// defaults to 10 MiB; Kafka's largest sane setting is far below this.
	maxMetaObject = 64 << 20
)

// Reader reads record batches of remote segments: ranged GETs of fixed-size chunks (or of
// zstd frames) through a bounded on-disk chunk cache, concurrent GETs bounded across all
// partitions, concurrent reads of one chunk sharing one GET, and read-ahead of the chunks
// after each read for sequential consumers.
//
// Safe for concurrent use. Goroutines it starts (GETs, read-ahead) are owned by the Reader
// and stopped by Close. Reader.mu and chunkCache.mu are never held together. One Reader
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
	metaLRU     *list.List // of *remoteObject, most recently used first
	metaSize    int64
}

type readerMetrics struct {
	fetchBytes, fetchRequests, fetchErrors prometheus.Counter
	cacheHits, cacheMisses                 prometheus.Counter
	cacheBytes                             prometheus.Gauge
}

func newReaderMetrics(reg prometheus.Registerer) (readerMetrics, error) {
	m := readerMetrics{
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_remote_fetch_bytes_total", Help: "Bytes read from object storage by remote reads (ranged GETs).",
		}),
		fetchRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_remote_fetch_requests_total", Help: "Object storage reads (ranged GETs and Stats) made by remote reads.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_remote_fetch_errors_total", Help: "Object storage reads of remote reads that failed.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_cache_hits_total", Help: "Chunks of remote reads served from the on-disk chunk cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_cache_misses_total", Help: "Chunks of remote reads not in the on-disk chunk cache.",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sediment_tier_cache_bytes", Help: "Bytes held by the on-disk chunk cache.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.fetchBytes, m.fetchRequests, m.fetchErrors, m.cacheHits, m.cacheMisses, m.cacheBytes} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("tier: reader metrics: %w", err)
			}
		}
	}
	return m, nil
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
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrReaderClosed
	}
	if offset < seg.BaseOffset || offset > seg.EndOffset {
		return nil, fmt.Errorf("tier: offset %d outside remote segment [%d, %d]: %w", offset, seg.BaseOffset, seg.EndOffset, segment.ErrOffsetOutOfRange)
	}
	obj, err := r.object(ctx, seg)
	if err != nil {
		return nil, err
	}
	cur := &chunkCursor{r: r, ctx: ctx, obj: obj, chunks: make(map[int][]byte)}
	b, err := r.read(cur, seg, offset, maxBytes, minOneBatch)
	if err != nil && errors.Is(err, ErrRemoteCorrupt) && len(cur.cached) > 0 {
		r.logger.Warn("remote read found corrupt data in cached chunks; refetching", "key", obj.key, "offset", offset, "err", err)
		for _, name := range cur.cached {
			r.uncache(name)
		}
		cur = &chunkCursor{r: r, ctx: ctx, obj: obj, chunks: make(map[int][]byte), noCache: true}
		b, err = r.read(cur, seg, offset, maxBytes, minOneBatch)
	}
	if err != nil {
		return nil, err
	}
	if len(b) > 0 {
		k := obj.chunkOf(cur.last)
		r.readAhead(obj, k, r.cfg.ReadAhead)
		if over := k + r.cfg.ReadAhead - (obj.numChunks() - 1); over > 0 && next != nil {
			r.readAheadInto(*next, over)
		}
	}
	return b, nil
}

// readAheadInto prefetches the first n chunks of seg, loading its metadata first, in the
// background. Best effort, like readAhead.
func (r *Reader) readAheadInto(seg RemoteSegment, n int) {
	key := r.key(seg, KindLog)
	r.mu.Lock()
	el, loaded := r.metas[key]
	if r.closed || r.ahead["meta/"+key] || (!loaded && r.prefetching >= r.cfg.MaxParallel) {
		r.mu.Unlock()
		return
	}
	if loaded {
		r.mu.Unlock()
		r.readAhead(el.Value.(*remoteObject), -1, n)
		return
	}
	r.ahead["meta/"+key] = true
	r.prefetching++
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		obj, err := r.object(r.ctx, seg) // or joins a load in progress
		r.mu.Lock()
		r.prefetching--
		delete(r.ahead, "meta/"+key)
		r.mu.Unlock()
		if err != nil {
			if r.ctx.Err() == nil {
				r.logger.Debug("remote read-ahead of the next segment failed", "key", key, "err", err)
			}
			return
		}
		r.readAhead(obj, -1, n)
	}()
}

// read does one attempt of Read.
func (r *Reader) read(cur *chunkCursor, seg RemoteSegment, offset int64, maxBytes int, minOneBatch bool) ([]byte, error) {
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
			return nil, obj.corrupt(pos, "no batch holds offset %d: the object ends before end offset %d", offset, seg.EndOffset)
		}
		var err error
		if h, err = cur.head(pos, seg, next, exact); err != nil {
			return nil, err
		}
		exact = true
		if wantLast >= 0 {
			if h.last != seg.BaseOffset+wantLast {
				return nil, obj.corrupt(pos, "index entry says last offset %d, batch has %d", seg.BaseOffset+wantLast, h.last)
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
			return nil, nil
		}
	} else {
		for end < obj.size {
			h, err := cur.head(end, seg, next, true)
			if err != nil {
				return nil, err
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
			return nil, err
		}
	}
	if end == obj.size && next-1 != seg.EndOffset {
		return nil, obj.corrupt(end, "the last batch ends at offset %d, the segment at %d", next-1, seg.EndOffset)
	}
	b, err := cur.bytes(first, end)
	if err != nil {
		return nil, err
	}
	// The headers were checked while scanning; now the CRCs (and the header fields only
	// ValidateBatch knows) of what is returned.
	for p := int64(0); p < int64(len(b)); {
		vh, err := segment.ValidateBatch(b[p:])
		if err != nil {
			return nil, obj.corrupt(first+p, "%w", err)
		}
		p += vh.Size()
	}
	obj.setHint(offset, next, end) // at the object's end: this reader is past every chunk
	return b, nil
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

// key names an object of seg (REMOTE.md).
func (r *Reader) key(seg RemoteSegment, kind string) string {
	return SegmentObjectKey(seg, kind)
}

// readFlight is one GET (or metadata load) that concurrent callers share.
type readFlight struct {
	done chan struct{}
	val  any
	err  error
}

// do runs fn once for concurrent callers of the same name, in a goroutine owned by the
// Reader with the Reader's context: a caller giving up (ctx) does not fail the others.
func (r *Reader) do(ctx context.Context, name string, fn func(ctx context.Context) (any, error)) (any, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrReaderClosed
	}
	f, ok := r.flights[name]
	if !ok {
		f = &readFlight{done: make(chan struct{})}
		r.flights[name] = f
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			f.val, f.err = fn(r.ctx)
			r.mu.Lock()
			delete(r.flights, name)
			r.mu.Unlock()
			close(f.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil && r.ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrReaderClosed, f.err)
		}
		return f.val, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// get reads len(p) bytes at off of key with one ranged GET, holding a MaxParallel token.
// A short object is ErrRemoteCorrupt; a missing one wraps ErrNotExist.
func (r *Reader) get(ctx context.Context, key string, p []byte, off int64, passed func() bool) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.sem }()
	if passed != nil && passed() {
		return errPassed
	}
	r.m.fetchRequests.Inc()
	err := r.store.ReadAt(ctx, key, p, off)
	if err != nil {
		r.m.fetchErrors.Inc()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %s: shorter than %d bytes: %w", ErrRemoteCorrupt, key, off+int64(len(p)), err)
		}
		return fmt.Errorf("tier: remote read %s [%d, %d): %w", key, off, off+int64(len(p)), err)
	}
	r.m.fetchBytes.Add(float64(len(p)))
	return nil
}

// stat returns the size of key, holding a MaxParallel token.
func (r *Reader) stat(ctx context.Context, key string) (int64, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-r.sem }()
	r.m.fetchRequests.Inc()
	n, err := r.store.Stat(ctx, key)
	if err != nil {
		r.m.fetchErrors.Inc()
		return 0, fmt.Errorf("tier: remote stat %s: %w", key, err)
	}
	return n, nil
}

// chunk returns chunk i of obj: from the cache, or by a GET shared with concurrent callers
// that then fills the cache. fromCache reports a cache hit.
func (r *Reader) chunk(ctx context.Context, obj *remoteObject, i int, useCache, ahead bool) (b []byte, name string, fromCache bool, err error) {
	name = chunkName(obj.key, i)
	if useCache {
		if b, ok := r.cached(name); ok {
			r.m.cacheHits.Inc()
			return b, name, true, nil
		}
		r.m.cacheMisses.Inc()
	}
	fetch := func(ctx context.Context) (any, error) {
		// Another flight may have cached it between our miss (or a read-ahead's check) and
		// this flight's start. (A retry after corruption removed its chunks first.)
		if b, ok := r.cached(name); ok {
			return b, nil
		}
		var passed func() bool
		if ahead {
			passed = func() bool { return obj.passedByAll(i) }
		}
		b, err := r.fetchChunk(ctx, obj, i, passed)
		if err != nil {
			return nil, err
		}
		r.mem.put(name, b)
		if r.cfg.MemBytes < 0 || r.seen.add(name) {
			r.cacheChunk(obj, i, name, b)
		}
		return b, nil
	}
	v, err := r.do(ctx, "chunk/"+name, fetch)
	for errors.Is(err, errPassed) && !ahead {
		// This read joined a read-ahead that gave up on the chunk.
		v, err = r.do(ctx, "chunk/"+name, fetch)
	}
	if err != nil {
		return nil, name, false, err
	}
	return v.([]byte), name, false, nil
}

// errPassed ends a read-ahead of a chunk every sequential reader of its object has gone
// past by the time the GET could start (read-aheads wait for a MaxParallel token).
var errPassed = errors.New("tier: read-ahead chunk already passed by its readers")

// cached returns chunk name from memory, else from the cache files (keeping it in memory).
func (r *Reader) cached(name string) ([]byte, bool) {
	if b, ok := r.mem.get(name); ok {
		return b, true
	}
	b, ok := r.cache.get(name)
	if ok {
		r.mem.put(name, b)
	}
	return b, ok
}

// cacheChunk writes a fetched chunk to the cache files off the read path (with the
// memory layer, only a chunk fetched a second time lately: see seenSet). Writes are
// bounded: when they cannot keep up the chunk is not written (it is in memory for now, and
// a later read fetches it again at worst). Without the memory layer the cache files are
// the only cache, and the write is done before returning.
func (r *Reader) cacheChunk(obj *remoteObject, i int, name string, b []byte) {
	if r.cfg.MemBytes < 0 {
		if err := r.cache.put(name, b); err != nil {
			r.logger.Warn("remote read: caching a chunk failed", "key", obj.key, "chunk", i, "err", err)
		}
		return
	}
	select {
	case r.writes <- struct{}{}:
	default:
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.writes
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() { <-r.writes }()
		if err := r.cache.put(name, b); err != nil {
			r.logger.Warn("remote read: caching a chunk failed", "key", obj.key, "chunk", i, "err", err)
		}
	}()
}

// uncache drops chunk name from memory and the cache files (found corrupt).
func (r *Reader) uncache(name string) {
	r.mem.remove(name)
	r.cache.remove(name)
}

// fetchChunk GETs chunk i of obj from the store (and decompresses a zstd frame).
// With passed, the GET is not made (errPassed) if passed() holds once it may start.
func (r *Reader) fetchChunk(ctx context.Context, obj *remoteObject, i int, passed func() bool) ([]byte, error) {
	if obj.frames == nil {
		start, end := obj.bounds(i)
		b := make([]byte, end-start)
		if err := r.get(ctx, obj.key, b, start, passed); err != nil {
			return nil, err
		}
		return b, nil
	}
	f := obj.frames[i]
	src := make([]byte, f.CompressedLen)
	if err := r.get(ctx, obj.key, src, f.CompressedOffset, passed); err != nil {
		return nil, err
	}
	b, err := r.zstd.DecodeAll(src, make([]byte, 0, f.UncompressedLen))
	if err != nil {
		return nil, obj.corrupt(f.UncompressedOffset, "zstd frame %d: %w", i, err)
	}
	if int64(len(b)) != f.UncompressedLen {
		return nil, obj.corrupt(f.UncompressedOffset, "zstd frame %d decompressed to %d bytes, want %d", i, len(b), f.UncompressedLen)
	}
	return b, nil
}

// readAhead prefetches the n chunks after chunk k of obj in the background, unless
// cached or being fetched. It is best effort: with MaxParallel read-aheads running, it
// skips (reads waiting for GETs matter more than guesses).
func (r *Reader) readAhead(obj *remoteObject, k, n int) {
	for i := k + 1; i <= k+n && i < obj.numChunks(); i++ {
		name := chunkName(obj.key, i)
		if r.mem.contains(name) || r.cache.contains(name) {
			continue
		}
		flight := "chunk/" + name
		r.mu.Lock()
		_, inFlight := r.flights[flight]
		// r.ahead: a read-ahead launched but not yet in flight (its goroutine not run).
		if r.closed || inFlight || r.ahead[flight] || r.prefetching >= r.cfg.MaxParallel {
			r.mu.Unlock()
			continue
		}
		r.ahead[flight] = true
		r.prefetching++
		r.wg.Add(1)
		r.mu.Unlock()
		go func() {
			defer r.wg.Done()
			if _, _, _, err := r.chunk(r.ctx, obj, i, false, true); err != nil && r.ctx.Err() == nil && !errors.Is(err, errPassed) {
				r.logger.Debug("remote read-ahead failed", "key", obj.key, "chunk", i, "err", err)
			}
			r.mu.Lock()
			r.prefetching--
			delete(r.ahead, flight)
			r.mu.Unlock()
		}()
	}
}

// chunkCursor reads byte ranges of one object through its chunks for one Read attempt,
// keeping the chunks it has loaded. Not safe for concurrent use.
type chunkCursor struct {
	r       *Reader
	ctx     context.Context
	obj     *remoteObject
	noCache bool
	chunks  map[int][]byte
	cached  []string // names of chunks served by the cache
	last    int64    // highest position read
}

func (c *chunkCursor) load(i int) ([]byte, error) {
	if b, ok := c.chunks[i]; ok {
		return b, nil
	}
	b, name, hit, err := c.r.chunk(c.ctx, c.obj, i, !c.noCache, false)
	if err != nil {
		return nil, err
	}
	if start, end := c.obj.bounds(i); int64(len(b)) != end-start {
		return nil, c.obj.corrupt(start, "chunk %d has %d bytes, want %d", i, len(b), end-start)
	}
	if hit {
		c.cached = append(c.cached, name)
	}
	c.chunks[i] = b
	return b, nil
}

// bytes returns [a, b) of the object, a < b <= size: within one chunk a slice of it
// (chunks are immutable and shared read-only), else a copy.
func (c *chunkCursor) bytes(a, b int64) ([]byte, error) {
	if i := c.obj.chunkOf(a); c.obj.chunkOf(b-1) == i {
		ch, err := c.load(i)
		if err != nil {
			return nil, err
		}
		start, end := c.obj.bounds(i)
		if b == end {
			c.passed(i)
		}
		c.last = max(c.last, b-1)
		return ch[a-start : b-start : b-start], nil
	}
	out := make([]byte, 0, b-a)
	for p := a; p < b; {
		i := c.obj.chunkOf(p)
		ch, err := c.load(i)
		if err != nil {
			return nil, err
		}
		start, end := c.obj.bounds(i)
		n := min(end, b) - p
		out = append(out, ch[p-start:p-start+n]...)
		if p+n == end {
			c.passed(i)
		}
		p += n
	}
	c.last = max(c.last, b-1)
	return out, nil
}

// passed notes that the read went past the end of chunk i for good (scans only move
// forward): the cursor drops it, and the memory layer lets it go first.
func (c *chunkCursor) passed(i int) {
	delete(c.chunks, i)
	c.r.mem.demote(chunkName(c.obj.key, i))
}

// head reads and checks the batch header at pos.
func (c *chunkCursor) head(pos int64, seg RemoteSegment, next int64, exact bool) (batchHead, error) {
	if pos+remoteBatchHeaderSize > c.obj.size {
		return batchHead{}, c.obj.corrupt(pos, "truncated batch header: object is %d bytes", c.obj.size)
	}
	hb, err := c.bytesKeep(pos, pos+remoteBatchHeaderSize)
	if err != nil {
		return batchHead{}, err
	}
	return c.obj.parseHead(hb, pos, seg, next, exact)
}

// bytesKeep is bytes without dropping chunks (headers are re-read as part of the result).
func (c *chunkCursor) bytesKeep(a, b int64) ([]byte, error) {
	i := c.obj.chunkOf(a)
	if start, end := c.obj.bounds(i); b <= end {
		ch, err := c.load(i)
		if err != nil {
			return nil, err
		}
		return ch[a-start : b-start], nil
	}
	out := make([]byte, 0, b-a)
	for p := a; p < b; {
		i := c.obj.chunkOf(p)
		ch, err := c.load(i)
		if err != nil {
			return nil, err
		}
		start, end := c.obj.bounds(i)
		n := min(end, b) - p
		out = append(out, ch[p-start:p-start+n]...)
		p += n
	}
	return out, nil
}

// remoteObject is what the reader keeps in memory about one remote segment's .log object:
// its chunking (fixed chunks, or zstd frames) and its offset index.
type remoteObject struct {
	key       string // of the log object
	size      int64  // uncompressed .log bytes (RemoteSegment.Size)
	chunkSize int64  // without frames
	index     []byte // the .index object, validated
	frames    []frameSpan

	hintMu sync.Mutex
	hints  [objectHints]readHint // where the last reads ended, for the readers that go on
	hintAt int                   // next slot to overwrite
}

// objectHints is how many read ends an object remembers: one per consumer reading it
// sequentially at once, about.
const objectHints = 4

// readHint says that the batch at position pos has base offset next: where a sequential
// read that ended just before it goes on. Without it the next read would start at the
// index entry at or below next, which names the batch before (entries key a batch's last
// offset), whose chunk the reader has already passed and may have let go.
type readHint struct{ next, pos int64 }

// hint returns the position of the batch with base offset next, if a read ended there.
func (o *remoteObject) hint(next int64) (int64, bool) {
	o.hintMu.Lock()
	defer o.hintMu.Unlock()
	for _, h := range o.hints {
		if h.next == next && h.pos > 0 {
			return h.pos, true
		}
	}
	return 0, false
}

// passedByAll reports whether the reads that left hints have all gone past chunk i (and
// some did): a read-ahead of it would be wasted.
func (o *remoteObject) passedByAll(i int) bool {
	o.hintMu.Lock()
	defer o.hintMu.Unlock()
	some := false
	for _, h := range o.hints {
		if h.pos <= 0 {
			continue
		}
		if h.pos < o.size && o.chunkOf(h.pos) <= i {
			return false
		}
		some = true
	}
	return some
}

// setHint records that a read from offset from ended at pos, where the batch at next
// starts. The read that left a hint at from moves it on: one slot per sequential reader.
func (o *remoteObject) setHint(from, next, pos int64) {
	o.hintMu.Lock()
	defer o.hintMu.Unlock()
	for i, h := range o.hints {
		if h.next == from || h.next == next {
			o.hints[i] = readHint{next: next, pos: pos}
			return
		}
	}
	o.hints[o.hintAt] = readHint{next: next, pos: pos}
	o.hintAt = (o.hintAt + 1) % objectHints
}

func (o *remoteObject) memSize() int64 {
	return int64(len(o.key)) + int64(len(o.index)) + int64(len(o.frames))*32 + 128
}

func (o *remoteObject) corrupt(pos int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at position %d: %w", ErrRemoteCorrupt, o.key, pos, fmt.Errorf(format, args...))
}

func (o *remoteObject) numChunks() int {
	if o.frames != nil {
		return len(o.frames)
	}
	return int((o.size + o.chunkSize - 1) / o.chunkSize)
}

// chunkOf returns the chunk holding position pos < size.
func (o *remoteObject) chunkOf(pos int64) int {
	if o.frames != nil {
		return sort.Search(len(o.frames), func(i int) bool {
			return o.frames[i].UncompressedOffset+o.frames[i].UncompressedLen > pos
		})
	}
	return int(pos / o.chunkSize)
}

// bounds returns the uncompressed byte range of chunk i.
func (o *remoteObject) bounds(i int) (start, end int64) {
	if o.frames != nil {
		f := o.frames[i]
		return f.UncompressedOffset, f.UncompressedOffset + f.UncompressedLen
	}
	start = int64(i) * o.chunkSize
	return start, min(start+o.chunkSize, o.size)
}

// lookup returns the file position to scan from for relative offset rel: that of the last
// index entry with relativeOffset <= rel, and the entry's relative offset (-1: none, scan
// from 0).
func (o *remoteObject) lookup(rel int64) (pos, entryRel int64) {
	n := len(o.index) / 8
	i := sort.Search(n, func(i int) bool {
		return int64(binary.BigEndian.Uint32(o.index[i*8:])) > rel
	})
	if i == 0 {
		return 0, -1
	}
	e := o.index[(i-1)*8:]
	return int64(binary.BigEndian.Uint32(e[4:])), int64(binary.BigEndian.Uint32(e))
}

// object returns the in-memory description of seg's log object, loading its .index (and
// frame index) once; concurrent loads of one segment share the GETs.
func (r *Reader) object(ctx context.Context, seg RemoteSegment) (*remoteObject, error) {
	key := r.key(seg, KindLog)
	r.mu.Lock()
	if el, ok := r.metas[key]; ok {
		r.metaLRU.MoveToFront(el)
		r.mu.Unlock()
		return el.Value.(*remoteObject), nil
	}
	r.mu.Unlock()
	v, err := r.do(ctx, "meta/"+key, func(ctx context.Context) (any, error) {
		// Another readFlight may have loaded it between our miss and this readFlight's start.
		r.mu.Lock()
		el, ok := r.metas[key]
		r.mu.Unlock()
		if ok {
			return el.Value.(*remoteObject), nil
		}
		obj, err := r.loadObject(ctx, seg, key)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.metas[key]; !ok {
			r.metas[key] = r.metaLRU.PushFront(obj)
			r.metaSize += obj.memSize()
			for r.metaSize > metaCacheBytes && r.metaLRU.Len() > 1 {
				old := r.metaLRU.Remove(r.metaLRU.Back()).(*remoteObject)
				delete(r.metas, old.key)
				r.metaSize -= old.memSize()
			}
		}
		return obj, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*remoteObject), nil
}

func (r *Reader) loadObject(ctx context.Context, seg RemoteSegment, key string) (*remoteObject, error) {
	obj := &remoteObject{key: key, size: seg.Size, chunkSize: r.cfg.ChunkSize}
	if seg.Size < 0 || seg.EndOffset < seg.BaseOffset || seg.EndOffset-seg.BaseOffset > 1<<32-1 {
		return nil, fmt.Errorf("%w: %s: bad metadata: size %d, offsets [%d, %d]", ErrRemoteCorrupt, key, seg.Size, seg.BaseOffset, seg.EndOffset)
	}
	switch seg.Compression {
	case "", "none":
	case "zstd-frames":
		frames, err := r.loadFrames(ctx, seg, key)
		if err != nil {
			return nil, err
		}
		obj.frames = frames
	default:
		return nil, fmt.Errorf("%w: %s: unknown compression %q", ErrRemoteCorrupt, key, seg.Compression)
	}
	idx, err := r.readWhole(ctx, r.key(seg, KindIndex))
	if err != nil {
		return nil, err
	}
	if err := checkRemoteIndex(idx, seg); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRemoteCorrupt, r.key(seg, KindIndex), err)
	}
	obj.index = idx
	return obj, nil
}

// readWhole reads a small object (an index) whole.
func (r *Reader) readWhole(ctx context.Context, key string) ([]byte, error) {
	n, err := r.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if n > maxMetaObject {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than %d", ErrRemoteCorrupt, key, n, maxMetaObject)
	}
	b := make([]byte, n)
	if err := r.get(ctx, key, b, 0, nil); err != nil {
		return nil, err
	}
	return b, nil
}

// checkRemoteIndex checks an .index object against segment/FORMAT.md: whole entries,
// relative offsets and positions strictly increasing, inside the segment.
func checkRemoteIndex(b []byte, seg RemoteSegment) error {
	if len(b)%8 != 0 {
		return fmt.Errorf("index of %d bytes is not a whole number of 8-byte entries", len(b))
	}
	prevRel, prevPos := int64(-1), int64(-1)
	for i := 0; i < len(b); i += 8 {
		rel := int64(binary.BigEndian.Uint32(b[i:]))
		pos := int64(binary.BigEndian.Uint32(b[i+4:]))
		switch {
		case rel <= prevRel || pos <= prevPos:
			return fmt.Errorf("index entry %d (%d, %d) does not increase", i/8, rel, pos)
		case seg.BaseOffset+rel > seg.EndOffset:
			return fmt.Errorf("index entry %d: offset %d past end offset %d", i/8, seg.BaseOffset+rel, seg.EndOffset)
		case pos >= seg.Size:
			return fmt.Errorf("index entry %d: position %d past the %d-byte log", i/8, pos, seg.Size)
		}
		prevRel, prevPos = rel, pos
	}
	return nil
}
