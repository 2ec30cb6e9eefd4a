package broker

// Fetch, versions 4-16.
//
// Long polling: the response is held until MinBytes are ready, MaxWaitMillis
// pass, or the broker shuts down. Byte limits follow KIP-74: MaxBytes and
// each PartitionMaxBytes are honoured except that the first batch of the
// first partition with data is returned whole. Fetch sessions follow KIP-227
// (fetch_session.go). From v13 topics are named by id.
//
// Record bytes are not copied: each partition's Records carries a
// placeholder that the connection's writer replaces with the segment byte
// range, sent with sendfile.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// fetchTarget is one partition a fetch reads.
type fetchTarget struct {
	sessionPart
	name             string
	p                *partition // nil: errCode says why
	errCode          int16
	sp               *sessionPart // the session's entry, for recording what was sent
	lastFetchedEpoch int32
	// diverging is set when a follower's last fetched epoch ends before its
	// fetch offset on the leader (KIP-320): it must truncate first.
	diverging *kmsg.FetchResponseTopicPartitionDivergingEpoch
}

func handleFetch(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	s := c.srv
	byID := req.Version >= 13

	keyOf := func(topic string, id [16]byte, p int32) sessionKey {
		if byID {
			return sessionKey{id: meta.TopicID(id), part: p}
		}
		return sessionKey{topic: topic, part: p}
	}

	var (
		targets []fetchTarget
		session *fetchSession
		full    = true
	)
	fail := func(code int16) (*pending, error) {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = code
		return immediate(resp)
	}
	switch {
	case req.Version < 7 || (req.SessionID == 0 && req.SessionEpoch == -1):
		// Sessionless full fetch.
	case req.SessionID == 0 && req.SessionEpoch == 0:
		session = c.fetchSessions.create()
	case req.SessionEpoch == -1:
		c.fetchSessions.remove(req.SessionID)
	case req.SessionID == 0:
		return fail(kerr.InvalidFetchSessionEpoch.Code)
	default:
		session = c.fetchSessions.get(req.SessionID)
		if session == nil {
			return fail(kerr.FetchSessionIDNotFound.Code)
		}
		full = false
	}

	var (
		parts     []sessionPart
		lastEpoch = map[sessionKey]int32{}
	)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			k := keyOf(t.Topic, t.TopicID, p.Partition)
			parts = append(parts, sessionPart{
				key:         k,
				fetchOffset: p.FetchOffset,
				maxBytes:    p.PartitionMaxBytes,
				leaderEpoch: p.CurrentLeaderEpoch,
			})
			if req.Version >= 12 {
				lastEpoch[k] = p.LastFetchedEpoch
			}
		}
	}
	if session != nil {
		session.mu.Lock()
		if !full {
			if req.SessionEpoch != session.epoch {
				session.mu.Unlock()
				return fail(kerr.InvalidFetchSessionEpoch.Code)
			}
			for _, t := range req.ForgottenTopics {
				for _, p := range t.Partitions {
					session.forgetLocked(keyOf(t.Topic, t.TopicID, p))
				}
			}
		}
		session.epoch = nextEpoch(req.SessionEpoch)
		for _, sp := range parts {
			session.upsertLocked(sp)
		}
		for _, k := range session.order {
			sp := session.parts[k]
			targets = append(targets, fetchTarget{sessionPart: *sp, sp: sp})
		}
		session.mu.Unlock()
	} else {
		for _, sp := range parts {
			targets = append(targets, fetchTarget{sessionPart: sp})
		}
	}

	replicaID := req.ReplicaID
	if req.Version >= 15 {
		replicaID = req.ReplicaState.ID
	}
	// Resolve partitions now; reads happen in the completion.
	for i := range targets {
		t := &targets[i]
		t.lastFetchedEpoch = -1
		if e, ok := lastEpoch[t.key]; ok {
			t.lastFetchedEpoch = e
		}
		t.name = t.key.topic
		if byID {
			tp, ok := s.cache.TopicByID(t.key.id)
			if !ok {
				t.errCode = kerr.UnknownTopicID.Code
				continue
			}
			t.name = tp.Name
		}
		var code int16
		t.p, code = s.leaderForEpoch(t.name, t.key.part, t.leaderEpoch)
		if t.p == nil {
			t.errCode = code
			continue
		}
		l := t.p.leader.Load()
		if le := t.leaderEpoch; le >= 0 {
			switch cur := l.Epoch(); {
			case le < cur:
				t.errCode = kerr.FencedLeaderEpoch.Code
			case le > cur:
				t.errCode = kerr.UnknownLeaderEpoch.Code
			}
		}
		if replicaID < 0 || t.errCode != 0 {
			continue
		}
		if !l.IsReplica(replicaID) {
			t.errCode = kerr.NotLeaderForPartition.Code
			continue
		}
		if t.lastFetchedEpoch >= 0 {
			e, end := t.p.log.EndOffsetForEpoch(t.lastFetchedEpoch)
			if e != t.lastFetchedEpoch || end < t.fetchOffset {
				t.diverging = &kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: e, EndOffset: end}
				continue
			}
		}
		// Record where the follower stands now, so the high watermark
		// advances without waiting for this fetch's long poll.
		if l.UpdateFollower(replicaID, t.fetchOffset, t.p.log.LogEndOffset()) {
			t.p.updateHW()
		}
	}

	return &pending{complete: func(ctx context.Context) outgoing {
		return s.runFetch(ctx, c, req, targets, full, session, replicaID)
	}}, nil
}

// sentState is what a response tells the client of a session partition.
type sentState struct {
	sp       *sessionPart
	hw, logS int64
}

// runFetch reads the targets, waiting up to MaxWaitMillis for MinBytes.
func (s *Server) runFetch(ctx context.Context, c *conn, req *kmsg.FetchRequest, targets []fetchTarget, full bool, session *fetchSession, replicaID int32) outgoing {
	wake := make(chan struct{}, 1)
	for _, t := range targets {
		if t.p != nil {
			t.p.addWaiter(wake, replicaID >= 0)
		}
	}
	defer func() {
		for _, t := range targets {
			if t.p != nil {
				t.p.removeWaiter(wake)
			}
		}
	}()
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		out, sent, n, hasErr := s.fetchOnce(ctx, c, req, targets, full, session, replicaID)
		ready := n >= int64(req.MinBytes) || hasErr || wait <= 0
		if !ready {
			select {
			case <-wake:
				releaseAll(out.files)
				continue
			case <-timer.C:
			case <-ctx.Done():
			case <-s.stopping:
			}
			// Out of time: answer with whatever is there now.
			releaseAll(out.files)
			out, sent, n, _ = s.fetchOnce(ctx, c, req, targets, full, session, replicaID)
		}
		if session != nil {
			session.mu.Lock()
			for _, st := range sent {
				st.sp.sentHW, st.sp.sentLogStart = st.hw, st.logS
			}
			session.mu.Unlock()
		}
		s.metrics.bytesOut.Add(float64(n))
		return out
	}
}

func releaseAll(files []segment.Slice) {
	for _, f := range files {
		f.Release()
	}
}

// fetchOnce builds a response from what is readable now, and returns the
// per-partition state it reports so the session can remember it.
func (s *Server) fetchOnce(ctx context.Context, c *conn, req *kmsg.FetchRequest, targets []fetchTarget, full bool, session *fetchSession, replicaID int32) (outgoing, []sentState, int64, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if session != nil {
		resp.SessionID = session.id
	}
	var (
		out       = outgoing{resp: resp}
		sent      []sentState
		total     int64
		hasErr    bool
		remaining = int64(req.MaxBytes)
		minOne    = true
		topicAt   = map[sessionKey]int{} // topic (partition zeroed) -> index in resp.Topics
	)
	if remaining <= 0 {
		remaining = 0
	}
	for i := range targets {
		t := &targets[i]
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = t.key.part
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
		rp.PreferredReadReplica = -1
		// Empty, never null: Kafka always sends a records field and
		// librdkafka rejects a null one ("invalid MessageSetSize -1").
		rp.RecordBatches = []byte{}
		var records bool
		switch {
		case t.p == nil || t.errCode != 0:
			rp.ErrorCode = t.errCode
			hasErr = true
			if t.errCode == kerr.NotLeaderForPartition.Code {
				s.fetchLeaderHint(t.name, t.key.part, &rp.CurrentLeader, resp)
			}
		case t.diverging != nil:
			rp.DivergingEpoch = *t.diverging
			rp.HighWatermark, rp.LastStableOffset = t.p.hw.Load(), t.p.hw.Load()
			rp.LogStartOffset = t.p.log.LogStartOffset()
			hasErr = true // answer at once: the follower must truncate
		default:
			p := t.p
			hw := p.hw.Load()
			maxOff := hw
			leo := p.log.LogEndOffset()
			if replicaID >= 0 {
				maxOff = leo
				if l := p.leader.Load(); l != nil && l.UpdateFollower(replicaID, t.fetchOffset, leo) {
					p.updateHW()
					hw = p.hw.Load()
				}
			}
			rp.HighWatermark, rp.LastStableOffset = hw, hw
			rp.LogStartOffset = p.logStart()
			limit := max(min(int64(t.maxBytes), remaining), 0)
			if s.tierReader != nil && replicaID < 0 && t.fetchOffset < p.log.LogStartOffset() && t.fetchOffset >= rp.LogStartOffset {
				// Below the local log start: the history is in the tier.
				data, err := s.readRemote(ctx, p, t.fetchOffset, int(limit), minOne)
				switch {
				case err == nil && len(data) > 0:
					rp.RecordBatches = data
					total += int64(len(data))
					remaining = max(remaining-int64(len(data)), 0)
					minOne = false
					records = true
				case err == nil:
				case errors.Is(err, segment.ErrOffsetOutOfRange), errors.Is(err, tier.ErrNotExist):
					// Deleted by remote retention meanwhile.
					rp.ErrorCode = kerr.OffsetOutOfRange.Code
					hasErr = true
				default:
					c.log.Error("remote fetch failed", "partition", p.String(), "offset", t.fetchOffset, "err", err)
					rp.ErrorCode = kerr.KafkaStorageError.Code
					hasErr = true
				}
				break
			}
			sl, err := p.log.Read(t.fetchOffset, int(limit), maxOff, minOne)
			switch {
			case err == nil && sl.Len > 0:
				rp.RecordBatches = c.placeholder(len(out.files))
				out.files = append(out.files, sl)
				total += sl.Len
				remaining = max(remaining-sl.Len, 0)
				minOne = false
				records = true
			case err == nil:
				sl.Release()
			case errors.Is(err, segment.ErrOffsetOutOfRange):
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
				hasErr = true
			default:
				c.log.Error("fetch read failed", "partition", p.String(), "offset", t.fetchOffset, "err", err)
				rp.ErrorCode = kerr.KafkaStorageError.Code
				hasErr = true
			}
			if req.IsolationLevel == 1 {
				rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
		}
		if !full && t.sp != nil && !records && rp.ErrorCode == 0 &&
			rp.HighWatermark == t.sentHW && rp.LogStartOffset == t.sentLogStart {
			continue // incremental: nothing new for this partition
		}
		if t.sp != nil {
			sent = append(sent, sentState{sp: t.sp, hw: rp.HighWatermark, logS: rp.LogStartOffset})
		}
		tk := sessionKey{id: t.key.id, topic: t.key.topic}
		ti, ok := topicAt[tk]
		if !ok {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = t.key.topic
			rt.TopicID = t.key.id
			resp.Topics = append(resp.Topics, rt)
			ti = len(resp.Topics) - 1
			topicAt[tk] = ti
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, rp)
	}
	return out, sent, total, hasErr
}
