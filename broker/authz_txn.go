package broker

// Authorization of the transaction APIs, FindCoordinator and the SCRAM
// credential APIs (authz.go has the general helpers): what Kafka's
// KafkaApis checks, with its error codes.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// addPartitionsDenied is AddPartitionsToTxn's check; a non-nil response
// answers the request. v4+ is the brokers' verification batch: CLUSTER
// CLUSTER_ACTION. v0-3 come from producers: WRITE on the transactional id
// (every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic
// (the denied ones TOPIC_AUTHORIZATION_FAILED, the rest
// OPERATION_NOT_ATTEMPTED: nothing is added).
func (c *conn) addPartitionsDenied(req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	if c.srv.authz == nil {
		return nil
	}
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		if c.authorizedCluster(kmsg.ACLOperationClusterAction) {
			return nil
		}
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	txnOK := c.authorizedTxnID(kmsg.ACLOperationWrite, req.TransactionalID)
	topics := c.topicCheck(kmsg.ACLOperationWrite)
	denied := !txnOK
	for _, t := range req.Topics {
		denied = denied || !topics.ok(t.Topic)
	}
	if !denied {
		return nil
	}
	for _, t := range req.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		code := kerr.TransactionalIDAuthorizationFailed.Code
		if txnOK {
			if code = topics.code(t.Topic); code == 0 {
				code = kerr.OperationNotAttempted.Code
			}
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// addOffsetsDenied is AddOffsetsToTxn's: WRITE on the transactional id, READ
// on the group.
func (c *conn) addOffsetsDenied(req *kmsg.AddOffsetsToTxnRequest) int16 {
	switch {
	case !c.authorizedTxnID(kmsg.ACLOperationWrite, req.TransactionalID):
		return kerr.TransactionalIDAuthorizationFailed.Code
	case !c.authorizedGroup(kmsg.ACLOperationRead, req.Group):
		return kerr.GroupAuthorizationFailed.Code
	}
	return 0
}

// describeTransactionsFilter: DESCRIBE on each transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, nothing else shown), and only the
// topics the principal may DESCRIBE among a transaction's partitions.
func (c *conn) describeTransactionsFilter(resp *kmsg.DescribeTransactionsResponse) {
	if c.srv.authz == nil {
		return
	}
	topics := c.topicCheck(kmsg.ACLOperationDescribe)
	for i := range resp.TransactionStates {
		s := &resp.TransactionStates[i]
		if !c.authorizedTxnID(kmsg.ACLOperationDescribe, s.TransactionalID) {
			d := kmsg.NewDescribeTransactionsResponseTransactionState()
			d.TransactionalID, d.ErrorCode = s.TransactionalID, kerr.TransactionalIDAuthorizationFailed.Code
			*s = d
			continue
		}
		kept := s.Topics[:0]
		for _, t := range s.Topics {
			if topics.ok(t.Topic) {
				kept = append(kept, t)
			}
		}
		s.Topics = kept
	}
}

// listTransactionsFilter lists only the transactional ids the principal may
// DESCRIBE.
func (c *conn) listTransactionsFilter(resp *kmsg.ListTransactionsResponse) {
	kept := resp.TransactionStates[:0]
	for _, s := range resp.TransactionStates {
		if c.visible(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, s.TransactionalID) {
			kept = append(kept, s)
		}
	}
	resp.TransactionStates = kept
}

// coordinatorDenied is FindCoordinator's check of each key: DESCRIBE on the
// group (GROUP_AUTHORIZATION_FAILED) or the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED). It returns the denied keys'
// answers.
func (c *conn) coordinatorDenied(req *kmsg.FindCoordinatorRequest) map[string]kmsg.FindCoordinatorResponseCoordinator {
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	denied := map[string]kmsg.FindCoordinatorResponseCoordinator{}
	for _, k := range keys {
		code := int16(0)
		switch req.CoordinatorType {
		case 0:
			if !c.authorizedGroup(kmsg.ACLOperationDescribe, k) {
				code = kerr.GroupAuthorizationFailed.Code
			}
		case 1:
			if !c.authorizedTxnID(kmsg.ACLOperationDescribe, k) {
				code = kerr.TransactionalIDAuthorizationFailed.Code
			}
		}
		if code != 0 {
			fc := kmsg.NewFindCoordinatorResponseCoordinator()
			fc.NodeID, fc.Port, fc.ErrorCode = -1, -1, code
			denied[k] = fc
		}
	}
	return denied
}

// alterScramDenied is AlterUserScramCredentials' check: ALTER on the
// cluster, else every user of the request answers
// CLUSTER_AUTHORIZATION_FAILED. A nil response lets the request through.
func (c *conn) alterScramDenied(req *kmsg.AlterUserSCRAMCredentialsRequest) kmsg.Response {
	if c.authorizedCluster(kmsg.ACLOperationAlter) {
		return nil
	}
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]bool{}
	add := func(user string) {
		if !seen[user] {
			seen[user] = true
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = user, kerr.ClusterAuthorizationFailed.Code
			resp.Results = append(resp.Results, res)
		}
	}
	for _, d := range req.Deletions {
		add(d.Name)
	}
	for _, u := range req.Upsertions {
		add(u.Name)
	}
	return resp
}
