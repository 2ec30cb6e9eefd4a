package partition

import "time"

// A partition's flusher (flushLoop, append.go) syncs its log on request. It
// runs only while the partition is written to: the first append that asks
// for a sync starts it, and it ends after flusherIdle without a request. An
// idle partition then holds no goroutine, whose stack (8 KiB at least) would
// be most of what an idle partition costs (issue 14: at most 20 KiB of RSS
// per idle partition, with 10,000 of them).
//
// p.flushing is true from the moment a flusher is due until it has decided
// to end. requestFlush puts its request in flushReq first and then starts a
// flusher if none is flushing; a flusher that ends clears flushing first and
// then looks at flushReq again (retireFlusher), so a request is never left
// without a flusher that will see it.

// flusherIdle is how long a flusher waits for a request before it ends: long
// enough that a partition produced to steadily keeps its flusher. A variable
// only as a test seam.
var flusherIdle = 2 * time.Second

// startFlusher runs p's flusher on the Manager's wait group, unless the
// Manager is closing (the logs are then synced by Close). p.flushing is set.
func (m *Manager) startFlusher(p *Partition) {
	m.flushMu.RLock()
	defer m.flushMu.RUnlock()
	if m.flushStopped {
		p.flushing.Store(false)
		return
	}
	m.wg.Go(func() { p.flushLoop(m.ctx) })
}

// retireFlusher is called by an idle flusher. It reports whether the flusher
// may end: no request came in meanwhile, or one did and another flusher was
// started for it. When it returns false the caller keeps flushing.
func (p *Partition) retireFlusher() bool {
	p.flushing.Store(false)
	if len(p.flushReq) == 0 {
		return true // a later request starts a new flusher
	}
	// A request raced with the decision: serve it unless its sender started a
	// flusher already.
	return !p.flushing.CompareAndSwap(false, true)
}
