package tier

import "errors"

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
		// Room in memory first (memCache.reserve); without it, the chunks after this one
		// do not fit either.
		start, end := obj.bounds(i)
		if r.cfg.MemBytes > 0 && !r.mem.reserve(end-start) {
			r.mu.Unlock()
			return
		}
		r.ahead[flight] = true
		r.prefetching++
		r.wg.Add(1)
		r.mu.Unlock()
		go func() {
			defer r.wg.Done()
			if _, _, _, _, err := r.chunk(r.ctx, obj, i, false, true); err != nil && r.ctx.Err() == nil && !errors.Is(err, errPassed) {
				r.logger.Debug("remote read-ahead failed", "key", obj.key, "chunk", i, "err", err)
			}
			if r.cfg.MemBytes > 0 {
				r.mem.unreserve(end - start)
			}
			r.mu.Lock()
			r.prefetching--
			delete(r.ahead, flight)
			r.mu.Unlock()
		}()
	}
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

// errPassed ends a read-ahead of a chunk every sequential reader of its object has gone
// past by the time the GET could start (read-aheads wait for a MaxParallel token).
var errPassed = errors.New("tier: read-ahead chunk already passed by its readers")
