package txn

// EndTxn and the completion of a transaction: PrepareCommit or
// PrepareAbort is written to __transaction_state (and the client answered),
// markers are written to every partition of the transaction, retried until
// each partition took its marker, then CompleteCommit or CompleteAbort is
// written.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn answers EndTxn (v0-5): it commits or aborts the ongoing
// transaction of the producer. The answer comes once the Prepare state is
// committed to __transaction_state, as Kafka's does; the markers follow. A
// retry of an EndTxn that completed succeeds; one whose markers are still
// being written gets CONCURRENT_TRANSACTIONS. Version 5 answers with the
// producer id and epoch, which this coordinator does not bump (it speaks
// transaction version 1).
func (c *Coordinator) EndTxn(ctx context.Context, req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	code := c.endTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	resp.ErrorCode = fencedFor(code, req.Version, 2)
	return resp
}

func (c *Coordinator) endTxn(ctx context.Context, id string, pid int64, epoch int16, commit bool) int16 {
	return c.change(ctx, id, func(sh *shard, t *txn) (<-chan int16, int16) {
		return sh.endLocked(t, pid, epoch, commit)
	})
}

func (sh *shard) endLocked(t *txn, pid int64, epoch int16, commit bool) (<-chan int16, int16) {
	cur := t.cur
	switch {
	case t.removed || pid != cur.producerID:
		return nil, kerr.InvalidProducerIDMapping.Code
	case epoch != cur.epoch:
		return nil, kerr.ProducerFenced.Code
	case t.writing:
		return nil, kerr.ConcurrentTransactions.Code
	}
	switch cur.state {
	case Ongoing:
		next := cur
		next.state = PrepareAbort
		if commit {
			next.state = PrepareCommit
		}
		next.updateMs = sh.c.now().UnixMilli()
		return sh.writeLocked(t, next, func(code int16) {
			if code == 0 {
				sh.completeLocked(t)
			}
		}), 0
	case CompleteCommit, CompleteAbort:
		if commit == (cur.state == CompleteCommit) {
			return nil, 0 // a retry of an EndTxn that completed
		}
	case PrepareCommit, PrepareAbort:
		if commit == (cur.state == PrepareCommit) {
			return nil, kerr.ConcurrentTransactions.Code
		}
	}
	return nil, kerr.InvalidTxnState.Code // Empty, or the opposite of what was decided
}

// completeLocked starts completing t, which is PrepareCommit or
// PrepareAbort and not writing (t.mu held): markers go out, then the
// Complete state is written; t stays pending until then.
func (sh *shard) completeLocked(t *txn) {
	cur := t.cur
	done := CompleteAbort
	if cur.state == PrepareCommit {
		done = CompleteCommit
	}
	t.startWriting()
	m := Marker{ProducerID: cur.producerID, ProducerEpoch: cur.epoch, Commit: done == CompleteCommit,
		CoordinatorEpoch: sh.epoch, TransactionVersion: int8(cur.clientTV), Partitions: cur.partitions}
	sh.c.wg.Go(func() { sh.finish(t, m) })
}

// finish writes m's markers and then t's Complete state, retrying both
// until they succeed or the shard is unloaded (the next coordinator
// finishes what was prepared).
func (sh *shard) finish(t *txn, m Marker) {
	if !sh.sendMarkers(m, t.id) {
		return
	}
	for sh.ctx.Err() == nil {
		t.mu.Lock()
		next := t.cur
		next.state = CompleteAbort
		if m.Commit {
			next.state = CompleteCommit
		}
		next.partitions = nil
		next.updateMs = sh.c.now().UnixMilli()
		off, err := sh.append(t.id, next)
		if err == nil {
			// Appended: t is complete for whatever comes next. A later
			// record of t (the producer's next AddPartitionsToTxn, sent
			// as soon as EndTxn was answered) is appended after this one
			// and committed only with it, so it need not wait for this
			// commit: both share one sync. Should this never commit, the
			// partition changed leader and the next coordinator reloads
			// t from what was committed.
			t.cur = next
			t.stopWriting()
		}
		t.mu.Unlock()
		code := sh.committed(off, err)
		if err == nil {
			if code == 0 {
				sh.c.metrics.ended(m.Commit)
			} else if code != kerr.NotCoordinator.Code {
				sh.c.log.Warn("a completed transaction's state was appended but not committed", "transactional_id", t.id,
					"partition", sh.log.String(), "error_code", code)
			}
			return
		}
		if code == kerr.NotCoordinator.Code {
			return
		}
		sh.c.log.Warn("writing a completed transaction failed; retrying", "transactional_id", t.id,
			"partition", sh.log.String(), "error_code", code)
		if !sh.pause() {
			return
		}
	}
}

// sendMarkers writes m to its partitions until every one took it (or no
// longer exists). It reports false if it gave up: the shard was unloaded,
// or a partition says a newer producer epoch or coordinator exists.
func (sh *shard) sendMarkers(m Marker, id string) bool {
	left := m.Partitions
	for len(left) > 0 {
		if sh.ctx.Err() != nil {
			return false
		}
		// Partitions of deleted topics take no marker, as in Kafka.
		kept := left[:0:0]
		for _, tp := range left {
			if tp.Partition < sh.c.d.TopicPartitions(tp.Topic) {
				kept = append(kept, tp)
			}
		}
		if left = kept; len(left) == 0 {
			break
		}
		send := m
		send.Partitions = left
		codes, err := sh.c.d.Markers.WriteMarkers(sh.ctx, send)
		if err == nil && len(codes) != len(left) {
			err = fmt.Errorf("txn: %d marker results for %d partitions", len(codes), len(left))
		}
		var retry []TopicPartition
		if err != nil {
			retry = left
			sh.c.log.Warn("writing transaction markers failed; retrying", "transactional_id", id, "err", err)
		} else {
			for i, code := range codes {
				switch code {
				case 0:
				case kerr.UnsupportedForMessageFormat.Code:
					// The partition could not have taken transactional
					// data either; Kafka drops it too.
				case kerr.InvalidProducerEpoch.Code, kerr.TransactionCoordinatorFenced.Code:
					sh.c.log.Error("a partition refused a transaction marker: a newer producer epoch or coordinator exists; this coordinator stops sending",
						"transactional_id", id, "topic", left[i].Topic, "partition", left[i].Partition, "error_code", code)
					return false
				default:
					retry = append(retry, left[i])
				}
			}
		}
		if left = retry; len(left) > 0 {
			sh.c.metrics.markerRetries.Inc()
			if !sh.pause() {
				return false
			}
		}
	}
	return true
}

// pause waits the marker retry backoff; false if the shard is unloaded
// meanwhile.
func (sh *shard) pause() bool {
	t := time.NewTimer(sh.c.d.MarkerRetryBackoff)
	defer t.Stop()
	select {
	case <-sh.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
