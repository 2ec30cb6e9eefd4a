package partition

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
)

// TestReadCommitted: an undecided transaction holds the last stable offset
// at its first offset; read_committed reads and ListOffsets stay below it
// while read_uncommitted reads go to the high watermark; an ABORT marker
// releases it and read_committed reads then carry the aborted transaction;
// a marker of an older producer epoch is refused.
func TestReadCommitted(t *testing.T) {
	e := newEnv(t, nil)
	e.createTopic("t", 1, []int32{1}, []int32{1}, 0)
	p, err := e.m.Leader("t", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	appendAll := func(b []byte) AppendResult {
		t.Helper()
		res, err := p.AppendLeader(b, AcksAll)
		if err == nil {
			err = p.Wait(ctx, res, AcksAll)
		}
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	read := func(iso Isolation) ReadResult {
		t.Helper()
		res, err := p.Read(ctx, 0, ReadOptions{MaxBytes: 1 << 20, Replica: -1, Isolation: iso})
		if err != nil {
			t.Fatal(err)
		}
		res.Records.Release()
		return res
	}
	latest := func(iso Isolation) int64 {
		t.Helper()
		o, err := p.ListOffset(ctx, TimestampLatest, iso)
		if err != nil {
			t.Fatal(err)
		}
		return o.Offset
	}

	appendAll(segmenttest.Plain("a", "b"))                           // 0-1
	txn := appendAll(segmenttest.Transactional(7, 0, 0, "t1", "t2")) // 2-3, undecided
	appendAll(segmenttest.Plain("c"))                                // 4
	if hw, lso := p.HighWatermark(), p.LastStable(); hw != 5 || lso != txn.FirstOffset {
		t.Fatalf("high watermark %d, last stable %d; want 5 and %d", hw, lso, txn.FirstOffset)
	}
	unc, com := read(ReadUncommitted), read(ReadCommitted)
	if unc.LastStable != 2 || com.LastStable != 2 || unc.HighWatermark != 5 {
		t.Fatalf("read results: uncommitted %+v, committed %+v", unc, com)
	}
	if com.Records.Len >= unc.Records.Len || com.Records.Len == 0 || len(com.Aborted) != 0 {
		t.Fatalf("read_committed read %d bytes (aborted %v), read_uncommitted %d: want fewer, not none",
			com.Records.Len, com.Aborted, unc.Records.Len)
	}
	if got, gotC := latest(ReadUncommitted), latest(ReadCommitted); got != 5 || gotC != 2 {
		t.Fatalf("ListOffsets latest: read_uncommitted %d, read_committed %d; want 5 and 2", got, gotC)
	}
	lsoLag := func(want float64) {
		t.Helper()
		reg := prometheus.NewRegistry()
		reg.MustRegister(lsoCollector{e.m})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 || mfs[0].GetMetric()[0].GetGauge().GetValue() != want {
			t.Fatalf("sediment_partition_last_stable_offset_lag: %v, want one partition at %v", mfs, want)
		}
	}
	lsoLag(3)

	if _, err := p.AppendMarker(7, -1, false, 0); !errors.Is(err, segment.ErrInvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v, want %v", err, segment.ErrInvalidProducerEpoch)
	}
	m, err := p.AppendMarker(7, 0, false, 0)
	if err == nil {
		err = p.Wait(ctx, m, AcksAll)
	}
	if err != nil {
		t.Fatal(err)
	}
	if lso := p.LastStable(); lso != m.LastOffset+1 || lso != p.HighWatermark() {
		t.Fatalf("after the ABORT at %d: last stable %d, high watermark %d", m.LastOffset, lso, p.HighWatermark())
	}
	com = read(ReadCommitted)
	if len(com.Aborted) != 1 || com.Aborted[0] != (segment.AbortedTxn{ProducerID: 7, FirstOffset: txn.FirstOffset}) {
		t.Fatalf("read_committed after the abort: aborted %+v, want producer 7 from %d", com.Aborted, txn.FirstOffset)
	}
	if unc := read(ReadUncommitted); unc.Aborted != nil {
		t.Fatalf("read_uncommitted carries aborted transactions %+v", unc.Aborted)
	}
	if gotC := latest(ReadCommitted); gotC != m.LastOffset+1 {
		t.Fatalf("ListOffsets latest read_committed %d after the abort, want %d", gotC, m.LastOffset+1)
	}
	lsoLag(0)
}
