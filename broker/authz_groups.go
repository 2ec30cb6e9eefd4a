package broker

// Authorization of the group APIs (authz.go has the general helpers): what
// Kafka's KafkaApis checks for each, with its error codes.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/security"
)

// splitTopics sorts a request's topics by code (0: allowed) into those
// allowed and the response entries of the others, made by deny.
func splitTopics[T, R any](topics []T, name func(T) string, code func(string) int16, deny func(T, int16) R) (allowed []T, denied []R) {
	for _, t := range topics {
		if c := code(name(t)); c != 0 {
			denied = append(denied, deny(t, c))
		} else {
			allowed = append(allowed, t)
		}
	}
	return allowed, denied
}

// commitCode is the per-topic check of the offset commits: whole for every
// topic when it is set (the group or transactional id is denied), else READ
// on the topic.
func (c *conn) commitCode(whole int16) func(string) int16 {
	if whole != 0 {
		return func(string) int16 { return whole }
	}
	return c.topicCheck(kmsg.ACLOperationRead).code
}

// offsetCommitCheck is OffsetCommit's: READ on the group (else every
// partition is GROUP_AUTHORIZATION_FAILED and nothing is committed) and READ
// on each topic. It returns the request with the allowed topics (nil if none
// remain) and the response entries of the others.
func (c *conn) offsetCommitCheck(req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitRequest, []kmsg.OffsetCommitResponseTopic) {
	var whole int16
	if !c.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		whole = kerr.GroupAuthorizationFailed.Code
	}
	allowed := *req
	var denied []kmsg.OffsetCommitResponseTopic
	allowed.Topics, denied = splitTopics(req.Topics, func(t kmsg.OffsetCommitRequestTopic) string { return t.Topic }, c.commitCode(whole),
		func(t kmsg.OffsetCommitRequestTopic, code int16) kmsg.OffsetCommitResponseTopic {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = t.Topic
			for _, rp := range t.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			return st
		})
	if whole != 0 || (len(allowed.Topics) == 0 && len(req.Topics) > 0) {
		return nil, denied
	}
	return &allowed, denied
}

// txnOffsetCommitCheck is TxnOffsetCommit's: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED), READ on each topic.
func (c *conn) txnOffsetCommitCheck(req *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitRequest, []kmsg.TxnOffsetCommitResponseTopic) {
	var whole int16
	switch {
	case !c.authorizedTxnID(kmsg.ACLOperationWrite, req.TransactionalID):
		whole = kerr.TransactionalIDAuthorizationFailed.Code
	case !c.authorizedGroup(kmsg.ACLOperationRead, req.Group):
		whole = kerr.GroupAuthorizationFailed.Code
	}
	allowed := *req
	var denied []kmsg.TxnOffsetCommitResponseTopic
	allowed.Topics, denied = splitTopics(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) string { return t.Topic }, c.commitCode(whole),
		func(t kmsg.TxnOffsetCommitRequestTopic, code int16) kmsg.TxnOffsetCommitResponseTopic {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = t.Topic
			for _, rp := range t.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			return st
		})
	if whole != 0 || (len(allowed.Topics) == 0 && len(req.Topics) > 0) {
		return nil, denied
	}
	return &allowed, denied
}

// offsetFetchFilter applies OffsetFetch's checks to the coordinator's
// answer (reading offsets has no side effects): DESCRIBE on each group
// (GROUP_AUTHORIZATION_FAILED), DESCRIBE on each topic: a topic asked for by
// name answers TOPIC_AUTHORIZATION_FAILED, one listed because all were asked
// for is left out.
func (c *conn) offsetFetchFilter(req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	if c.srv.authz == nil {
		return
	}
	topics := c.topicCheck(kmsg.ACLOperationDescribe)
	if req.Version < 8 {
		if !c.authorizedGroup(kmsg.ACLOperationDescribe, req.Group) {
			resp.Topics, resp.ErrorCode = nil, kerr.GroupAuthorizationFailed.Code
			return
		}
		resp.Topics = fetchedTopics(resp.Topics, req.Topics == nil, topics, func(t *kmsg.OffsetFetchResponseTopic) (string, int) { return t.Topic, len(t.Partitions) },
			func(t *kmsg.OffsetFetchResponseTopic, i int) {
				p := &t.Partitions[i]
				p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
			})
		return
	}
	all := map[string]bool{}
	for _, g := range req.Groups {
		all[g.Group] = g.Topics == nil
	}
	for gi := range resp.Groups {
		g := &resp.Groups[gi]
		if !c.authorizedGroup(kmsg.ACLOperationDescribe, g.Group) {
			g.Topics, g.ErrorCode = nil, kerr.GroupAuthorizationFailed.Code
			continue
		}
		g.Topics = fetchedTopics(g.Topics, all[g.Group], topics, func(t *kmsg.OffsetFetchResponseGroupTopic) (string, int) { return t.Topic, len(t.Partitions) },
			func(t *kmsg.OffsetFetchResponseGroupTopic, i int) {
				p := &t.Partitions[i]
				p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
			})
	}
}

// fetchedTopics drops (all: every topic was asked for) or masks the topics
// of an OffsetFetch answer that the principal may not DESCRIBE; about gives a
// topic's name and partition count, mask denies its partition i.
func fetchedTopics[T any](ts []T, all bool, allowed *topicCheck, about func(*T) (string, int), mask func(*T, int)) []T {
	kept := ts[:0]
	for i := range ts {
		t := &ts[i]
		name, n := about(t)
		if !allowed.ok(name) {
			if all {
				continue
			}
			for p := range n {
				mask(t, p)
			}
		}
		kept = append(kept, *t)
	}
	return kept
}

// describeGroupsFilter: DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED,
// nothing else shown), and the KIP-430 authorized operations when asked.
func (c *conn) describeGroupsFilter(req *kmsg.DescribeGroupsRequest, resp *kmsg.DescribeGroupsResponse) {
	for i := range resp.Groups {
		g := &resp.Groups[i]
		if !c.authorizedGroup(kmsg.ACLOperationDescribe, g.Group) {
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = g.Group, kerr.GroupAuthorizationFailed.Code
			*g = d
			continue
		}
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeGroup, g.Group)
		}
	}
}

// consumerGroupDescribeFilter is describeGroupsFilter for KIP-848 groups,
// where (as in Kafka 4) a group whose members subscribe to or are assigned a
// topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED.
func (c *conn) consumerGroupDescribeFilter(req *kmsg.ConsumerGroupDescribeRequest, resp *kmsg.ConsumerGroupDescribeResponse) {
	topics := c.topicCheck(kmsg.ACLOperationDescribe)
	for i := range resp.Groups {
		g := &resp.Groups[i]
		code := int16(0)
		switch {
		case !c.authorizedGroup(kmsg.ACLOperationDescribe, g.Group):
			code = kerr.GroupAuthorizationFailed.Code
		case !memberTopicsOK(g.Members, topics):
			code = kerr.TopicAuthorizationFailed.Code
		}
		if code != 0 {
			d := kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group, d.ErrorCode = g.Group, code
			*g = d
			continue
		}
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeGroup, g.Group)
		}
	}
}

// listGroupsFilter: with CLUSTER DESCRIBE every group is listed, otherwise
// only those the principal may DESCRIBE.
func (c *conn) listGroupsFilter(resp *kmsg.ListGroupsResponse) {
	if c.visible(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, security.ClusterName) {
		return
	}
	kept := resp.Groups[:0]
	for _, g := range resp.Groups {
		if c.visible(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group) {
			kept = append(kept, g)
		}
	}
	resp.Groups = kept
}

// deleteGroupsCheck: DELETE on each group. It returns the request with the
// allowed groups and the results of the others.
func (c *conn) deleteGroupsCheck(req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsRequest, []kmsg.DeleteGroupsResponseGroup) {
	allowed := *req
	allowed.Groups = nil
	var denied []kmsg.DeleteGroupsResponseGroup
	for _, g := range req.Groups {
		if c.authorizedGroup(kmsg.ACLOperationDelete, g) {
			allowed.Groups = append(allowed.Groups, g)
			continue
		}
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group, d.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		denied = append(denied, d)
	}
	return &allowed, denied
}

// offsetDeleteCheck: DELETE on the group (the whole request fails with
// GROUP_AUTHORIZATION_FAILED: code), READ on each topic.
func (c *conn) offsetDeleteCheck(req *kmsg.OffsetDeleteRequest) (allowed *kmsg.OffsetDeleteRequest, denied []kmsg.OffsetDeleteResponseTopic, code int16) {
	if !c.authorizedGroup(kmsg.ACLOperationDelete, req.Group) {
		return nil, nil, kerr.GroupAuthorizationFailed.Code
	}
	topics := c.topicCheck(kmsg.ACLOperationRead)
	a := *req
	a.Topics = nil
	for _, rt := range req.Topics {
		if topics.ok(rt.Topic) {
			a.Topics = append(a.Topics, rt)
			continue
		}
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
			st.Partitions = append(st.Partitions, sp)
		}
		denied = append(denied, st)
	}
	return &a, denied, 0
}

// consumerGroupHeartbeatDenied: READ on the group, DESCRIBE on every
// subscribed topic name (Kafka 4).
func (c *conn) consumerGroupHeartbeatDenied(req *kmsg.ConsumerGroupHeartbeatRequest) int16 {
	if !c.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		return kerr.GroupAuthorizationFailed.Code
	}
	topics := c.topicCheck(kmsg.ACLOperationDescribe)
	for _, t := range req.SubscribedTopicNames {
		if !topics.ok(t) {
			return kerr.TopicAuthorizationFailed.Code
		}
	}
	return 0
}

// memberTopicsOK reports whether every topic the members subscribe to or are
// assigned passes the check.
func memberTopicsOK(members []kmsg.ConsumerGroupDescribeResponseGroupMember, topics *topicCheck) bool {
	for _, m := range members {
		for _, t := range m.SubscribedTopics {
			if !topics.ok(t) {
				return false
			}
		}
		for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
			for _, tp := range a.TopicPartitions {
				if tp.Topic != "" && !topics.ok(tp.Topic) { // "": deleted meanwhile
					return false
				}
			}
		}
	}
	return true
}
