package broker

// Fetch, versions 4-16.
//
// Long polling: the response is held until MinBytes are ready, MaxWaitMillis
// pass, or the broker shuts down. Byte limits follow KIP-74: MaxBytes and
// each PartitionMaxBytes are honoured except that the first batch of the
// first partition with data is returned whole. Fetch sessions follow KIP-227
// (fetch_session.go). From v13 topics are named by id. Followers (a replica
// id) read up to the log end, and their positions move the high watermark.
//
// Record bytes are not copied: each partition's Records carries a
// placeholder that the connection's writer replaces with the segment byte
// range, sent with sendfile.
//
// Partitions are read in request order against one byte budget. Reads below
// the local log start go to the tier, all of them at once: each such read is
// given the budget left when its turn comes, and that budget is reserved
// whole, so the response stays within MaxBytes whatever the remote reads
// return. A remote read that takes longer than remote.fetch.max.wait.ms
// leaves its partition empty in this response (its GETs go on filling the
// chunk cache for the next fetch), as in Kafka.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
)

// fetchTarget is one partition a fetch reads.
type fetchTarget struct {
	sessionPart
	name             string
	p                *partition.Partition // nil: errCode says why
	errCode          int16
	sp               *sessionPart // the session's entry, for recording what was sent
	lastFetchedEpoch int32
	named            bool // in the request (not only in its session)
	// diverging is set when a follower's last fetched epoch ends before its
	// fetch offset on the leader (KIP-320): it must truncate first.
	diverging *partition.EpochEnd
}

// fetch is one Fetch request being answered.
type fetch struct {
	c         *conn
	req       *kmsg.FetchRequest
	targets   []fetchTarget
	full      bool
	session   *fetchSession
	replicaID int32
}

func handleFetch(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	targets, session, full, code := c.fetchTargets(req)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = code
		return immediate(resp)
	}
	f := &fetch{c: c, req: req, targets: targets, full: full, session: session, replicaID: req.ReplicaID}
	if req.Version >= 15 {
		f.replicaID = req.ReplicaState.ID
	}
	// Resolve partitions now, in arrival order; reads happen in the
	// completion. Consumers need READ on each topic, followers CLUSTER_ACTION.
	// The partitions the request names go first: a follower's new positions
	// move high watermarks, completing acks=all produces, before the session's
	// unchanged partitions are visited.
	allowed := c.replicaCheck(kmsg.ACLOperationRead, f.replicaID, kerr.TopicAuthorizationFailed.Code)
	for _, named := range [2]bool{true, false} {
		for i := range f.targets {
			if f.targets[i].named == named {
				c.srv.resolveFetchTarget(&f.targets[i], req.Version >= 13, f.replicaID, allowed)
			}
		}
	}
	if session != nil {
		session.watch(f.targets, f.replicaID >= 0)
	}
	return &pending{complete: f.run}, nil
}

// resolveFetchTarget finds the partition a target names and, for a
// follower, checks its position against this leader's log.
func (s *Server) resolveFetchTarget(t *fetchTarget, byID bool, replicaID int32, allowed *topicCheck) {
	if sp := t.sp; sp != nil && sp.part != nil && sp.part.LeaderIn(t.leaderEpoch) {
		// The session's partition, still led here in this epoch: no lookups.
		t.name = sp.name
		if t.errCode = allowed.code(t.name); t.errCode == 0 {
			t.p = sp.part
			t.followerFetch(replicaID)
		}
		return
	}
	t.name = t.key.topic
	if byID {
		name, ok := s.cache.TopicName(t.key.id) // no copy of the topic per partition
		if !ok {
			t.errCode = kerr.UnknownTopicID.Code
			return
		}
		t.name = name
	}
	if t.errCode = allowed.code(t.name); t.errCode != 0 {
		return
	}
	p, err := s.parts.Leader(t.name, t.key.part, t.leaderEpoch)
	if err != nil {
		t.errCode = errorCode(err)
		return
	}
	t.p = p
	if t.sp != nil {
		t.sp.part, t.sp.name = p, t.name
	}
	t.followerFetch(replicaID)
}

// followerFetch records a follower's position (replicaID >= 0) and checks
// its last fetched epoch.
func (t *fetchTarget) followerFetch(replicaID int32) {
	if replicaID >= 0 {
		var err error
		t.diverging, err = t.p.FollowerFetch(replicaID, t.fetchOffset, t.lastFetchedEpoch)
		t.errCode = errorCode(err)
	}
}

// sentState is what a response tells the client of a session partition.
type sentState struct {
	sp       *sessionPart
	hw, logS int64
}

// run reads the targets, waiting up to MaxWaitMillis for MinBytes.
func (f *fetch) run(ctx context.Context) outgoing {
	s := f.c.srv
	var wake chan struct{}
	if f.session != nil {
		// Watched for the session's lifetime (handleFetch): drop a signal
		// left from before this request, which the first pass covers.
		wake = f.session.wake
		select {
		case <-wake:
		default:
		}
	} else {
		wake = make(chan struct{}, 1)
		for _, t := range f.targets {
			if t.p != nil {
				t.p.Watch(wake, f.replicaID >= 0)
			}
		}
		defer func() { // one deferred call, not one per partition
			for _, t := range f.targets {
				if t.p != nil {
					t.p.Unwatch(wake)
				}
			}
		}()
	}
	wait := time.Duration(f.req.MaxWaitMillis) * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ps, sent := f.once(ctx)
		if !(ps.total >= int64(f.req.MinBytes) || ps.ready || wait <= 0) {
			select {
			case <-wake:
				releaseAll(ps.out.files)
				continue
			case <-timer.C:
			case <-ctx.Done():
			case <-s.stopping:
			}
			// Out of time: answer with whatever is there now.
			releaseAll(ps.out.files)
			ps, sent = f.once(ctx)
		}
		if f.session != nil {
			f.session.mu.Lock()
			for _, st := range sent {
				st.sp.sentHW, st.sp.sentLogStart = st.hw, st.logS
			}
			f.session.mu.Unlock()
		}
		s.metrics.bytesOut.Add(float64(ps.total))
		for i, n := range ps.bytes {
			s.parts.TopicStats().FetchedOut(f.targets[i].name, n, f.replicaID >= 0)
		}
		return ps.out
	}
}

// fetchPass is one pass over the targets: the response entries and the
// byte budget.
type fetchPass struct {
	out        outgoing
	rps        []kmsg.FetchResponseTopicPartition // by target
	hasRecords []bool                             // by target
	remote     []remoteRead
	remaining  int64
	minOne     bool
	total      int64
	bytes      []int64 // record bytes by target
	ready      bool    // answer without waiting for more
}

// once builds a response from what is readable now, and returns the
// per-partition state it reports so the session can remember it.
func (f *fetch) once(ctx context.Context) (*fetchPass, []sentState) {
	resp := f.req.ResponseKind().(*kmsg.FetchResponse)
	if f.session != nil {
		resp.SessionID = f.session.id
	}
	ps := &fetchPass{
		out:        outgoing{resp: resp},
		rps:        make([]kmsg.FetchResponseTopicPartition, len(f.targets)),
		hasRecords: make([]bool, len(f.targets)),
		bytes:      make([]int64, len(f.targets)),
		remaining:  max(int64(f.req.MaxBytes), 0),
		minOne:     true,
	}
	for i := range f.targets {
		f.readLocal(ctx, ps, i)
	}
	if len(ps.remote) > 0 {
		f.readRemote(ctx, ps)
	}
	return ps, f.assemble(resp, ps)
}

// readLocal reads target i from the local log, or queues its read from the
// tier with the budget left at its turn.
func (f *fetch) readLocal(ctx context.Context, ps *fetchPass, i int) {
	t, rp := &f.targets[i], &ps.rps[i]
	// A follower at the log end, the usual state of an idle partition in its
	// session, is answered without a read.
	var hw, lso, start int64
	atEnd := false
	if f.replicaID >= 0 && t.p != nil && t.errCode == 0 && t.diverging == nil {
		hw, lso, start, atEnd = t.p.FollowerAtEnd(t.fetchOffset)
		if atEnd && !f.full && t.sp != nil && hw == t.sentHW && start == t.sentLogStart {
			// No news for an incremental fetch: assemble leaves it out, so
			// it is not worth a whole entry.
			rp.HighWatermark, rp.LogStartOffset, rp.DivergingEpoch.Epoch = hw, start, -1
			return
		}
	}
	*rp = kmsg.NewFetchResponseTopicPartition()
	rp.Partition = t.key.part
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
	rp.PreferredReadReplica = -1
	// Empty, never null: Kafka always sends a records field and librdkafka
	// rejects a null one ("invalid MessageSetSize -1").
	rp.RecordBatches = []byte{}
	switch {
	case t.p == nil || t.errCode != 0:
		rp.ErrorCode = t.errCode
		ps.ready = true
		if t.errCode == kerr.NotLeaderForPartition.Code {
			f.c.srv.fetchLeaderHint(t.name, t.key.part, &rp.CurrentLeader, ps.out.resp.(*kmsg.FetchResponse))
		}
		return
	case t.diverging != nil:
		rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset = t.diverging.Epoch, t.diverging.EndOffset
		rp.HighWatermark, rp.LastStableOffset = t.p.HighWatermark(), t.p.LastStable()
		rp.LogStartOffset = t.p.LocalLogStart()
		ps.ready = true // answer at once: the follower must truncate
		return
	}
	if atEnd {
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = hw, lso, start
		return
	}
	limit := max(min(int64(t.maxBytes), ps.remaining), 0)
	res, err := t.p.Read(ctx, t.fetchOffset, partition.ReadOptions{MaxBytes: int(limit), MinOne: ps.minOne,
		Replica: f.replicaID, Isolation: partition.Isolation(f.req.IsolationLevel)})
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = res.HighWatermark, res.LastStable, res.LogStart
	if f.req.IsolationLevel == 1 {
		rp.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(res.Aborted))
		for _, a := range res.Aborted {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			rp.AbortedTransactions = append(rp.AbortedTransactions, at)
		}
	}
	switch {
	case err != nil:
		rp.ErrorCode = errorCode(err)
		ps.ready = true
		switch {
		case errors.Is(err, partition.ErrTierMetadata):
			f.c.log.Warn("reading remote segment metadata failed", "partition", t.p.String(), "err", err)
		case rp.ErrorCode == kerr.KafkaStorageError.Code:
			f.c.log.Error("fetch read failed", "partition", t.p.String(), "offset", t.fetchOffset, "err", err)
		}
	case res.InTier:
		if limit > 0 || ps.minOne {
			ps.remote = append(ps.remote, remoteRead{i: i, offset: t.fetchOffset, limit: int(limit), minOne: ps.minOne})
			ps.remaining -= limit
			ps.minOne = false
		}
	case res.Records.Len > 0:
		rp.RecordBatches = f.c.placeholder(len(ps.out.files))
		ps.out.files = append(ps.out.files, records{file: res.Records})
		ps.total += res.Records.Len
		ps.bytes[i] += res.Records.Len
		ps.remaining = max(ps.remaining-res.Records.Len, 0)
		ps.minOne = false
		ps.hasRecords[i] = true
	default:
		res.Records.Release()
	}
}

// remoteRead is one partition of a fetch read from the tier.
type remoteRead struct {
	i      int // index in the targets
	offset int64
	limit  int
	minOne bool
	res    partition.RemoteRead
	err    error
}

// readRemote runs the pass's remote reads concurrently (the tier reader
// bounds the GETs in flight), waiting at most remote.fetch.max.wait.ms, and
// puts what they read into the response.
func (f *fetch) readRemote(ctx context.Context, ps *fetchPass) {
	s := f.c.srv
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RemoteFetchMaxWait)
	iso := partition.Isolation(f.req.IsolationLevel)
	read := func(r *remoteRead) {
		r.res, r.err = f.targets[r.i].p.ReadRemote(rctx, r.offset, r.limit, r.minOne, iso)
	}
	if len(ps.remote) == 1 {
		read(&ps.remote[0])
	} else {
		var wg sync.WaitGroup
		for k := range ps.remote {
			wg.Go(func() { read(&ps.remote[k]) })
		}
		wg.Wait()
	}
	cancel()
	for _, r := range ps.remote {
		rp := &ps.rps[r.i]
		// Kafka's RemoteFetch*: a read cut short by remote.fetch.max.wait.ms
		// or by the connection going away is not an error.
		failed := r.err != nil && ctx.Err() == nil && !errors.Is(r.err, context.DeadlineExceeded)
		s.parts.TopicStats().RemoteFetched(f.targets[r.i].name, int(r.res.Len()), failed)
		switch err := r.err; {
		case err == nil && r.res.Len() > 0:
			// Written as they are, not copied into the encoded response: from
			// memory, or a chunk cache file's range with sendfile.
			rp.RecordBatches = f.c.placeholder(len(ps.out.files))
			rec := records{mem: r.res.Records}
			if r.res.Records == nil {
				rec = records{file: r.res.File, done: r.res.Release}
			}
			ps.out.files = append(ps.out.files, rec)
			ps.total += r.res.Len()
			ps.bytes[r.i] += r.res.Len()
			ps.hasRecords[r.i] = true
			for _, a := range r.res.Aborted { // read_committed only; readLocal made the list
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				rp.AbortedTransactions = append(rp.AbortedTransactions, at)
			}
		case err == nil:
		case ctx.Err() != nil:
			ps.ready = true // the connection or the broker is going away
		case errors.Is(err, context.DeadlineExceeded):
			// remote.fetch.max.wait.ms passed: empty now, answer at once.
			s.metrics.remoteTimeouts.Inc()
			ps.ready = true
		default:
			rp.ErrorCode = errorCode(err)
			if rp.ErrorCode == kerr.KafkaStorageError.Code {
				f.c.log.Error("remote fetch failed", "partition", f.targets[r.i].p.String(), "offset", r.offset, "err", err)
			}
			ps.ready = true
		}
	}
}

// assemble puts the partitions into the response by topic, leaving out of
// an incremental response those with nothing new (no records, error or
// diverging epoch, and the high watermark and log start the client was last
// told), and returns what it tells the session's partitions.
func (f *fetch) assemble(resp *kmsg.FetchResponse, ps *fetchPass) []sentState {
	var sent []sentState
	topicAt := map[sessionKey]int{} // topic (partition zeroed) -> index in resp.Topics
	for i := range f.targets {
		t, rp := &f.targets[i], ps.rps[i]
		if !f.full && t.sp != nil && !ps.hasRecords[i] && rp.ErrorCode == 0 && rp.DivergingEpoch.Epoch < 0 &&
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
	return sent
}
