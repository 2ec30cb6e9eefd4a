package group

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups serves ListGroups: the groups this broker coordinates, filtered
// by state (v4+) and type (v5+; every group here is "classic").
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	shards, loading := c.loadedShards()
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	wantState := func(s string) bool {
		return len(req.StatesFilter) == 0 || slices.ContainsFunc(req.StatesFilter, func(f string) bool { return strings.EqualFold(f, s) })
	}
	wantType := func(t string) bool {
		return len(req.TypesFilter) == 0 || slices.ContainsFunc(req.TypesFilter, func(f string) bool { return strings.EqualFold(f, t) })
	}
	for _, sh := range shards {
		for _, g := range sh.snapshot() {
			g.mu.Lock()
			st, pt, kind := g.stateNameLocked(), g.protocolType, g.kind.String()
			g.mu.Unlock()
			if st == "Dead" || !wantState(st) || !wantType(kind) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, pt, st, kind
			resp.Groups = append(resp.Groups, lg)
		}
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return resp
}

// snapshot returns the shard's groups.
func (sh *shard) snapshot() []*group {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*group, 0, len(sh.groups))
	for _, g := range sh.groups {
		out = append(out, g)
	}
	return out
}

// DescribeGroups serves DescribeGroups. A group this coordinator does not
// know is described as Dead with no members (GROUP_ID_NOT_FOUND from v6), as
// in Kafka; member metadata and assignments are given for stable groups.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648 // not computed unless asked for; no authorizer yet
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = 0
		}
		sh, code := c.shardFor(id)
		switch {
		case id == "":
			dg.ErrorCode = kerr.InvalidGroupID.Code
		case code != 0:
			dg.ErrorCode = code
		default:
			c.describe(sh, id, &dg, req.Version)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) describe(sh *shard, id string, dg *kmsg.DescribeGroupsResponseGroup, version int16) {
	g := sh.group(id, false)
	if g == nil {
		dg.State = "Dead"
		if version >= 6 {
			dg.ErrorCode = kerr.GroupIDNotFound.Code
		}
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kind == kindConsumer {
		g.describeConsumerAsClassicLocked(dg)
		return
	}
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	if g.state == stateStable || g.state == stateCompletingRebalance {
		dg.Protocol = g.protocol
	}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if g.state == stateStable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}

// DeleteGroups serves DeleteGroups: only groups without members, with their
// committed offsets.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		dg.ErrorCode = c.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) int16 {
	if id == "" {
		return kerr.InvalidGroupID.Code
	}
	sh, code := c.shardFor(id)
	if code != 0 {
		return code
	}
	g := sh.group(id, false)
	if g == nil {
		return kerr.GroupIDNotFound.Code
	}
	g.mu.Lock()
	switch {
	case g.state == stateDead:
		g.mu.Unlock()
		return kerr.GroupIDNotFound.Code
	case !g.idleLocked():
		g.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	records := g.tombstonesLocked()
	for tp := range g.offsets {
		records = append(records, kv{key: offsetKey(g.id, tp.topic, tp.partition)})
	}
	// Offsets pending in open transactions go too, as in Kafka 4
	// (deleteAllOffsets): a tombstone for each not committed as well, and
	// a later COMMIT finds nothing of the group to make visible.
	sh.txnMu.Lock()
	for tp := range sh.txn.pendingLocked(g.id) {
		if _, ok := g.offsets[tp]; !ok {
			records = append(records, kv{key: offsetKey(g.id, tp.topic, tp.partition)})
		}
	}
	w := sh.append(records)
	if w.err == nil {
		sh.txn.dropLocked(g.id, nil)
	}
	sh.txnMu.Unlock()
	// Dead at once: a join racing the delete finds COORDINATOR_NOT_AVAILABLE
	// and retries against the group created afresh.
	g.killLocked(kerr.CoordinatorNotAvailable.Code)
	g.mu.Unlock()
	sh.drop(g)
	if code := sh.wait(ctx, w); code != 0 {
		return code
	}
	c.log.Info("deleted group", "group", id)
	return 0
}

// OffsetDelete serves OffsetDelete: committed offsets of topics the group
// is not consuming (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	code, pcodes := c.offsetDelete(ctx, req)
	resp.ErrorCode = code
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if code == 0 {
				rp.ErrorCode = pcodes[i][j]
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *Coordinator) offsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) (int16, [][]int16) {
	pcodes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		pcodes[i] = make([]int16, len(t.Partitions))
	}
	if req.Group == "" {
		return kerr.InvalidGroupID.Code, pcodes
	}
	sh, code := c.shardFor(req.Group)
	if code != 0 {
		return code, pcodes
	}
	g := sh.group(req.Group, false)
	if g == nil {
		return kerr.GroupIDNotFound.Code, pcodes
	}
	g.mu.Lock()
	if g.state == stateDead {
		g.mu.Unlock()
		return kerr.GroupIDNotFound.Code, pcodes
	}
	if !g.idleLocked() && g.protocolType != "consumer" {
		g.mu.Unlock()
		return kerr.NonEmptyGroup.Code, pcodes
	}
	subscribed := g.subscribedTopicsLocked()
	var (
		records []kv
		gone    []topicPartition
	)
	// A tombstone deletes a committed offset and one pending in an open
	// transaction alike (Kafka's deleteOffsets).
	sh.txnMu.Lock()
	pending := sh.txn.pendingLocked(g.id)
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			if subscribed[t.Topic] {
				pcodes[i][j] = kerr.GroupSubscribedToTopic.Code
				continue
			}
			tp := topicPartition{t.Topic, p.Partition}
			if _, ok := g.offsets[tp]; ok || pending[tp] {
				records = append(records, kv{key: offsetKey(g.id, tp.topic, tp.partition)})
				gone = append(gone, tp)
			}
		}
	}
	if len(records) == 0 {
		sh.txnMu.Unlock()
		g.mu.Unlock()
		return 0, pcodes
	}
	w := sh.append(records)
	if w.err == nil {
		sh.txn.dropLocked(g.id, gone)
	}
	sh.txnMu.Unlock()
	g.mu.Unlock()
	if code := sh.wait(ctx, w); code != 0 {
		return code, pcodes
	}
	g.mu.Lock()
	for _, tp := range gone {
		delete(g.offsets, tp)
	}
	g.mu.Unlock()
	return 0, pcodes
}

// subscribedTopicsLocked lists the topics the members of a consumer group
// subscribe to (from their consumer protocol metadata).
func (g *group) subscribedTopicsLocked() map[string]bool {
	out := map[string]bool{}
	if g.kind == kindConsumer {
		all := map[string]topicInfo{}
		for _, t := range g.sh.c.topics() {
			all[t.name] = t
		}
		for _, m := range g.cg.members {
			for _, t := range g.subscribedTopics(m, all) {
				out[t.name] = true
			}
		}
		return out
	}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			continue
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out
}
