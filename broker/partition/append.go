package partition

import (
	"context"
	"time"

	"github.com/sedimentio/sediment/segment"
)

// Acks is a produce's required acknowledgements, as Kafka numbers them.
type Acks int16

const (
	AcksNone   Acks = 0  // no response: nothing to wait for
	AcksLeader Acks = 1  // durable on the leader per the flush policy
	AcksAll    Acks = -1 // committed: below the high watermark (the ISR has it)
)

// AppendResult is where an append went.
type AppendResult struct {
	FirstOffset, LastOffset int64
	LogAppendTime           int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset          int64
	// LeaderEpoch is the term the batches were appended in; WaitCommitted
	// fails if the term ends first.
	LeaderEpoch int32
	// Duplicate is set when an idempotent producer's retry matched batches
	// already in the log; the offsets are theirs and nothing was appended.
	Duplicate bool
}

// AppendLeader appends record batches (v2, validated and given offsets by
// the log, stored verbatim) as the leader, and starts making them durable
// and replicated. It does not wait: Wait does, for the acks asked for.
//
// With AcksAll it refuses (ErrNotEnoughReplicas) while the ISR is below
// min.insync.replicas. Without leadership it returns ErrNotLeader. Both leave
// the result's LogStartOffset -1. Errors of the log (segment.ErrCorruptBatch,
// ErrRecordTooLarge, ErrOutOfOrderSequence, ...) come back with the log start
// offset in the result.
func (p *Partition) AppendLeader(records []byte, acks Acks) (AppendResult, error) {
	res, err := p.appendLeader(acks, func(epoch int32) (segment.AppendResult, error) {
		return p.log.AppendLeader(records, epoch)
	})
	p.countIn(res, err, len(records))
	return res, err
}

// AppendVerified is AppendLeader for data whose transaction was verified
// with its coordinator under guard (KIP-890 part 1;
// segment.Log.AppendLeaderGuarded): if a marker for the producer was
// written since the guard was taken, a batch that would start a
// transaction is refused with segment.ErrTxnNotVerified.
func (p *Partition) AppendVerified(records []byte, acks Acks, guard segment.TxnGuard) (AppendResult, error) {
	res, err := p.appendLeader(acks, func(epoch int32) (segment.AppendResult, error) {
		return p.log.AppendLeaderGuarded(records, epoch, guard)
	})
	p.countIn(res, err, len(records))
	return res, err
}

// StartTxnVerification is the guard under which producerID's transactional
// data may start a transaction here, 0 when it has one ongoing already (no
// verification is needed); see segment.Log.StartTxnVerification.
func (p *Partition) StartTxnVerification(producerID int64) segment.TxnGuard {
	return p.log.StartTxnVerification(producerID)
}

// EndTxnVerification drops a guard whose verification failed.
func (p *Partition) EndTxnVerification(producerID int64, guard segment.TxnGuard) {
	p.log.EndTxnVerification(producerID, guard)
}

// AppendMarker appends a transaction marker (WriteTxnMarkers): COMMIT or
// ABORT of producerID's transaction, written by the coordinator in
// coordinatorEpoch. It ends the transaction here, which may advance the last
// stable offset; an ABORT adds it to the aborted transactions read_committed
// fetches get. Like AppendLeader it does not wait; markers are written with
// AcksAll (Wait). Besides AppendLeader's errors: segment.ErrInvalidProducerEpoch
// for a marker of an older producer epoch, segment.ErrCoordinatorFenced for
// one from a deposed coordinator.
func (p *Partition) AppendMarker(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32) (AppendResult, error) {
	return p.appendLeader(AcksAll, func(epoch int32) (segment.AppendResult, error) {
		return p.log.AppendMarker(producerID, producerEpoch, commit, coordinatorEpoch, epoch)
	})
}

// appendLeader runs one append of the leader in its epoch and starts making
// it durable and replicated.
func (p *Partition) appendLeader(acks Acks, write func(epoch int32) (segment.AppendResult, error)) (AppendResult, error) {
	l := p.leader()
	if l == nil {
		return AppendResult{LogStartOffset: -1}, ErrNotLeader
	}
	if acks == AcksAll && len(l.ISR()) < int(p.minISR.Load()) {
		return AppendResult{LogStartOffset: -1}, ErrNotEnoughReplicas
	}
	res, err := write(l.Epoch())
	if err != nil {
		return AppendResult{LogStartOffset: p.log.LogStartOffset()}, err
	}
	// Followers fetch it now; the flusher starts syncing at once, in
	// parallel with every other partition's; durable-as-written (flush to
	// the OS) may advance the high watermark already.
	p.appended()
	p.updateHW()
	p.requestFlush()
	return AppendResult{
		FirstOffset:    res.FirstOffset,
		LastOffset:     res.LastOffset,
		LogAppendTime:  res.LogAppendTime,
		LogStartOffset: res.LogStartOffset,
		LeaderEpoch:    l.Epoch(),
		Duplicate:      res.Duplicate,
	}, nil
}

// Wait blocks until an append is acknowledged as acks asks: AcksAll waits
// for WaitCommitted, AcksLeader for WaitDurable, AcksNone returns at once.
func (p *Partition) Wait(ctx context.Context, res AppendResult, acks Acks) error {
	switch acks {
	case AcksAll:
		return p.WaitCommitted(ctx, res.LastOffset+1, res.LeaderEpoch)
	case AcksLeader:
		return p.WaitDurable(ctx, res.LastOffset+1)
	default:
		return nil
	}
}

// WaitDurable blocks until every offset below next is durable on this
// broker per the topic's flush policy.
func (p *Partition) WaitDurable(ctx context.Context, next int64) error {
	return p.log.WaitDurable(ctx, next)
}

// WaitCommitted blocks until the high watermark reaches next (acks=all, and
// coordinators acknowledging their writes). It fails with ErrNotLeader when
// this broker stops leading in epoch, with ErrNotEnoughReplicasAfterAppend
// when the ISR shrinks below min.insync.replicas, with the log's error when a
// sync failed, with ErrClosed when the partition goes away, and with ctx's
// error.
func (p *Partition) WaitCommitted(ctx context.Context, next int64, epoch int32) error {
	for {
		p.mu.Lock()
		ch := p.hwCh
		p.mu.Unlock()
		if p.hw.Load() >= next {
			// Committed; but as Kafka's acks=all, not acknowledged while
			// this term's ISR is below min.insync.replicas (the leader
			// alone may have moved the high watermark past it).
			if l := p.leader(); l != nil && l.Epoch() == epoch && len(l.ISR()) < int(p.minISR.Load()) {
				return ErrNotEnoughReplicasAfterAppend
			}
			return nil
		}
		if err := p.syncErr.Load(); err != nil {
			return *err
		}
		l := p.leader()
		if l == nil || l.Epoch() != epoch {
			return ErrNotLeader
		}
		if len(l.ISR()) < int(p.minISR.Load()) {
			return ErrNotEnoughReplicasAfterAppend
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return ErrClosed
		}
	}
}

// requestFlush asks the flusher to make the tail durable. Requests coalesce:
// one sync covers every append made before it starts (group commit).
func (p *Partition) requestFlush() {
	select {
	case p.flushReq <- struct{}{}:
	default:
	}
	if !p.flushing.Load() && p.flushing.CompareAndSwap(false, true) {
		p.m.startFlusher(p) // none runs: an idle partition holds no goroutine (flusher.go)
	}
}

// flushLoop is the partition's flusher, owned by the Manager. It syncs on
// request and lets the high watermark follow what became durable.
func (p *Partition) flushLoop(ctx context.Context) {
	idle := time.NewTimer(flusherIdle)
	defer idle.Stop()
	busy := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-idle.C:
			if busy || !p.retireFlusher() {
				busy = false
				idle.Reset(flusherIdle)
				continue
			}
			return
		case <-p.flushReq:
			busy = true
			end := p.log.LogEndOffset()
			if end < p.log.LogStartOffset() || p.log.DurableOffset() >= end {
				p.updateHW()
				continue
			}
			err := p.log.WaitDurable(ctx, end)
			if err == nil {
				p.updateHW()
				continue
			}
			if ctx.Err() == nil {
				// The log refuses further writes after a failed sync; fail
				// the waiters now rather than letting them time out.
				p.syncErr.CompareAndSwap(nil, &err)
				p.mu.Lock()
				p.broadcastLocked()
				p.mu.Unlock()
			}
		}
	}
}
