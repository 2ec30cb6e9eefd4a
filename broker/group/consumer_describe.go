package group

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe serves ConsumerGroupDescribe v0-1: KIP-848 groups
// with their epochs, members, assignments and target assignments. A classic
// group or an unknown id gets GROUP_ID_NOT_FOUND.
func (c *Coordinator) ConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	var names map[[16]byte]string
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648
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
			if names == nil {
				names = map[[16]byte]string{}
				for _, t := range c.topics() {
					names[t.id] = t.name
				}
			}
			describeConsumer(sh, id, &dg, names, req.Version)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func describeConsumer(sh *shard, id string, dg *kmsg.ConsumerGroupDescribeResponseGroup, names map[[16]byte]string, version int16) {
	notFound := func(msg string) {
		dg.ErrorCode = kerr.GroupIDNotFound.Code
		dg.ErrorMessage = &msg
	}
	g := sh.group(id, false)
	if g == nil {
		notFound("group " + id + " not found")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kind != kindConsumer || g.state == stateDead {
		notFound("group " + id + " is not a consumer group")
		return
	}
	cg := g.cg
	dg.State, dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = cg.state(), cg.epoch, cg.assignEpoch, cg.assignor
	for _, mid := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[mid]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics, dm.SubscribedTopicRegex = append([]string{}, m.topics...), m.regex
		dm.Assignment, dm.TargetAssignment = describeAssignment(m.assigned, names), describeAssignment(cg.target[m.id], names)
		if version >= 1 {
			dm.MemberType = 1 // a consumer-protocol member
		}
		dg.Members = append(dg.Members, dm)
	}
}

func describeAssignment(a assignment, names map[[16]byte]string) kmsg.Assignment {
	out := kmsg.NewAssignment()
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, t := range slices.SortedFunc(maps.Keys(a), func(x, y [16]byte) int { return slices.Compare(x[:], y[:]) }) {
		out.TopicPartitions = append(out.TopicPartitions, kmsg.AssignmentTopicPartition{TopicID: t, Topic: names[t], Partitions: slices.Clone(a[t])})
	}
	return out
}

// describeConsumerAsClassicLocked answers DescribeGroups (the classic API)
// for a consumer group, so that older tools see its members: protocol type
// "consumer", the assignor as the protocol, subscriptions and assignments in
// the consumer protocol's encoding.
func (g *group) describeConsumerAsClassicLocked(dg *kmsg.DescribeGroupsResponseGroup) {
	cg := g.cg
	dg.State, dg.ProtocolType, dg.Protocol = cg.state(), "consumer", cg.assignor
	names := map[[16]byte]string{}
	for _, t := range g.sh.c.topics() {
		names[t.id] = t.name
	}
	for _, mid := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[mid]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		md := kmsg.NewConsumerMemberMetadata()
		md.Topics = append([]string{}, m.topics...)
		dm.ProtocolMetadata = md.AppendTo(nil)
		ma := kmsg.NewConsumerMemberAssignment()
		for _, t := range slices.SortedFunc(maps.Keys(m.assigned), func(x, y [16]byte) int { return slices.Compare(x[:], y[:]) }) {
			ma.Topics = append(ma.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: names[t], Partitions: slices.Clone(m.assigned[t])})
		}
		dm.MemberAssignment = ma.AppendTo(nil)
		dg.Members = append(dg.Members, dm)
	}
}
