package broker

import (
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
