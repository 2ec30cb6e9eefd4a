package tier

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
)

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

// key names an object of seg (REMOTE.md).
func (r *Reader) key(seg RemoteSegment, kind string) string {
	return SegmentObjectKey(seg, kind)
}

// metaEntry is what the reader keeps in memory of a remote segment besides chunks, in one
// LRU bounded by metaCacheBytes: a log object's description (*remoteObject, under the log
// object's key) or a parsed txnindex object (*remoteTxnIndex, under its own key).
type metaEntry interface {
	metaKey() string
	memSize() int64
}

func (o *remoteObject) metaKey() string { return o.key }

// object returns the in-memory description of seg's log object, loading its .index (and
// frame index) once; concurrent loads of one segment share the GETs.
func (r *Reader) object(ctx context.Context, seg RemoteSegment) (*remoteObject, error) {
	key := r.key(seg, KindLog)
	v, err := r.meta(ctx, key, func(ctx context.Context) (metaEntry, error) { return r.loadObject(ctx, seg, key) })
	if err != nil {
		return nil, err
	}
	return v.(*remoteObject), nil
}

// meta returns the entry cached under key, or loads it with load once (concurrent callers
// share the load) and caches it, evicting the least recently used entries beyond
// metaCacheBytes (the newest always stays).
func (r *Reader) meta(ctx context.Context, key string, load func(ctx context.Context) (metaEntry, error)) (metaEntry, error) {
	r.mu.Lock()
	if el, ok := r.metas[key]; ok {
		r.metaLRU.MoveToFront(el)
		r.mu.Unlock()
		return el.Value.(metaEntry), nil
	}
	r.mu.Unlock()
	v, err := r.do(ctx, "meta/"+key, func(ctx context.Context) (any, error) {
		// Another readFlight may have loaded it between our miss and this readFlight's start.
		r.mu.Lock()
		el, ok := r.metas[key]
		r.mu.Unlock()
		if ok {
			return el.Value.(metaEntry), nil
		}
		e, err := load(ctx)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.metas[key]; !ok {
			r.metas[key] = r.metaLRU.PushFront(e)
			r.metaSize += e.memSize()
			for r.metaSize > metaCacheBytes && r.metaLRU.Len() > 1 {
				old := r.metaLRU.Remove(r.metaLRU.Back()).(metaEntry)
				delete(r.metas, old.metaKey())
				r.metaSize -= old.memSize()
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(metaEntry), nil
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
