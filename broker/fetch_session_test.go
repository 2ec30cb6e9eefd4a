package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-227 sessions: epoch 0 opens one (with a session id, it replaces that
// one), the next epochs are incremental, -1 closes; what is not known gets
// FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH.
func TestFetchSessions(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("fs", 1, nil)
	br := b.client().Broker(1)
	fetch := func(id, epoch int32, withPartition bool) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxWaitMillis = 12, -1, 10
		req.SessionID, req.SessionEpoch = id, epoch
		if withPartition {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "fs"
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := br.Request(ctxT(t, 10*time.Second), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.FetchResponse)
	}
	first := fetch(0, 0, true)
	if first.ErrorCode != 0 || first.SessionID == 0 || len(first.Topics) != 1 {
		t.Fatalf("opening a session: %+v", first)
	}
	if r := fetch(first.SessionID, 1, false); r.ErrorCode != 0 || r.SessionID != first.SessionID {
		t.Fatalf("incremental fetch: %+v", r)
	}
	// Epoch 0 with the session's id: a new full session replaces it.
	second := fetch(first.SessionID, 0, true)
	if second.ErrorCode != 0 || second.SessionID == 0 || second.SessionID == first.SessionID || len(second.Topics) != 1 {
		t.Fatalf("reopening: %+v", second)
	}
	if r := fetch(first.SessionID, 2, false); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("the replaced session: error %d", r.ErrorCode)
	}
	if r := fetch(second.SessionID, 5, false); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("a wrong epoch: error %d", r.ErrorCode)
	}
	if r := fetch(second.SessionID, -1, true); r.ErrorCode != 0 || r.SessionID != 0 {
		t.Fatalf("closing: %+v", r)
	}
	if r := fetch(second.SessionID, 1, false); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("the closed session: error %d", r.ErrorCode)
	}
}

// An incremental response leaves out only the session partitions with no news: records,
// an error, a diverging epoch (KIP-320: a follower that named its last fetched epoch must
// hear it), a moved high watermark or log start each keep a partition in it. A full
// response lists them all.
func TestAssembleIncremental(t *testing.T) {
	f := &fetch{}
	ps := &fetchPass{}
	add := func(part int32, records bool, mod func(rp *kmsg.FetchResponseTopicPartition)) {
		sp := &sessionPart{key: sessionKey{topic: "t", part: part}, sentHW: 10, sentLogStart: 0}
		f.targets = append(f.targets, fetchTarget{sessionPart: *sp, sp: sp, name: "t"})
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.HighWatermark, rp.LogStartOffset = part, 10, 0
		mod(&rp)
		ps.rps = append(ps.rps, rp)
		ps.hasRecords = append(ps.hasRecords, records)
	}
	add(0, false, func(*kmsg.FetchResponseTopicPartition) {}) // nothing new
	add(1, false, func(rp *kmsg.FetchResponseTopicPartition) {
		rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset = 3, 7
	})
	add(2, false, func(rp *kmsg.FetchResponseTopicPartition) { rp.HighWatermark = 11 })
	add(3, false, func(rp *kmsg.FetchResponseTopicPartition) { rp.LogStartOffset = 5 })
	add(4, false, func(rp *kmsg.FetchResponseTopicPartition) { rp.ErrorCode = kerr.NotLeaderForPartition.Code })
	add(5, true, func(*kmsg.FetchResponseTopicPartition) {})
	listed := func(resp *kmsg.FetchResponse) []int32 {
		var got []int32
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got = append(got, rp.Partition)
			}
		}
		return got
	}
	resp := kmsg.NewPtrFetchResponse()
	sent := f.assemble(resp, ps)
	if got := listed(resp); !slices.Equal(got, []int32{1, 2, 3, 4, 5}) {
		t.Fatalf("incremental response lists partitions %v, want 1-5", got)
	}
	if len(sent) != 5 || sent[1].hw != 11 || sent[2].logS != 5 {
		t.Fatalf("recorded as sent: %+v", sent)
	}
	f.full = true
	resp = kmsg.NewPtrFetchResponse()
	f.assemble(resp, ps)
	if got := listed(resp); len(got) != 6 {
		t.Fatalf("full response lists partitions %v, want all 6", got)
	}
}
