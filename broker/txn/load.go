package txn

import (
	"fmt"
	"time"
)

// loadReadBytes is how much of the log load reads at a time.
const loadReadBytes = 1 << 20

// load reads the shard's partition from its log start to its log end (as
// of becoming leader) and rebuilds the transactional ids it holds: the last
// record of each key wins, a tombstone deletes. Transactions found
// prepared (the previous coordinator failed between writing PrepareCommit
// or PrepareAbort and writing the Complete state) are completed: their
// markers are written again (partitions ignore a duplicate marker) and the
// Complete state follows. Ongoing ones are left to the timeout reaper.
// Until load is done the shard answers COORDINATOR_LOAD_IN_PROGRESS; a
// record it cannot decode keeps it so (skipping it could lose a
// transaction's outcome) and is logged.
func (sh *shard) load() {
	began := time.Now()
	metas, records, err := replay(sh.log, func() bool { return sh.ctx.Err() != nil })
	if err != nil {
		sh.c.log.Error("loading transactional ids failed; the partition's transactional ids stay unavailable",
			"partition", sh.log.String(), "err", err)
		return
	}
	if sh.ctx.Err() != nil {
		return
	}
	var prepared []*txn
	sh.mu.Lock()
	for id, m := range metas {
		if m.state == PrepareEpochFence { // never written by Kafka; its abort will follow
			m.state = Ongoing
		}
		t := newTxn(id, m)
		t.loaded = true
		sh.txns[id] = t
		if m.state == PrepareCommit || m.state == PrepareAbort {
			prepared = append(prepared, t)
		}
	}
	n := len(sh.txns)
	sh.mu.Unlock()
	for _, t := range prepared {
		t.mu.Lock()
		sh.completeLocked(t)
		t.mu.Unlock()
	}
	sh.loaded.Store(true)
	took := time.Since(began)
	sh.c.metrics.loadSeconds.Observe(took.Seconds())
	sh.c.log.Info("loaded transactional ids", "partition", sh.log.String(), "coordinator_epoch", sh.epoch,
		"transactional_ids", n, "completing", len(prepared), "records", records, "took", took)
}

// replay reads l from its start to its end and returns the state of each
// transactional id, the last record of a key winning and a tombstone
// deleting it. stop is polled between reads.
func replay(l Log, stop func() bool) (map[string]meta, int, error) {
	metas := map[string]meta{}
	records := 0
	apply := func(off int64, key, value []byte) error {
		records++
		id, ok, err := decodeKey(key)
		if err != nil || !ok {
			return err // ok false: a newer kind of record, skipped as Kafka does
		}
		if value == nil {
			delete(metas, id)
			return nil
		}
		m, err := decodeValue(value)
		if err != nil {
			return fmt.Errorf("offset %d, transactional id %q: %w", off, id, err)
		}
		if m.state == Dead {
			delete(metas, id)
			return nil
		}
		metas[id] = m
		return nil
	}
	off, end := l.Bounds()
	for off < end && !stop() {
		b, err := l.Read(off, loadReadBytes, end)
		if err != nil {
			return nil, records, fmt.Errorf("reading at offset %d: %w", off, err)
		}
		if len(b) == 0 {
			break // the rest is a gap (compaction) up to the end
		}
		next, err := readRecords(b, apply)
		if err != nil {
			return nil, records, err
		}
		if next <= off {
			return nil, records, fmt.Errorf("%w: the log did not advance past offset %d", ErrBadRecord, off)
		}
		off = next
	}
	return metas, records, nil
}
