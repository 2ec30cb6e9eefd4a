package txn

import (
	"context"

	"github.com/sedimentio/sediment/broker/partition"
)

// Log is one partition of __transaction_state as its coordinator uses it
// during one leadership term of this broker. The partition layer's
// Partition is adapted to it by Elected; tests use an in-memory log.
type Log interface {
	// Append appends one record batch with acks=all semantics (refused while
	// the ISR is below min.insync.replicas) in this term, and returns the
	// offset after it. It does not wait.
	Append(batch []byte) (next int64, err error)
	// WaitCommitted blocks until next is below the high watermark in this
	// term; it fails if the term ends first.
	WaitCommitted(ctx context.Context, next int64) error
	// Bounds are the log start and end offsets.
	Bounds() (start, end int64)
	// Read returns the whole batches from offset from on, at most maxBytes
	// (at least one batch), below end; empty where only a gap is left.
	Read(from int64, maxBytes int, end int64) ([]byte, error)
	String() string
}

// partitionLog is a Partition led by this broker in epoch.
type partitionLog struct {
	p     *partition.Partition
	epoch int32
}

var _ Log = partitionLog{}

func (l partitionLog) Append(batch []byte) (int64, error) {
	res, err := l.p.AppendLeader(batch, partition.AcksAll)
	if err != nil {
		return 0, err
	}
	if res.LeaderEpoch != l.epoch {
		return 0, partition.ErrNotLeader // the batch landed in a later term, which has its own coordinator
	}
	return res.LastOffset + 1, nil
}

func (l partitionLog) WaitCommitted(ctx context.Context, next int64) error {
	return l.p.WaitCommitted(ctx, next, l.epoch)
}

func (l partitionLog) Bounds() (int64, int64) {
	log := l.p.Log()
	return log.LogStartOffset(), log.LogEndOffset()
}

func (l partitionLog) Read(from int64, maxBytes int, end int64) ([]byte, error) {
	sl, err := l.p.Log().Read(from, maxBytes, end, true)
	if err != nil {
		return nil, err
	}
	defer sl.Release()
	return sl.ReadAll()
}

func (l partitionLog) String() string { return l.p.String() }
