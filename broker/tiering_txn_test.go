package broker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/tier/file"
)

// TestAbortedTransactionsFromTier: a transaction aborted in a topic whose
// history is only in the tier comes back to a read_committed Fetch from the
// uploaded .txnindex objects: fetching from offset 0 names the producer and
// the transaction's first offset although its ABORT marker lies segments
// later, a fetch of a segment between its first offset and its marker still
// names it, one past the marker does not, and read_uncommitted fetches name
// none. A transaction whose marker is still in the local active segment is
// found from a fetch served by the tier too (the search goes on locally).
func TestAbortedTransactionsFromTier(t *testing.T) {
	b := tieredNode(t, t.TempDir(), fileTier(t), 10*time.Second)
	segBytes, zero := "2048", "0"
	b.createTopic("txn", 1, map[string]*string{"segment.bytes": &segBytes, "local.retention.bytes": &zero})
	p := b.srv.parts.Get("txn", 0)
	ctx := ctxT(t, 60*time.Second)
	appendAll := func(batch []byte) partition.AppendResult {
		t.Helper()
		return committed(t, ctx, p, func() (partition.AppendResult, error) { return p.AppendLeader(batch, partition.AcksAll) })
	}
	marker := func(pid int64, commit bool) partition.AppendResult {
		t.Helper()
		return committed(t, ctx, p, func() (partition.AppendResult, error) { return p.AppendMarker(pid, 0, commit, 0) })
	}
	v := func(s string) string { return s + strings.Repeat("x", 300) }
	// Producer 7's transaction starts at offset 0 and is aborted several
	// segments later; producer 8's, in between, commits.
	first := appendAll(segmenttest.Transactional(7, 0, 0, v("a"), v("b"))).FirstOffset
	for i := range 8 {
		appendAll(segmenttest.Plain(v("plain")))
		if i == 3 {
			appendAll(segmenttest.Transactional(8, 0, 0, v("c")))
			marker(8, true)
		}
	}
	appendAll(segmenttest.Transactional(7, 0, 2, v("d")))
	abort := marker(7, false).LastOffset
	for range 12 {
		appendAll(segmenttest.Plain(v("after")))
	}
	if first != 0 {
		t.Fatalf("the transaction starts at %d", first)
	}
	var abortSeg, segs int
	for _, s := range p.Log().Segments() {
		if s.Sealed {
			segs++
		}
		if s.HasTxnIndex {
			abortSeg++
			if s.BaseOffset == 0 {
				t.Fatalf("the ABORT marker is in the first segment: nothing to walk")
			}
		}
	}
	if abortSeg != 1 || segs < 4 {
		t.Fatalf("%d sealed segments, %d with a .txnindex; want several and one", segs, abortSeg)
	}
	waitTiered(t, b, "txn", 1)

	cl := b.client()
	fetch := func(offset int64, iso int8) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 5000
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.IsolationLevel = iso
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "txn"
		rt.TopicID = topicID(t, b, "txn")
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset = offset
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Topics[0].Partitions[0]
		if got.ErrorCode != 0 || len(got.RecordBatches) == 0 {
			t.Fatalf("fetch from %d (isolation %d): %v, %d bytes", offset, iso, kerr.ErrorForCode(got.ErrorCode), len(got.RecordBatches))
		}
		return got
	}
	// want checks that rp names the aborted transaction of pid from first,
	// or none when pid is 0.
	want := func(rp kmsg.FetchResponseTopicPartition, pid, first int64, what string) {
		t.Helper()
		if pid == 0 {
			if len(rp.AbortedTransactions) != 0 {
				t.Fatalf("%s: aborted transactions %+v, want none", what, rp.AbortedTransactions)
			}
			return
		}
		if len(rp.AbortedTransactions) != 1 || rp.AbortedTransactions[0].ProducerID != pid || rp.AbortedTransactions[0].FirstOffset != first {
			t.Fatalf("%s: aborted transactions %+v, want producer %d from %d", what, rp.AbortedTransactions, pid, first)
		}
	}

	// Each fetch is served from one remote segment; walk them all.
	for off := int64(0); off < p.HighWatermark(); {
		if off >= p.Log().LogStartOffset() {
			break // the active segment, local
		}
		rc := fetch(off, 1)
		end := batchesOf(t, rc.RecordBatches, off)
		if off <= abort {
			want(rc, 7, first, "read_committed from "+strconv.FormatInt(off, 10))
		} else {
			want(rc, 0, 0, "read_committed from "+strconv.FormatInt(off, 10))
		}
		want(fetch(off, 0), 0, 0, "read_uncommitted from "+strconv.FormatInt(off, 10))
		if off == 0 && end > abort {
			t.Fatalf("the first fetch returned offsets up to %d, past the marker at %d: not served by one segment", end, abort)
		}
		off = end
	}

	// Producer 9's transaction starts in a segment that moves to the tier,
	// and its ABORT marker stays in the local active segment: the search goes
	// on from the remote segments into the local log's index.
	first9 := appendAll(segmenttest.Transactional(9, 0, 0, v("e"))).FirstOffset
	for range 10 {
		appendAll(segmenttest.Plain(v("plain")))
	}
	abort9 := marker(9, false).LastOffset
	waitTiered(t, b, "txn", 1)
	if local := p.Log().LogStartOffset(); local <= first9 || local > abort9 {
		t.Fatalf("local log from %d: want the transaction [%d, %d] to start in the tier and end locally", local, first9, abort9)
	}
	want(fetch(first9, 1), 9, first9, "read_committed from the tier, marker local")
	want(fetch(first9, 0), 0, 0, "read_uncommitted from the tier, marker local")
}

// TestUploadsStopAtLastStableOffset: a sealed segment holding part of a
// transaction still open is not uploaded (its data may yet be aborted, and
// its .txnindex is not final), though a topic beside it moves its history
// to the tier meanwhile; once the transaction ends, the segments below the
// new last stable offset go up, and the uploaded end never passes it.
func TestUploadsStopAtLastStableOffset(t *testing.T) {
	b := tieredNode(t, t.TempDir(), fileTier(t), 10*time.Second)
	segBytes, zero := "2048", "0"
	cfg := map[string]*string{"segment.bytes": &segBytes, "local.retention.bytes": &zero}
	b.createTopic("open", 1, cfg)
	b.createTopic("beside", 1, cfg)
	p := b.srv.parts.Get("open", 0)
	ctx := ctxT(t, 60*time.Second)
	appendAll := func(batch []byte) partition.AppendResult {
		t.Helper()
		return committed(t, ctx, p, func() (partition.AppendResult, error) { return p.AppendLeader(batch, partition.AcksAll) })
	}
	v := func(s string) string { return s + strings.Repeat("x", 300) }
	// Plain data, then a transaction opened at offset 8, then enough
	// plain data after it to seal several segments.
	for range 8 {
		appendAll(segmenttest.Plain(v("before")))
	}
	open := appendAll(segmenttest.Transactional(7, 0, 0, v("txn"))).FirstOffset
	for range 20 {
		appendAll(segmenttest.Plain(v("after")))
	}
	if p.LastStable() != open {
		t.Fatalf("last stable offset %d, want the transaction's first offset %d", p.LastStable(), open)
	}
	produceN(t, b, "beside", 1, 60, nil)
	waitTiered(t, b, "beside", 1)
	// The uploader of "open" had as many rounds as the one beside it.
	if end := p.RemoteEnd(); end > open {
		t.Fatalf("uploaded up to offset %d, past the last stable offset %d", end, open)
	}
	for _, s := range p.Log().Segments() {
		if s.Sealed && s.BaseOffset <= open && open < s.NextOffset && p.Log().LogStartOffset() > s.BaseOffset {
			t.Fatalf("the segment holding the open transaction [%d, %d) left local disk", s.BaseOffset, s.NextOffset)
		}
	}

	committed(t, ctx, p, func() (partition.AppendResult, error) { return p.AppendMarker(7, 0, true, 0) })
	waitTiered(t, b, "open", 1)
	if end := p.RemoteEnd(); end <= open || end > p.LastStable() {
		t.Fatalf("after the commit: uploaded end %d, want past %d and at most the last stable offset %d", end, open, p.LastStable())
	}
}

// committed runs an append on p and waits until it is committed, failing
// the test on an error.
func committed(t *testing.T, ctx context.Context, p *partition.Partition, write func() (partition.AppendResult, error)) partition.AppendResult {
	t.Helper()
	res, err := write()
	if err == nil {
		err = p.Wait(ctx, res, partition.AcksAll)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// fileTier is a file object store in a temporary directory.
func fileTier(t *testing.T) *file.Store {
	t.Helper()
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}
