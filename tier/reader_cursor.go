package tier

import "context"

// chunkCursor reads byte ranges of one object through its chunks for one Read attempt,
// keeping the chunks it has loaded. Not safe for concurrent use.
type chunkCursor struct {
	r       *Reader
	ctx     context.Context
	obj     *remoteObject
	noCache bool
	chunks  map[int][]byte
	views   map[int]*cacheView // the chunks of chunks read in place from cache files
	pins    []*cacheView       // every view pinned, released by close
	cached  []string           // names of chunks served by the cache
	last    int64              // highest position read
}

// close releases the cache files the cursor pinned.
func (c *chunkCursor) close() {
	for _, v := range c.pins {
		v.release()
	}
	c.pins = nil
}

func (c *chunkCursor) load(i int) ([]byte, error) {
	if b, ok := c.chunks[i]; ok {
		return b, nil
	}
	b, v, name, hit, err := c.r.chunk(c.ctx, c.obj, i, !c.noCache, false)
	if err != nil {
		return nil, err
	}
	if v != nil {
		c.pins = append(c.pins, v)
	}
	if start, end := c.obj.bounds(i); int64(len(b)) != end-start {
		return nil, c.obj.corrupt(start, "chunk %d has %d bytes, want %d", i, len(b), end-start)
	}
	if hit {
		c.cached = append(c.cached, name)
	}
	c.chunks[i] = b
	if v != nil {
		c.views[i] = v
	} else {
		delete(c.views, i)
	}
	return b, nil
}

// bytes returns [a, b) of the object, a < b <= size: within one chunk a slice of it
// (chunks are immutable and shared read-only), else a copy. When that chunk is read in
// place from a cache file, v is its view (pinned until close) and pos the range's
// position in the file; the slice is only valid until close.
func (c *chunkCursor) bytes(a, b int64) (out []byte, v *cacheView, pos int64, err error) {
	if i := c.obj.chunkOf(a); c.obj.chunkOf(b-1) == i {
		ch, err := c.load(i)
		if err != nil {
			return nil, nil, 0, err
		}
		v = c.views[i]
		start, end := c.obj.bounds(i)
		if b == end {
			c.passed(i)
		}
		c.last = max(c.last, b-1)
		return ch[a-start : b-start : b-start], v, a - start, nil
	}
	out, err = c.copyRange(a, b, true)
	if err != nil {
		return nil, nil, 0, err
	}
	c.last = max(c.last, b-1)
	return out, nil, 0, nil
}

// copyRange returns a copy of [a, b) of the object, assembled from its chunks; with drop,
// every chunk whose end it reaches is passed.
func (c *chunkCursor) copyRange(a, b int64, drop bool) ([]byte, error) {
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
		if drop && p+n == end {
			c.passed(i)
		}
		p += n
	}
	return out, nil
}

// passed notes that the read went past the end of chunk i for good (scans only move
// forward): the cursor drops it, and the memory layer lets it go first.
func (c *chunkCursor) passed(i int) {
	delete(c.chunks, i)
	delete(c.views, i)
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
	return c.copyRange(a, b, false)
}
