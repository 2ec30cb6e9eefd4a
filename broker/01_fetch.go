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
	"sync"
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
			e, end := t.p.endOffsetForEpoch(t.lastFetchedEpoch)
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
		out, sent, n, now := s.fetchOnce(ctx, c, req, targets, full, session, replicaID)
		ready := n >= int64(req.MinBytes) || now || wait <= 0
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

// fetchOnce builds a response from what is readable now, and returns the
// per-partition state it reports so the session can remember it.
//
// Partitions are read in request order against one byte budget (KIP-74).
// Reads below the local log start go to the tier, all of them at once: each
// such read is given the budget left when its turn comes, and that budget is
// reserved whole, so the response stays within MaxBytes whatever the remote
// reads return. A remote read that takes longer than remote.fetch.max.wait.ms
// leaves its partition empty in this response (its GETs go on filling the
// chunk cache for the next fetch), as in Kafka.
func (s *Server) fetchOnce(ctx context.Context, c *conn, req *kmsg.FetchRequest, targets []fetchTarget, full bool, session *fetchSession, replicaID int32) (out outgoing, sent []sentState, total int64, ready bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if session != nil {
		resp.SessionID = session.id
	}
	out = outgoing{resp: resp}
	var (
		remaining  = max(int64(req.MaxBytes), 0)
		minOne     = true
		rps        = make([]kmsg.FetchResponseTopicPartition, len(targets))
		hasRecords = make([]bool, len(targets))
		remote     []remoteRead
	)
	for i := range targets {
		t := &targets[i]
		rp := &rps[i]
		*rp = kmsg.NewFetchResponseTopicPartition()
		rp.Partition = t.key.part
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
		rp.PreferredReadReplica = -1
		// Empty, never null: Kafka always sends a records field and
		// librdkafka rejects a null one ("invalid MessageSetSize -1").
		rp.RecordBatches = []byte{}
		switch {
		case t.p == nil || t.errCode != 0:
			rp.ErrorCode = t.errCode
			ready = true
			if t.errCode == kerr.NotLeaderForPartition.Code {
				s.fetchLeaderHint(t.name, t.key.part, &rp.CurrentLeader, resp)
			}
			continue
		case t.diverging != nil:
			rp.DivergingEpoch = *t.diverging
			rp.HighWatermark, rp.LastStableOffset = t.p.hw.Load(), t.p.hw.Load()
			rp.LogStartOffset = t.p.log.LogStartOffset()
			ready = true // answer at once: the follower must truncate
			continue
		}
		p := t.p
		if err := s.ensureRemote(ctx, p); err != nil {
			// Not knowing what the tier holds, answering would hide the
			// history (OFFSET_OUT_OF_RANGE): retriable instead.
			c.log.Warn("reading remote segment metadata failed", "partition", p.String(), "err", err)
			rp.ErrorCode = kerr.LeaderNotAvailable.Code
			ready = true
			continue
		}
		hw := p.hw.Load()
		maxOff := hw
		leo := p.log.LogEndOffset()
		localStart := p.log.LogStartOffset()
		if replicaID >= 0 {
			maxOff = leo
			if l := p.leader.Load(); l != nil && l.UpdateFollower(replicaID, t.fetchOffset, leo) {
				p.updateHW()
				hw = p.hw.Load()
			}
		}
		rp.HighWatermark, rp.LastStableOffset = hw, hw
		rp.LogStartOffset = p.logStart()
		if req.IsolationLevel == 1 {
			rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		limit := max(min(int64(t.maxBytes), remaining), 0)
		if t.fetchOffset < localStart && t.fetchOffset >= rp.LogStartOffset {
			if replicaID >= 0 {
				// KIP-405: a follower does not copy the tier; it restarts its
				// log at the leader's local log start.
				rp.ErrorCode = kerr.OffsetMovedToTieredStorage.Code
				rp.LogStartOffset = localStart
				ready = true
				continue
			}
			if s.tierReader != nil {
				// Below the local log start: the history is in the tier.
				if limit > 0 || minOne {
					remote = append(remote, remoteRead{i: i, offset: t.fetchOffset, limit: int(limit), minOne: minOne})
					remaining -= limit
					minOne = false
				}
				continue
			}
		}
		sl, err := p.log.Read(t.fetchOffset, int(limit), maxOff, minOne)
		switch {
		case err == nil && sl.Len > 0:
			rp.RecordBatches = c.placeholder(len(out.files))
			out.files = append(out.files, records{file: sl})
			total += sl.Len
			remaining = max(remaining-sl.Len, 0)
			minOne = false
			hasRecords[i] = true
		case err == nil:
			sl.Release()
		case errors.Is(err, segment.ErrOffsetOutOfRange):
			rp.ErrorCode = kerr.OffsetOutOfRange.Code
			ready = true
		default:
			c.log.Error("fetch read failed", "partition", p.String(), "offset", t.fetchOffset, "err", err)
			rp.ErrorCode = kerr.KafkaStorageError.Code
			ready = true
		}
	}
	if len(remote) > 0 {
		s.readRemoteAll(ctx, targets, remote)
		for _, r := range remote {
			rp := &rps[r.i]
			switch err := r.err; {
			case err == nil && len(r.data) > 0:
				// Written as they are, not copied into the encoded response.
				rp.RecordBatches = c.placeholder(len(out.files))
				out.files = append(out.files, records{mem: r.data})
				total += int64(len(r.data))
				hasRecords[r.i] = true
			case err == nil:
			case ctx.Err() != nil:
				ready = true // the connection or the broker is going away
			case errors.Is(err, context.DeadlineExceeded):
				// remote.fetch.max.wait.ms passed: empty now, answer at once.
				s.metrics.remoteTimeouts.Inc()
				ready = true
			case errors.Is(err, segment.ErrOffsetOutOfRange), errors.Is(err, tier.ErrNotExist):
				// Deleted by remote retention meanwhile.
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
				ready = true
			default:
				c.log.Error("remote fetch failed", "partition", targets[r.i].p.String(), "offset", r.offset, "err", err)
				rp.ErrorCode = kerr.KafkaStorageError.Code
				ready = true
			}
		}
	}

	topicAt := map[sessionKey]int{} // topic (partition zeroed) -> index in resp.Topics
	for i := range targets {
		t, rp := &targets[i], rps[i]
		if !full && t.sp != nil && !hasRecords[i] && rp.ErrorCode == 0 &&
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
	return out, sent, total, ready
}

// remoteRead is one partition of a fetch read from the tier.
type remoteRead struct {
	i      int // index in the targets
	offset int64
	limit  int
	minOne bool
	data   []byte
	err    error
}

// readRemoteAll runs the remote reads concurrently (the tier reader bounds
// the GETs in flight) and waits for them, at most remote.fetch.max.wait.ms.
func (s *Server) readRemoteAll(ctx context.Context, targets []fetchTarget, reads []remoteRead) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RemoteFetchMaxWait)
	defer cancel()
	if len(reads) == 1 {
		r := &reads[0]
		r.data, r.err = s.readRemote(ctx, targets[r.i].p, r.offset, r.limit, r.minOne)
		return
	}
	var wg sync.WaitGroup
	for k := range reads {
		r := &reads[k]
		wg.Go(func() {
			r.data, r.err = s.readRemote(ctx, targets[r.i].p, r.offset, r.limit, r.minOne)
		})
	}
	wg.Wait()
}
