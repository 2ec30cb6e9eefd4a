package group

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit serves OffsetCommit. Commits of a member are fenced by its
// generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS
// while the group completes a rebalance); a group without members takes
// commits of generation -1 (standalone consumers, admin tools). The commit
// is appended at once, in the order requests arrive; the returned function
// waits until it is committed in __consumer_offsets and answers.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest) func(context.Context) *kmsg.OffsetCommitResponse {
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	wait := c.commit(req, codes)
	return func(ctx context.Context) *kmsg.OffsetCommitResponse {
		return commitResponse(req, codes, wait(ctx))
	}
}

func commitResponse(req *kmsg.OffsetCommitRequest, codes [][]int16, code int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes[i][j]
			if code != 0 {
				rp.ErrorCode = code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// commit appends the request's offsets; per-partition codes go into codes.
// The returned function waits for the write and returns a code for every
// partition (0: the per-partition codes stand).
func (c *Coordinator) commit(req *kmsg.OffsetCommitRequest, codes [][]int16) func(context.Context) int16 {
	now := func(code int16) func(context.Context) int16 { return func(context.Context) int16 { return code } }
	sh, g, code := c.commitGroup(req.Group, req.Generation)
	if code != 0 {
		return now(code)
	}
	if code := g.commitAllowedLocked(req); code != 0 {
		g.mu.Unlock()
		c.log.Debug("offset commit refused", "group", req.Group, "member", req.MemberID, "generation", req.Generation,
			"version", req.Version, "error_code", code)
		return now(code)
	}
	var parts []commitPartition
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			cp := commitPartition{topic: t.Topic, partition: p.Partition, offset: p.Offset, leaderEpoch: -1,
				metadata: p.Metadata, i: i, j: j}
			if req.Version >= 6 {
				cp.leaderEpoch = p.LeaderEpoch
			}
			parts = append(parts, cp)
		}
	}
	records, staged := g.stageLocked(parts, c.now(), c.cfg.OffsetMetadataMaxBytes, codes)
	if len(records) == 0 {
		g.mu.Unlock()
		return now(0)
	}
	w := sh.append(records)
	g.mu.Unlock()
	return func(ctx context.Context) int16 {
		wcode := sh.wait(ctx, w)
		g.mu.Lock()
		defer g.mu.Unlock()
		for k, s := range staged {
			if wcode != 0 {
				codes[s.i][s.j] = wcode
				continue
			}
			s.o.logOffset = w.res.FirstOffset + int64(k)
			if cur, ok := g.offsets[s.tp]; !ok || cur.logOffset < s.o.logOffset {
				g.offsets[s.tp] = s.o
			}
		}
		if wcode == 0 {
			c.metrics.commits.Add(float64(len(staged)))
		}
		return 0
	}
}

// consumerCommitAllowedLocked fences commits to a consumer group by member
// epoch (KIP-848).
func (g *group) consumerCommitAllowedLocked(req *kmsg.OffsetCommitRequest) int16 {
	cg := g.cg
	m := cg.members[req.MemberID]
	switch {
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case req.Generation < 0 && req.MemberID == "" && len(cg.members) == 0:
		return 0 // an admin tool or standalone consumer, the group being empty
	case m == nil || m.left:
		return kerr.UnknownMemberID.Code
	case req.Version < 9:
		// Members of a consumer group speak the new protocol; an old
		// commit cannot carry a member epoch.
		return kerr.UnsupportedVersion.Code
	case req.Generation != m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

type stagedOffset struct {
	tp   topicPartition
	o    offset
	i, j int // the partition's place in the request
}

// commitGroup finds the shard and the group a commit goes to and returns
// the group locked, or the code refusing the commit: a group that does not
// exist is created for generation -1 (a "simple" group, as Kafka does),
// ILLEGAL_GENERATION otherwise.
func (c *Coordinator) commitGroup(groupID string, generation int32) (*shard, *group, int16) {
	if groupID == "" {
		return nil, nil, kerr.InvalidGroupID.Code
	}
	sh, code := c.shardFor(groupID)
	if code != 0 {
		return nil, nil, code
	}
	g := sh.group(groupID, generation < 0)
	if g == nil {
		return nil, nil, kerr.IllegalGeneration.Code
	}
	g.mu.Lock()
	return sh, g, 0
}

// commitPartition is one partition of an OffsetCommit or TxnOffsetCommit.
type commitPartition struct {
	topic       string
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
	i, j        int // the partition's place in the request
}

// stageLocked builds the records committing parts at time at and the
// offsets they hold; a partition whose metadata is longer than maxMetadata
// gets OFFSET_METADATA_TOO_LARGE in codes instead.
func (g *group) stageLocked(parts []commitPartition, at time.Time, maxMetadata int, codes [][]int16) ([]kv, []stagedOffset) {
	var (
		records []kv
		staged  []stagedOffset
	)
	for _, p := range parts {
		if p.metadata != nil && len(*p.metadata) > maxMetadata {
			codes[p.i][p.j] = kerr.OffsetMetadataTooLarge.Code
			continue
		}
		o := offset{offset: p.offset, leaderEpoch: p.leaderEpoch, metadata: deref(p.metadata), commitTime: at}
		records = append(records, kv{key: offsetKey(g.id, p.topic, p.partition), value: offsetValue(o)})
		staged = append(staged, stagedOffset{tp: topicPartition{p.topic, p.partition}, o: o, i: p.i, j: p.j})
	}
	return records, staged
}

// commitAllowedLocked applies Kafka's rules for who may commit now.
func (g *group) commitAllowedLocked(req *kmsg.OffsetCommitRequest) int16 {
	if g.kind == kindConsumer {
		return g.consumerCommitAllowedLocked(req)
	}
	m := g.members[req.MemberID]
	switch {
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case req.Generation < 0 && g.isEmptyLocked():
		return 0 // not a member: a standalone consumer or an admin tool
	case req.InstanceID != nil && g.static[*req.InstanceID] != "" && g.static[*req.InstanceID] != req.MemberID:
		return kerr.FencedInstanceID.Code
	case g.state == stateCompletingRebalance:
		return kerr.RebalanceInProgress.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	g.touchLocked(m) // a commit counts as a heartbeat
	return 0
}

// OffsetFetch serves OffsetFetch: one group before v8, a batch after. With
// require_stable (v7+) a partition whose offset is pending in an open
// transaction answers UNSTABLE_OFFSET_COMMIT (offset -1), and the client
// retries; without, it gets the last committed offset (KIP-447).
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	stable := req.Version >= 7 && req.RequireStable
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []topicRequest
			if rg.Topics != nil {
				topics = []topicRequest{}
				for _, t := range rg.Topics {
					topics = append(topics, topicRequest{t.Topic, t.Partitions})
				}
			}
			code, got := c.fetchOffsets(rg.Group, topics, rg.MemberID, rg.MemberEpoch, stable)
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = rg.Group, code
			for _, t := range got {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.topic
				for _, p := range t.partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.leaderEpoch, kmsg.StringPtr(p.metadata)
					rp.ErrorCode = p.errorCode
					rt.Partitions = append(rt.Partitions, rp)
				}
				g.Topics = append(g.Topics, rt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	var topics []topicRequest
	if req.Topics != nil || req.Version < 2 {
		topics = []topicRequest{}
		for _, t := range req.Topics {
			topics = append(topics, topicRequest{t.Topic, t.Partitions})
		}
	}
	code, got := c.fetchOffsets(req.Group, topics, nil, -1, stable)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, t := range got {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.topic
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.leaderEpoch, kmsg.StringPtr(p.metadata)
			rp.ErrorCode = p.errorCode
			if req.Version < 2 {
				rp.ErrorCode = code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

type topicRequest struct {
	topic      string
	partitions []int32
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedOffset
}

type fetchedOffset struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
	errorCode   int16 // UNSTABLE_OFFSET_COMMIT
}

// fetchOffsets returns the committed offsets asked for (-1 where none),
// every committed offset of the group when topics is nil. A member of a
// consumer group naming itself (v9) is checked by member epoch. With
// requireStable, partitions with offsets pending in an open transaction
// are UNSTABLE_OFFSET_COMMIT.
func (c *Coordinator) fetchOffsets(groupID string, topics []topicRequest, memberID *string, memberEpoch int32, requireStable bool) (int16, []fetchedTopic) {
	var unstable map[topicPartition]bool
	none := func() []fetchedTopic {
		var out []fetchedTopic
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.partitions {
				fo := fetchedOffset{partition: p, offset: -1, leaderEpoch: -1}
				if unstable[topicPartition{t.topic, p}] {
					fo.errorCode = kerr.UnstableOffsetCommit.Code
				}
				ft.partitions = append(ft.partitions, fo)
			}
			out = append(out, ft)
		}
		return out
	}
	if groupID == "" {
		return kerr.InvalidGroupID.Code, none()
	}
	sh, code := c.shardFor(groupID)
	if code != 0 {
		return code, none()
	}
	g := sh.group(groupID, false)
	if g == nil {
		if requireStable {
			unstable = sh.pendingOf(groupID)
		}
		return 0, none()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if requireStable {
		unstable = sh.pendingOf(groupID)
	}
	if memberID != nil && g.kind == kindConsumer {
		m := g.cg.members[*memberID]
		switch {
		case m == nil:
			unstable = nil
			return kerr.UnknownMemberID.Code, none()
		case memberEpoch != m.epoch:
			unstable = nil
			return kerr.StaleMemberEpoch.Code, none()
		}
	}
	if topics == nil {
		byTopic := map[string][]int32{}
		for tp := range g.offsets {
			byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		}
		for _, t := range slices.Sorted(maps.Keys(byTopic)) {
			ps := byTopic[t]
			slices.Sort(ps)
			topics = append(topics, topicRequest{t, ps})
		}
	}
	var out []fetchedTopic
	for _, t := range topics {
		ft := fetchedTopic{topic: t.topic}
		for _, p := range t.partitions {
			fo := fetchedOffset{partition: p, offset: -1, leaderEpoch: -1}
			tp := topicPartition{t.topic, p}
			if unstable[tp] {
				fo.errorCode = kerr.UnstableOffsetCommit.Code
			} else if o, ok := g.offsets[tp]; ok {
				fo.offset, fo.leaderEpoch, fo.metadata = o.offset, o.leaderEpoch, o.metadata
			}
			ft.partitions = append(ft.partitions, fo)
		}
		out = append(out, ft)
	}
	return 0, out
}

// retain expires the offsets of groups that have been empty for
// offsets.retention.minutes (KIP-211) and removes groups left with nothing,
// every offsets.retention.check.interval.ms, until the shard is unloaded.
func (sh *shard) retain() {
	t := time.NewTicker(sh.c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-sh.ctx.Done():
			return
		case <-t.C:
		}
		sh.mu.Lock()
		groups := make([]*group, 0, len(sh.groups))
		for _, g := range sh.groups {
			groups = append(groups, g)
		}
		sh.mu.Unlock()
		for _, g := range groups {
			sh.expire(g)
		}
	}
}

// expire deletes g's expired offsets, and g itself once it is empty and has
// none.
func (sh *shard) expire(g *group) {
	now := sh.c.now()
	g.mu.Lock()
	if !g.idleLocked() {
		g.mu.Unlock()
		return
	}
	// An offset with a transactional one pending stays, and so does a group
	// with offsets in an open transaction (Kafka's cleanupExpiredOffsets).
	pending := sh.pendingOf(g.id)
	var records []kv
	var gone []topicPartition
	for tp, o := range g.offsets {
		if pending[tp] {
			continue
		}
		// Offsets of an empty group expire counting from when it became
		// empty, or from the commit if that came later.
		from := g.stateSince
		if o.commitTime.After(from) {
			from = o.commitTime
		}
		if now.Sub(from) >= sh.c.cfg.OffsetsRetention {
			records = append(records, kv{key: offsetKey(g.id, tp.topic, tp.partition)})
			gone = append(gone, tp)
		}
	}
	dropGroup := len(gone) == len(g.offsets) && len(pending) == 0
	if dropGroup {
		records = append(records, g.tombstonesLocked()...)
	}
	if len(records) == 0 {
		g.mu.Unlock()
		return
	}
	w := sh.append(records)
	g.mu.Unlock()
	if code := sh.wait(sh.ctx, w); code != 0 {
		sh.c.log.Warn("expiring offsets failed; will retry", "group", g.id, "error_code", code)
		return
	}
	g.mu.Lock()
	for _, tp := range gone {
		delete(g.offsets, tp)
	}
	removed := dropGroup && g.idleLocked() && len(g.offsets) == 0 && len(sh.pendingOf(g.id)) == 0
	if removed {
		g.killLocked(kerr.CoordinatorNotAvailable.Code)
	}
	g.mu.Unlock()
	if removed {
		sh.drop(g)
	}
	sh.c.log.Info("expired committed offsets", "group", g.id, "offsets", len(gone), "group_removed", dropGroup)
}
