package partition

import (
	"context"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// FollowerAtEnd answers a follower at the log end with what Read gives it, and leaves
// any other offset to Read.
func TestFollowerAtEnd(t *testing.T) {
	e := newEnv(t, nil)
	e.createTopic("t", 1, []int32{1, 2}, []int32{1, 2}, 0)
	p, err := e.m.Leader("t", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendLeader(segmenttest.Plain("a", "b"), AcksAll); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := p.FollowerAtEnd(0); ok {
		t.Fatal("answered a follower below the log end without a read")
	}
	// Broker 2 fetches at the end: the high watermark follows.
	if _, err := p.FollowerFetch(2, 2, -1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return p.HighWatermark() == 2 })
	res, err := p.Read(context.Background(), 2, ReadOptions{MaxBytes: 1 << 20, Replica: 2})
	if err != nil {
		t.Fatal(err)
	}
	res.Records.Release()
	hw, lso, start, ok := p.FollowerAtEnd(2)
	if !ok || res.Records.Len != 0 || hw != res.HighWatermark || lso != res.LastStable || start != res.LogStart || hw != 2 {
		t.Fatalf("FollowerAtEnd(2) = %d, %d, %d, %v; Read gives %+v", hw, lso, start, ok, res)
	}
}
