package tier

import (
	"context"
	"fmt"
)

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
