package repl

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeSession is the fake leader's side of one connection's KIP-227 fetch session.
type fakeSession struct {
	id, epoch int32
	parts     map[PartitionKey]*fakeSessionPart
	order     []PartitionKey
}

type fakeSessionPart struct {
	topic                 string
	offset                int64
	leaderEpoch, maxBytes int32
	sentHW, sentStart     int64 // what the follower was last told
}

// fakeFetch is one fetch as the fake leader received it.
type fakeFetch struct {
	id, epoch int32
	named     []PartitionKey
	forgotten []PartitionKey
	code      int16 // the top-level error answered
}

// sessionFetch serves a fetch in the connection's session: it applies the request to the
// session, answers the session's partitions as a full fetch would (with the long poll),
// and leaves out of an incremental response the partitions with no news.
func (fl *fakeLeader) sessionFetch(req *kmsg.FetchRequest, cs **fakeSession) kmsg.Response {
	keyOf := func(topic string, id [16]byte, part int32) PartitionKey {
		if req.Version < 13 {
			id = topicID(topic)
		}
		return PartitionKey{id, part}
	}
	rec := fakeFetch{id: req.SessionID, epoch: req.SessionEpoch}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			rec.named = append(rec.named, keyOf(t.Topic, t.TopicID, p.Partition))
		}
	}
	for _, t := range req.ForgottenTopics {
		for _, p := range t.Partitions {
			rec.forgotten = append(rec.forgotten, keyOf(t.Topic, t.TopicID, p))
		}
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	fl.mu.Lock()
	lose := fl.loseSession && req.SessionEpoch > 0
	if lose {
		fl.loseSession = false
	}
	s := *cs
	switch {
	case req.SessionEpoch == 0:
		fl.nextSession++
		s = &fakeSession{id: fl.nextSession, parts: make(map[PartitionKey]*fakeSessionPart)}
	case lose || s == nil || s.id != req.SessionID:
		s = nil
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
	case req.SessionEpoch != s.epoch:
		resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
	}
	rec.code = resp.ErrorCode
	fl.sessionFetches = append(fl.sessionFetches, rec)
	fl.mu.Unlock()
	*cs = s
	if resp.ErrorCode != 0 {
		return resp
	}
	s.epoch = req.SessionEpoch + 1
	for _, k := range rec.forgotten {
		delete(s.parts, k)
		s.order = slices.DeleteFunc(s.order, func(o PartitionKey) bool { return o == k })
	}
	lastEpoch := map[PartitionKey]int32{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			k := keyOf(t.Topic, t.TopicID, p.Partition)
			lastEpoch[k] = p.LastFetchedEpoch
			sp := s.parts[k]
			if sp == nil {
				sp = &fakeSessionPart{topic: t.Topic, sentHW: -2, sentStart: -2}
				s.parts[k] = sp
				s.order = append(s.order, k)
			}
			sp.offset, sp.leaderEpoch, sp.maxBytes = p.FetchOffset, p.CurrentLeaderEpoch, p.PartitionMaxBytes
		}
	}
	// The session's partitions as one full request, one topic each.
	whole := *req
	whole.Topics, whole.ForgottenTopics = nil, nil
	for _, k := range s.order {
		sp := s.parts[k]
		t := kmsg.NewFetchRequestTopic()
		t.Topic, t.TopicID = sp.topic, k.TopicID
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.CurrentLeaderEpoch, p.PartitionMaxBytes = k.Partition, sp.offset, sp.leaderEpoch, sp.maxBytes
		p.LastFetchedEpoch = -1
		if e, ok := lastEpoch[k]; ok {
			p.LastFetchedEpoch = e
		}
		t.Partitions = []kmsg.FetchRequestTopicPartition{p}
		whole.Topics = append(whole.Topics, t)
	}
	out := fl.fetch(&whole).(*kmsg.FetchResponse)
	out.SessionID = s.id
	kept := out.Topics[:0]
	for i, t := range out.Topics {
		p := t.Partitions[0]
		sp := s.parts[s.order[i]]
		if req.SessionEpoch > 0 && len(p.RecordBatches) == 0 && p.ErrorCode == 0 && p.DivergingEpoch.Epoch < 0 &&
			p.HighWatermark == sp.sentHW && p.LogStartOffset == sp.sentStart {
			continue
		}
		sp.sentHW, sp.sentStart = p.HighWatermark, p.LogStartOffset
		kept = append(kept, t)
	}
	out.Topics = kept
	return out
}

// fetchesSince returns the fetches the fake leader received from the n-th on.
func (fl *fakeLeader) fetchesSince(n int) []fakeFetch {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return slices.Clone(fl.sessionFetches[n:])
}

// A follower fetches in a KIP-227 session: after the full fetch that opens it, a fetch
// names only the partitions whose position moved, learns a high watermark that moved
// without new records from an incremental response, forgets partitions it no longer
// follows, and recovers from a lost session with a full fetch on the same connection.
func TestFetchSession(t *testing.T) {
	for _, fetchMax := range []int16{12, 16} {
		t.Run(fmt.Sprintf("fetch v%d", fetchMax), func(t *testing.T) {
			fl := newFakeLeader(t)
			fl.fetchMax = fetchMax
			fl.sessions = true
			c := newCluster()
			c.set(1, fl.Addr())
			m := newTestManager(t, testConfig(), c)
			var fs []*testReplica
			for part := range int32(3) {
				p := fl.addPartition("orders", part, 5, 0)
				fl.do(func() { p.appendN(20, 2, "x") })
				fs = append(fs, newFollower(t, p))
			}
			for _, f := range fs {
				m.Follow(f.replica(1, 5))
			}
			allCaughtUp := func() bool {
				for _, f := range fs {
					if !f.caughtUp(t, fl) {
						return false
					}
				}
				return true
			}
			waitFor(t, 10*time.Second, "catch-up", allCaughtUp)

			// New records on partition 0 only: every fetch is incremental and names
			// partition 0 alone. Its high watermark reaches the log end only through
			// the response to a fetch at the log end, which has no records: the news
			// is the high watermark alone.
			mark := len(fl.fetchesSince(0))
			fl.do(func() { fs[0].p.appendN(3, 2, "more") })
			waitFor(t, 10*time.Second, "partition 0 caught up", func() bool { return fs[0].caughtUp(t, fl) })
			named0 := 0
			for _, ff := range fl.fetchesSince(mark) {
				if ff.epoch <= 0 || ff.code != 0 {
					t.Fatalf("fetch %+v after the session opened, want an incremental one", ff)
				}
				for _, k := range ff.named {
					if k != fs[0].key {
						t.Fatalf("an incremental fetch named %v, which did not move", k)
					}
					named0++
				}
			}
			if named0 == 0 {
				t.Fatal("partition 0 was named in no fetch after its new records")
			}

			// The leader loses the session: the follower opens a new one with a full
			// fetch on the same connection and goes on replicating.
			mark = len(fl.fetchesSince(0))
			fl.do(func() { fl.loseSession = true })
			fl.do(func() { fs[1].p.appendN(2, 1, "after") })
			waitFor(t, 10*time.Second, "partition 1 caught up", func() bool { return fs[1].caughtUp(t, fl) })
			var lost, reopened bool
			for _, ff := range fl.fetchesSince(mark) {
				switch {
				case ff.code == kerr.FetchSessionIDNotFound.Code:
					lost = true
				case lost && ff.epoch == 0:
					reopened = len(ff.named) == len(fs)
				}
			}
			if !lost || !reopened {
				t.Fatalf("session lost %v, reopened by a full fetch of every partition %v", lost, reopened)
			}
			if n := fl.acceptedConns(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}

			// Unfollowing partition 2 forgets it in the session.
			mark = len(fl.fetchesSince(0))
			m.Unfollow(fs[2].p.id, fs[2].p.part)
			fl.do(func() { fs[0].p.appendN(1, 1, "last") }) // wake the long poll
			waitFor(t, 10*time.Second, "partition 2 forgotten", func() bool {
				for _, ff := range fl.fetchesSince(mark) {
					if slices.Contains(ff.forgotten, fs[2].key) {
						return true
					}
				}
				return false
			})
			waitFor(t, 10*time.Second, "partition 0 caught up", func() bool { return fs[0].caughtUp(t, fl) })
		})
	}
}
