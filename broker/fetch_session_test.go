package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

// KIP-227 sessions: epoch 0 opens one (with a session id, it replaces that
// one), the next epochs are incremental, -1 closes; what is not known gets
// FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH.
func TestFetchSessions(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("fs", 1, nil)
	br := b.client().Broker(1)
	id := b.srv.parts.Get("fs", 0).TopicID()
	fetch := func(session, epoch int32, withPartition bool) *kmsg.FetchResponse {
		t.Helper()
		return sessionFetch(t, br, "fs", id, session, epoch, withPartition, 10)
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

// A session watches its partitions for its lifetime: an incremental fetch
// parked on it wakes when a record arrives, and closing, replacing or
// losing the session (its connection) drops the registrations.
func TestFetchSessionWatches(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("fw", 1, nil)
	cl := b.client()
	br := cl.Broker(1)
	p := b.srv.parts.Get("fw", 0)
	fetch := func(id, epoch int32, withPartition bool, wait int32) *kmsg.FetchResponse {
		t.Helper()
		r := sessionFetch(t, br, "fw", p.TopicID(), id, epoch, withPartition, wait)
		if r.ErrorCode != 0 {
			t.Fatalf("fetch (session %d, epoch %d): error %d", id, epoch, r.ErrorCode)
		}
		return r
	}
	s := fetch(0, 0, true, 0)
	if n := p.Watching(); n != 1 {
		t.Fatalf("%d registrations with one session open, want 1", n)
	}
	pc := b.client()
	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := pc.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "fw", Value: []byte("woken")}).FirstErr(); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	r := fetch(s.SessionID, 1, false, 15_000)
	if took := time.Since(start); took > 10*time.Second || len(r.Topics) != 1 || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("parked incremental fetch returned after %v with %+v; want the record, woken by its append", took, r.Topics)
	}
	// Replacing the session moves the registration; closing drops it.
	s2 := fetch(s.SessionID, 0, true, 0)
	if n := p.Watching(); n != 1 {
		t.Fatalf("%d registrations after replacing the session, want 1", n)
	}
	fetch(s2.SessionID, -1, true, 0)
	if n := p.Watching(); n != 0 {
		t.Fatalf("%d registrations after closing the session, want 0", n)
	}
	// A session left open goes with its connection.
	fetch(0, 0, true, 0)
	cl.Close()
	waitFor(t, "the closed connection's session to unwatch", 10*time.Second, func() bool { return p.Watching() == 0 })
}

// sessionFetch sends a consumer's Fetch in session id at epoch, naming
// partition 0 of topic (from offset 0) when withPartition, with MinBytes 1
// and wait ms of MaxWaitMillis.
func sessionFetch(t *testing.T, br *kgo.Broker, topic string, topicID meta.TopicID, id, epoch int32, withPartition bool, wait int32) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes = 12, -1, wait, 1
	req.SessionID, req.SessionEpoch = id, epoch
	if withPartition {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID // kgo sends v13+, by id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := br.Request(ctxT(t, 20*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.FetchResponse)
}

// An incremental follower fetch answers a partition at its log end without a
// read, and leaves it out only while its high watermark and log start are as
// the follower was last told; a full fetch lists it whatever it was told.
func TestFollowerFetchIdlePartition(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("idle", 1, nil)
	p := b.srv.parts.Get("idle", 0)
	hw, start := p.HighWatermark(), p.LogStart()
	for _, tc := range []struct {
		name   string
		full   bool
		sentHW int64
		listed bool
	}{
		{"incremental, nothing new", false, hw, false},
		{"incremental, a moved high watermark", false, hw - 1, true},
		{"full", true, hw, true},
	} {
		sp := &sessionPart{key: sessionKey{topic: "idle"}, fetchOffset: p.LogEnd(), sentHW: tc.sentHW, sentLogStart: start}
		f := &fetch{replicaID: 2, full: tc.full, req: kmsg.NewPtrFetchRequest(),
			targets: []fetchTarget{{sessionPart: *sp, sp: sp, name: "idle", p: p}}}
		ps := &fetchPass{rps: make([]kmsg.FetchResponseTopicPartition, 1), hasRecords: make([]bool, 1), bytes: make([]int64, 1)}
		f.readLocal(t.Context(), ps, 0)
		resp := kmsg.NewPtrFetchResponse()
		f.assemble(resp, ps)
		if got := len(resp.Topics) == 1; got != tc.listed {
			t.Errorf("%s: listed %v, want %v (%+v)", tc.name, got, tc.listed, resp.Topics)
			continue
		}
		if tc.listed {
			rp := resp.Topics[0].Partitions[0]
			if rp.HighWatermark != hw || rp.LogStartOffset != start || rp.ErrorCode != 0 || len(rp.RecordBatches) != 0 {
				t.Errorf("%s: entry %+v, want high watermark %d, log start %d", tc.name, rp, hw, start)
			}
		}
	}
}
