package tier

import (
	"context"
	"errors"
)

// chunk returns chunk i of obj: from memory, a cache file (v, pinned: the caller
// releases it) or by a GET shared with concurrent callers that then fills the cache.
// fromCache reports a cache hit.
func (r *Reader) chunk(ctx context.Context, obj *remoteObject, i int, useCache, ahead bool) (b []byte, v *cacheView, name string, fromCache bool, err error) {
	name = chunkName(obj.key, i)
	if useCache {
		if b, ok := r.mem.get(name); ok {
			r.m.cacheHits.Inc()
			return b, nil, name, true, nil
		}
		// A cache file is read in place (mapped), not copied into memory: a read
		// within the chunk goes out as a range of the file (Records).
		if v, ok := r.cache.pin(name); ok {
			r.m.cacheHits.Inc()
			return v.b, v, name, true, nil
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
	got, err := r.do(ctx, "chunk/"+name, fetch)
	for errors.Is(err, errPassed) && !ahead {
		// This read joined a read-ahead that gave up on the chunk.
		got, err = r.do(ctx, "chunk/"+name, fetch)
	}
	if err != nil {
		return nil, nil, name, false, err
	}
	return got.([]byte), nil, name, false, nil
}

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
