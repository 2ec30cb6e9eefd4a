package partition

import (
	"context"
	"fmt"

	"github.com/sedimentio/sediment/segment"
)

// Isolation is a fetch's isolation level (KIP-98).
type Isolation int8

const (
	ReadUncommitted Isolation = 0
	// ReadCommitted reads below the last stable offset (LastStable), and
	// with the records gets the aborted transactions among them.
	ReadCommitted Isolation = 1
)

// ReadOptions shape one partition's part of a fetch.
type ReadOptions struct {
	// MaxBytes is the byte budget; MinOne returns the first batch whole
	// even when it is larger (KIP-74).
	MaxBytes int
	MinOne   bool
	// Replica is the broker id of a follower fetching, -1 for a consumer. A
	// follower reads up to the log end, and its position may move the high
	// watermark; a consumer reads below the high watermark.
	Replica   int32
	Isolation Isolation
}

// ReadResult is what Read found. The offsets are filled also when Read
// returns an error other than ErrTierMetadata.
type ReadResult struct {
	// Records is a byte range of a segment file (Len 0: nothing to read
	// now). The caller must Release it.
	Records segment.Slice
	// InTier is set when the offset lies below the local log start and the
	// tier holds it: read it with ReadRemote.
	InTier                              bool
	HighWatermark, LastStable, LogStart int64
	// Aborted are, for a read_committed read of local records, the aborted
	// transactions whose offsets meet those records (the consumer drops
	// their batches); nil otherwise.
	Aborted []segment.AbortedTxn
}

// Read reads from offset as a fetch does. Errors: ErrTierMetadata (what the
// tier holds is unknown; retriable), ErrOffsetMovedToTier (a follower below
// the local log start; LogStart then is the local log start to restart at),
// segment.ErrOffsetOutOfRange, and the log's storage errors.
func (p *Partition) Read(ctx context.Context, offset int64, o ReadOptions) (ReadResult, error) {
	if err := p.ensureRemote(ctx); err != nil {
		return ReadResult{HighWatermark: -1, LastStable: -1, LogStart: -1}, fmt.Errorf("%w: %w", ErrTierMetadata, err)
	}
	hw := p.hw.Load()
	maxOff := hw
	leo := p.log.LogEndOffset()
	localStart := p.log.LogStartOffset()
	if o.Replica >= 0 {
		maxOff = leo
		if l := p.leader(); l != nil && l.UpdateFollower(o.Replica, offset, leo) {
			p.updateHW()
			hw = p.hw.Load()
		}
	}
	lso := min(p.log.FirstUnstableOffset(), hw)
	if o.Replica < 0 && o.Isolation == ReadCommitted {
		maxOff = lso
	}
	res := ReadResult{HighWatermark: hw, LastStable: lso, LogStart: p.LogStart()}
	if offset < localStart && offset >= res.LogStart {
		if o.Replica >= 0 {
			// KIP-405: a follower does not copy the tier; it restarts its
			// log at the leader's local log start.
			res.LogStart = localStart
			return res, ErrOffsetMovedToTier
		}
		if p.m.tierReader != nil {
			res.InTier = true
			return res, nil
		}
	}
	sl, err := p.log.Read(offset, o.MaxBytes, maxOff, o.MinOne)
	if err != nil {
		return res, err
	}
	res.Records = sl
	if sl.Len > 0 && o.Replica < 0 && o.Isolation == ReadCommitted {
		res.Aborted = p.log.AbortedTransactions(offset, maxOff)
	}
	return res, nil
}

// FollowerAtEnd answers, without reading, a follower whose fetch offset is
// this leader's log end: there is nothing to read, and it gets the offsets
// Read would give. ok is false when Read must run: the offset is not the log
// end, or the tier's bounds are not loaded yet. The follower's position is
// recorded by FollowerFetch when its fetch arrives, not here.
func (p *Partition) FollowerAtEnd(offset int64) (hw, lastStable, logStart int64, ok bool) {
	if offset != p.log.LogEndOffset() || (p.m.tierStore != nil && !p.remoteLoaded.Load()) {
		return 0, 0, 0, false
	}
	hw = p.hw.Load()
	return hw, min(p.log.FirstUnstableOffset(), hw), p.LogStart(), true
}

// EpochEnd is where a leader epoch ends (the start of the next one, or the
// log end for the latest).
type EpochEnd struct {
	Epoch     int32
	EndOffset int64
}

// FollowerFetch checks a follower's fetch before it is served. The replica
// must be one of the partition's (ErrNotLeader otherwise). If its last
// fetched epoch diverges from this leader's log (KIP-320), the returned
// EpochEnd tells it where to truncate, and nothing is recorded. Otherwise its
// position is recorded at once, so the high watermark advances without
// waiting for the fetch's long poll.
func (p *Partition) FollowerFetch(replica int32, fetchOffset int64, lastFetchedEpoch int32) (*EpochEnd, error) {
	l := p.leader()
	if l == nil || !l.IsReplica(replica) {
		return nil, ErrNotLeader
	}
	if lastFetchedEpoch >= 0 {
		e, end := p.endOffsetForEpoch(lastFetchedEpoch)
		if e != lastFetchedEpoch || end < fetchOffset {
			return &EpochEnd{Epoch: e, EndOffset: end}, nil
		}
	}
	if l.UpdateFollower(replica, fetchOffset, p.log.LogEndOffset()) {
		p.updateHW()
	}
	return nil, nil
}

// Special timestamps of ListOffsets.
const (
	TimestampLatest        = -1 // the high watermark
	TimestampEarliest      = -2 // the log start, in the tier when tiered
	TimestampMaxTimestamp  = -3 // the record with the largest timestamp (KIP-734)
	TimestampEarliestLocal = -4 // the local log start (KIP-405)
	TimestampLatestTiered  = -5 // the last offset in the tier (KIP-1005)
)

// Offset is a ListOffsets answer: -1 offset and timestamp when there is
// none.
type Offset struct {
	Offset, Timestamp int64
	LeaderEpoch       int32
}

// ListOffset answers ListOffsets for one timestamp (or special value) as the
// leader. The answer's LeaderEpoch is set also with an error. Errors:
// ErrTierMetadata, ErrOffsetNotAvailable (KIP-207), ErrInvalidTimestamp, and
// storage errors of a search by time. With iso ReadCommitted every answer
// stays below the last stable offset, and latest is that offset.
func (p *Partition) ListOffset(ctx context.Context, ts int64, iso Isolation) (Offset, error) {
	out := Offset{Offset: -1, Timestamp: -1, LeaderEpoch: p.leaderEpoch.Load()}
	if err := p.ensureRemote(ctx); err != nil {
		return out, fmt.Errorf("%w: %w", ErrTierMetadata, err)
	}
	hw := p.hw.Load()
	if iso == ReadCommitted {
		// Nothing at or above the last stable offset exists for
		// read_committed: latest is the LSO, a timestamp found there is none.
		hw = min(hw, p.log.FirstUnstableOffset())
	}
	if p.hw.Load() < p.epochStart.Load() && ts != TimestampEarliest && ts != TimestampEarliestLocal {
		// A new leader's high watermark has not caught up with its term
		// yet; answering now could go backwards.
		return out, ErrOffsetNotAvailable
	}
	switch {
	case ts == TimestampLatest:
		out.Offset = hw
	case ts == TimestampEarliest:
		out.Offset = p.LogStart()
	case ts == TimestampEarliestLocal:
		out.Offset = p.log.LogStartOffset()
	case ts == TimestampMaxTimestamp:
		if mts, off := p.log.MaxTimestamp(); off >= 0 && off < hw {
			out.Offset, out.Timestamp = off, mts
		}
	case ts == TimestampLatestTiered:
		if end := p.remoteEnd.Load(); end > 0 {
			out.Offset = end - 1
		}
	case ts < 0:
		return out, fmt.Errorf("%w: %d", ErrInvalidTimestamp, ts)
	default:
		off, fts, ok, err := p.offsetForTimestamp(ctx, ts)
		if err != nil {
			return out, err
		}
		if ok && off < hw {
			out.Offset, out.Timestamp = off, fts
		}
	}
	return out, nil
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as the leader: the largest
// epoch not above epoch that this log knows, and where it ends, over the
// whole log including the tier. The current term ends at the log end even
// before its first batch.
func (p *Partition) EndOffsetForEpoch(ctx context.Context, epoch int32) (int32, int64) {
	_ = p.ensureRemote(ctx) // on failure: the local epochs alone
	e, end := p.endOffsetForEpoch(epoch)
	if l := p.leader(); l != nil && epoch == l.Epoch() && e < epoch {
		return epoch, p.log.LogEndOffset()
	}
	return e, end
}

// DeleteRecordsBefore advances the log start offset to off (-1: the high
// watermark) and drops whole segments below it. It returns the new log start
// (the low watermark). Offsets beyond the high watermark: ErrOffsetOutOfRange.
func (p *Partition) DeleteRecordsBefore(off int64) (int64, error) {
	hw := p.hw.Load()
	if off == -1 {
		off = hw
	}
	if off < 0 || off > hw {
		return -1, fmt.Errorf("%w: %d is beyond the high watermark %d", ErrOffsetOutOfRange, off, hw)
	}
	return p.log.DeleteRecordsBefore(off)
}
