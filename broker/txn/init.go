package txn

// InitProducerId with a transactional id (KIP-98, KIP-360, KIP-588).

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID answers InitProducerId (v0-5) for a request that names a
// transactional id; the broker answers idempotent producers (no
// transactional id) itself. It blocks until the new epoch is committed to
// __transaction_state, at most the write timeout.
//
// A new id gets a producer id and epoch 0; a known one has its epoch
// bumped, which fences every older producer of the id; an ongoing
// transaction is aborted first with a bumped epoch (the client is told
// CONCURRENT_TRANSACTIONS and retries); a producer presenting its id and
// epoch (v3+, KIP-360) gets a bump of its own epoch, or the same answer
// again when it retries after a bump it did not hear of; an exhausted epoch
// moves the id to a new producer id.
func (c *Coordinator) InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID == nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	code, pid, epoch := c.initProducerID(ctx, *req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
	}
	resp.ErrorCode = fencedFor(code, req.Version, 4)
	return resp
}

// fencedFor maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for request
// versions before the one that introduced it (KIP-588), as Kafka does.
func fencedFor(code, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

func (c *Coordinator) validTimeout(ms int32) bool {
	return ms > 0 && int64(ms) <= c.cfg.MaxTimeout.Milliseconds()
}

func (c *Coordinator) initProducerID(ctx context.Context, id string, timeoutMs int32, expPID int64, expEpoch int16) (code int16, pid int64, epoch int16) {
	switch {
	case id == "":
		return kerr.InvalidRequest.Code, 0, 0
	case (expPID == noProducerID) != (expEpoch == noProducerEpoch):
		return kerr.InvalidRequest.Code, 0, 0
	case !c.validTimeout(timeoutMs):
		return kerr.InvalidTransactionTimeout.Code, 0, 0
	}
	sh, code := c.shardFor(id)
	if code != 0 {
		return code, 0, 0
	}
	// newPID is allocated outside any lock when needed (a new id, or a
	// rotation), then the decision is taken again.
	newPID := int64(noProducerID)
	allocate := func() bool {
		var err error
		if newPID, err = c.d.ProducerIDs.NextProducerID(ctx); err != nil {
			c.log.Error("allocating a producer id", "transactional_id", id, "err", err)
			return false
		}
		return true
	}
	for range 4 {
		t := sh.get(id)
		if t == nil {
			if newPID < 0 && !allocate() {
				return kerr.CoordinatorNotAvailable.Code, 0, 0
			}
			now := c.now().UnixMilli()
			fresh := newTxn(id, meta{producerID: newPID, prevProducerID: noProducerID, nextProducerID: noProducerID,
				epoch: noProducerEpoch, timeoutMs: timeoutMs, state: Empty, startMs: -1, updateMs: now})
			if t = sh.getOrCreate(id, fresh); t == fresh {
				newPID = noProducerID // used
			}
		}
		t.mu.Lock()
		ch, code, pid, epoch, needPID := sh.initLocked(t, timeoutMs, expPID, expEpoch, newPID)
		t.mu.Unlock()
		if needPID {
			if !allocate() {
				return kerr.CoordinatorNotAvailable.Code, 0, 0
			}
			continue
		}
		if ch == nil {
			if code == -1 { // removed meanwhile: look again
				continue
			}
			return code, 0, 0
		}
		if code = sh.await(ctx, ch); code != 0 {
			return code, 0, 0
		}
		if epoch < 0 { // a fence: the ongoing transaction is being aborted
			return kerr.ConcurrentTransactions.Code, 0, 0
		}
		return 0, pid, epoch
	}
	return kerr.ConcurrentTransactions.Code, 0, 0
}

// initLocked decides InitProducerId for t (t.mu held). It either starts a
// write (ch; epoch is -1 for a fence), fails with a code (-1: t was removed,
// try again), or asks for a new producer id (needPID) when the epoch is
// exhausted and newPID is not one.
func (sh *shard) initLocked(t *txn, timeoutMs int32, expPID int64, expEpoch int16, newPID int64) (ch <-chan int16, code int16, pid int64, epoch int16, needPID bool) {
	cur := t.cur
	switch {
	case t.removed:
		return nil, -1, 0, 0, false
	case t.writing:
		return nil, kerr.ConcurrentTransactions.Code, 0, 0, false
	case expPID != noProducerID && !validProducerID(t, expPID, expEpoch):
		return nil, kerr.ProducerFenced.Code, 0, 0, false
	}
	switch cur.state {
	case PrepareCommit, PrepareAbort:
		return nil, kerr.ConcurrentTransactions.Code, 0, 0, false
	case Ongoing:
		return sh.fenceLocked(t), 0, 0, -1, false
	case Empty, CompleteCommit, CompleteAbort:
	default: // Dead is being written (pending); PrepareEpochFence is never current
		return nil, kerr.ConcurrentTransactions.Code, 0, 0, false
	}
	next := cur
	next.state, next.partitions, next.startMs, next.timeoutMs = Empty, nil, -1, timeoutMs
	next.updateMs = sh.c.now().UnixMilli()
	lastEpoch := int16(noProducerEpoch)
	switch {
	case epochExhausted(cur.epoch) && (expPID == noProducerID || expEpoch == cur.epoch):
		if newPID < 0 {
			return nil, 0, 0, 0, true
		}
		next.prevProducerID, next.producerID, next.epoch = cur.producerID, newPID, 0
		if expPID != noProducerID {
			lastEpoch = cur.epoch
		}
	case expPID == noProducerID: // a new producer: fence the others
		next.epoch = cur.epoch + 1
	case cur.epoch == noProducerEpoch || expEpoch == cur.epoch: // KIP-360: the producer recovers
		next.epoch, lastEpoch = cur.epoch+1, cur.epoch
	case expEpoch == t.lastEpoch: // a retry of a bump that succeeded
		next.epoch, lastEpoch = cur.epoch, t.lastEpoch
	default:
		return nil, kerr.ProducerFenced.Code, 0, 0, false
	}
	ch = sh.writeLocked(t, next, func(code int16) {
		if code == 0 {
			t.lastEpoch = lastEpoch
		}
	})
	return ch, 0, next.producerID, next.epoch, false
}

// validProducerID is Kafka's check of the producer id a recovering
// producer presents: any while the id has no epoch yet (it was just
// created), the current one, or the previous one with an exhausted epoch
// (a retry after a rotation whose answer was lost).
func validProducerID(t *txn, pid int64, epoch int16) bool {
	return t.cur.epoch == noProducerEpoch || pid == t.cur.producerID ||
		(pid == t.cur.prevProducerID && epochExhausted(epoch))
}

// fenceLocked aborts t's ongoing transaction with a bumped epoch, so that
// the producer holding the old epoch is fenced everywhere: the coordinator
// refuses it, and the abort markers carry the new epoch to the partitions.
// The bumped epoch is only ever in the log, never handed out; a failed
// write leaves t as it was and the next attempt bumps the same way.
func (sh *shard) fenceLocked(t *txn) <-chan int16 {
	next := t.cur
	if next.epoch < math.MaxInt16 {
		next.epoch++
	}
	next.state = PrepareAbort
	next.updateMs = sh.c.now().UnixMilli()
	return sh.writeLocked(t, next, func(code int16) {
		if code == 0 {
			t.lastEpoch = noProducerEpoch
			sh.completeLocked(t)
		}
	})
}
