package meta

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// dirWatch mirrors one directory of the keyspace (acls/, users/) for the security caches:
// a list, then a watch from the next revision; after any watch failure (compaction, lost
// leader) it lists again. After the initial list and after each watch response with events
// it calls onChange with every key of the directory (relative to it) and the revision they
// reflect. onChange runs on the watch's goroutine (the first call on the caller's), never
// concurrently with itself, and must not keep the map.
//
// The Cache does not mirror these directories: what they hold is consumed in another shape
// (an authorizer index, a credential table), by the packages that own that shape.
type dirWatch struct {
	store    *Store
	log      *slog.Logger
	dir      string
	onChange func(items map[string][]byte, rev int64)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	items    map[string][]byte // owned by the watch goroutine after start

	mu       sync.Mutex // guards rev, advanced and closed
	rev      int64
	advanced chan struct{} // closed and replaced whenever rev advances, and at close
	closed   bool
}

// startDirWatch lists dir, calls onChange once, and follows changes until ctx is done or
// Close is called.
func (s *Store) startDirWatch(ctx context.Context, dir string, onChange func(map[string][]byte, int64)) (*dirWatch, error) {
	w := &dirWatch{store: s, log: s.log, dir: dir, onChange: onChange, advanced: make(chan struct{})}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	if err := w.list(ctx); err != nil {
		cancel()
		return nil, err
	}
	w.wg.Add(1)
	go w.run(clientv3.WithRequireLeader(wctx))
	return w, nil
}

func (w *dirWatch) prefix() string { return w.store.prefix + w.dir }

func (w *dirWatch) list(ctx context.Context) error {
	resp, err := w.store.cli.Get(ctx, w.prefix(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("meta: listing %s: %w", w.dir, err)
	}
	w.items = make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		w.items[string(kv.Key[len(w.prefix()):])] = kv.Value
	}
	w.onChange(w.items, resp.Header.Revision)
	w.advance(resp.Header.Revision)
	return nil
}

func (w *dirWatch) run(ctx context.Context) {
	defer w.wg.Done()
	defer w.markClosed()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		err := w.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("metadata watch failed; re-listing", "dir", w.dir, "err", err)
		for {
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			if err := w.list(ctx); err == nil {
				backoff = minBackoff
				break
			} else if ctx.Err() != nil {
				return
			} else {
				w.log.Warn("metadata re-list failed", "dir", w.dir, "err", err)
			}
		}
	}
}

func (w *dirWatch) watch(ctx context.Context) error {
	wch := w.store.cli.Watch(ctx, w.prefix(), clientv3.WithPrefix(), clientv3.WithRev(w.Revision()+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return fmt.Errorf("meta: watch canceled by the server")
		}
		if len(resp.Events) == 0 {
			continue
		}
		for _, ev := range resp.Events {
			key, ok := strings.CutPrefix(string(ev.Kv.Key), w.prefix())
			if !ok {
				continue
			}
			if ev.Type == mvccpb.DELETE {
				delete(w.items, key)
			} else {
				w.items[key] = ev.Kv.Value
			}
		}
		rev := resp.Events[len(resp.Events)-1].Kv.ModRevision
		w.onChange(w.items, rev)
		w.advance(rev)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("meta: watch channel closed")
}

func (w *dirWatch) advance(rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rev > w.rev {
		w.rev = rev
		close(w.advanced)
		w.advanced = make(chan struct{})
	}
}

func (w *dirWatch) markClosed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	close(w.advanced)
	w.advanced = make(chan struct{})
}

// Revision is the etcd revision the mirror reflects.
func (w *dirWatch) Revision() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rev
}

// WaitRevision blocks until the mirror has applied rev (the revision a write to its
// directory returned), ctx is done, or the watch stopped (ErrClosed).
func (w *dirWatch) WaitRevision(ctx context.Context, rev int64) error {
	for {
		w.mu.Lock()
		cur, closed, advanced := w.rev, w.closed, w.advanced
		w.mu.Unlock()
		switch {
		case cur >= rev:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting for revision %d of %s (at %d): %w", rev, w.dir, cur, ctx.Err())
		}
	}
}

// Close stops the watch and waits for its goroutine.
func (w *dirWatch) Close() {
	w.cancel()
	w.wg.Wait()
}
