package txn

// The two reapers: transactions past transaction.timeout.ms are aborted
// (with a bumped epoch, which fences their producer), and transactional
// ids idle for transactional.id.expiration.ms are tombstoned.

import "time"

// abortTimedOut aborts every ongoing transaction that started longer than
// its timeout ago and is not being changed.
func (c *Coordinator) abortTimedOut() {
	now := c.now().UnixMilli()
	shards, _ := c.allShards()
	for _, sh := range shards {
		for _, t := range sh.snapshot() {
			t.mu.Lock()
			if !t.removed && !t.writing && t.cur.state == Ongoing && t.cur.startMs+int64(t.cur.timeoutMs) < now {
				c.log.Info("aborting a transaction past its timeout", "transactional_id", t.id,
					"producer_id", t.cur.producerID, "producer_epoch", t.cur.epoch,
					"started", time.UnixMilli(t.cur.startMs), "timeout_ms", t.cur.timeoutMs)
				c.metrics.timedOut.Inc()
				sh.fenceLocked(t)
			}
			t.mu.Unlock()
		}
	}
}

// expireIDs forgets the transactional ids without a transaction whose last
// change is older than transactional.id.expiration.ms: a tombstone is
// written, and once it is committed the id is gone (a later
// InitProducerId starts afresh with a new producer id).
func (c *Coordinator) expireIDs() {
	limit := c.now().Add(-c.cfg.IDExpiration).UnixMilli()
	shards, _ := c.allShards()
	for _, sh := range shards {
		for _, t := range sh.snapshot() {
			t.mu.Lock()
			switch st := t.cur.state; {
			case t.removed || t.writing || t.cur.updateMs > limit:
			case !t.loaded: // created by an InitProducerId whose write failed: nothing to tombstone
				t.removed = true
				sh.remove(t)
			case st == Empty || st == CompleteCommit || st == CompleteAbort:
				next := t.cur
				next.state = Dead
				sh.writeLocked(t, next, func(code int16) {
					if code == 0 {
						t.removed = true
						sh.remove(t)
						c.metrics.expired.Inc()
					}
				})
			}
			t.mu.Unlock()
		}
	}
}
