package txn

// DescribeTransactions and ListTransactions (KIP-664, KIP-994's duration
// filter, KIP-1152's transactional id pattern).

import (
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions answers DescribeTransactions (v0) for the
// transactional ids this broker coordinates: their committed state (a
// transition being written shows once it is committed).
func (c *Coordinator) DescribeTransactions(req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		st.ErrorCode = c.describe(id, &st)
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

func (c *Coordinator) describe(id string, st *kmsg.DescribeTransactionsResponseTransactionState) int16 {
	if id == "" {
		return kerr.InvalidRequest.Code
	}
	sh, code := c.shardFor(id)
	if code != 0 {
		return code
	}
	t := sh.get(id)
	if t == nil {
		return kerr.TransactionalIDNotFound.Code
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.cur
	if t.removed || !t.loaded || cur.state == Dead {
		return kerr.TransactionalIDNotFound.Code
	}
	st.State, st.TimeoutMillis, st.StartTimestamp = cur.state.String(), cur.timeoutMs, cur.startMs
	st.ProducerID, st.ProducerEpoch = cur.producerID, cur.epoch
	for _, tp := range cur.partitions {
		if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == tp.Topic {
			st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		st.Topics = append(st.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
	}
	return 0
}

// ListTransactions answers ListTransactions (v0-2) for the transactional
// ids this broker coordinates, filtered by state names (unknown names are
// reported back and match nothing), producer ids, how long the transaction
// has run (v1+) and an RE2 pattern on the id (v2+). While a partition is
// loading the answer is COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) ListTransactions(req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var states []State
	for _, name := range req.StateFilters {
		if s, ok := parseState(name); ok {
			states = append(states, s)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}
	shards, loading := c.allShards()
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	now := c.now().UnixMilli()
	for _, sh := range shards {
		for _, t := range sh.snapshot() {
			t.mu.Lock()
			cur, live := t.cur, t.loaded && !t.removed
			t.mu.Unlock()
			switch {
			case !live || cur.state == Dead:
			case len(req.StateFilters) > 0 && !slices.Contains(states, cur.state):
			case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, cur.producerID):
			case duration >= 0 && now-cur.startMs <= duration:
			case pattern != nil && !pattern.MatchString(t.id):
			default:
				resp.TransactionStates = append(resp.TransactionStates, kmsg.ListTransactionsResponseTransactionState{
					TransactionalID: t.id, ProducerID: cur.producerID, TransactionState: cur.state.String()})
			}
		}
	}
	slices.SortFunc(resp.TransactionStates, func(a, b kmsg.ListTransactionsResponseTransactionState) int {
		return strings.Compare(a.TransactionalID, b.TransactionalID)
	})
	return resp
}
