package txn

// AddPartitionsToTxn (v0-5; v4+ batches transactions, and its VerifyOnly
// mode is KIP-890 part 1's check by a partition leader) and
// AddOffsetsToTxn.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
)

// AddPartitionsToTxn answers AddPartitionsToTxn. Before v4 it is a
// producer adding partitions to its transaction; from v4 it is a broker
// (the API file checks CLUSTER_ACTION) sending several transactions, each
// either added or, with VerifyOnly, only checked: every partition is
// answered 0 if it is part of the producer's ongoing transaction and
// TRANSACTION_ABORTABLE if not, as Kafka 4 answers (the partition leader
// tells producers too old for that code INVALID_TXN_STATE). A partition that does not exist fails the
// transaction's request: it gets UNKNOWN_TOPIC_OR_PARTITION and the others
// OPERATION_NOT_ATTEMPTED. Adding blocks until the new set of partitions is
// committed to __transaction_state.
func (c *Coordinator) AddPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]topicPartitions, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = topicPartitions{t.Topic, t.Partitions}
		}
		codes := c.addOrVerify(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics)
		for i, t := range topics {
			rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: t.topic}
			for j, p := range t.partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p,
					ErrorCode: fencedFor(codes[i][j], req.Version, 2)})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp.Transactions = make([]kmsg.AddPartitionsToTxnResponseTransaction, len(req.Transactions))
	// Transactions are answered concurrently (each may wait for a write),
	// a bounded number at a time.
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentAdds)
	for i, tr := range req.Transactions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			topics := make([]topicPartitions, len(tr.Topics))
			for j, t := range tr.Topics {
				topics[j] = topicPartitions{t.Topic, t.Partitions}
			}
			codes := c.addOrVerify(ctx, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly, topics)
			rt := kmsg.AddPartitionsToTxnResponseTransaction{TransactionalID: tr.TransactionalID}
			for j, t := range topics {
				tt := kmsg.AddPartitionsToTxnResponseTransactionTopic{Topic: t.topic}
				for k, p := range t.partitions {
					tt.Partitions = append(tt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p, ErrorCode: codes[j][k]})
				}
				rt.Topics = append(rt.Topics, tt)
			}
			resp.Transactions[i] = rt
		})
	}
	wg.Wait()
	return resp
}

// AddOffsetsToTxn answers AddOffsetsToTxn (v0-4): the __consumer_offsets
// partition of the group joins the transaction, so that the offsets the
// producer commits with TxnOffsetCommit are committed or aborted with it.
// The broker creates __consumer_offsets before calling (as FindCoordinator
// does); while it does not exist the answer is COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) AddOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	n := c.d.TopicPartitions(group.OffsetsTopic)
	if n <= 0 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	tp := TopicPartition{group.OffsetsTopic, group.PartitionFor(req.Group, n)}
	if req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	code := c.add(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []TopicPartition{tp})
	resp.ErrorCode = fencedFor(code, req.Version, 2)
	return resp
}

// maxConcurrentAdds bounds the transactions of one batched
// AddPartitionsToTxn answered at the same time.
const maxConcurrentAdds = 64

// topicPartitions is one topic of a request, its partitions deduplicated.
type topicPartitions struct {
	topic      string
	partitions []int32
}

// addOrVerify answers one transaction of an AddPartitionsToTxn request: a
// code per partition, in the order of topics (deduplicated in place).
func (c *Coordinator) addOrVerify(ctx context.Context, id string, pid int64, epoch int16, verifyOnly bool, topics []topicPartitions) [][]int16 {
	codes := make([][]int16, len(topics))
	var tps []TopicPartition
	unknown := false
	seen := map[TopicPartition]bool{}
	for i := range topics {
		t := &topics[i]
		kept := make([]int32, 0, len(t.partitions)) // the request's slice is left as it came
		n := c.d.TopicPartitions(t.topic)
		for _, p := range t.partitions {
			tp := TopicPartition{t.topic, p}
			if seen[tp] {
				continue
			}
			seen[tp] = true
			kept = append(kept, p)
			if p < 0 || p >= n {
				unknown = true
			}
			tps = append(tps, tp)
		}
		t.partitions = kept
		codes[i] = make([]int16, len(kept))
	}
	fill := func(code func(TopicPartition) int16) [][]int16 {
		for i, t := range topics {
			for j, p := range t.partitions {
				codes[i][j] = code(TopicPartition{t.topic, p})
			}
		}
		return codes
	}
	if unknown {
		return fill(func(tp TopicPartition) int16 {
			if tp.Partition < 0 || tp.Partition >= c.d.TopicPartitions(tp.Topic) {
				return kerr.UnknownTopicOrPartition.Code
			}
			return kerr.OperationNotAttempted.Code
		})
	}
	if verifyOnly {
		all, missing := c.verify(id, pid, epoch, tps)
		return fill(func(tp TopicPartition) int16 {
			if all != 0 {
				return all
			}
			if missing[tp] {
				return kerr.TransactionAbortable.Code
			}
			return 0
		})
	}
	code := c.add(ctx, id, pid, epoch, tps)
	return fill(func(TopicPartition) int16 { return code })
}

// add adds tps to the producer's transaction, starting one if it has none.
//
// A producer that ended its last transaction sends the first
// AddPartitionsToTxn of its next one as soon as EndTxn is answered, which
// is before that transaction's markers and its Complete state are written.
// Kafka refuses it with CONCURRENT_TRANSACTIONS and the client retries
// after a backoff (20 ms in kgo and the Java client), longer than the
// completion itself takes here. So add waits, up to c.settleWait (5 s) and no
// longer than the request, for the transactional id to settle, and decides
// again; only then does it answer CONCURRENT_TRANSACTIONS.
func (c *Coordinator) add(ctx context.Context, id string, pid int64, epoch int16, tps []TopicPartition) int16 {
	var limit <-chan time.Time
	for {
		var settled <-chan struct{}
		var unloaded <-chan struct{}
		code := c.change(ctx, id, func(sh *shard, t *txn) (<-chan int16, int16) {
			ch, code := sh.addLocked(t, pid, epoch, tps)
			if code == kerr.ConcurrentTransactions.Code && t.writing {
				settled, unloaded = t.settled, sh.ctx.Done()
			}
			return ch, code
		})
		if settled == nil {
			return code
		}
		if limit == nil {
			timer := time.NewTimer(c.settleWait)
			defer timer.Stop()
			limit = timer.C
		}
		select {
		case <-settled:
		case <-limit:
			return code
		case <-unloaded:
			return code
		case <-ctx.Done():
			return code
		}
	}
}

func (sh *shard) addLocked(t *txn, pid int64, epoch int16, tps []TopicPartition) (<-chan int16, int16) {
	cur := t.cur
	switch {
	case len(tps) == 0:
		return nil, 0 // nothing to add: no transaction starts
	case t.removed || pid != cur.producerID:
		return nil, kerr.InvalidProducerIDMapping.Code
	case epoch != cur.epoch:
		return nil, kerr.ProducerFenced.Code
	case t.writing:
		return nil, kerr.ConcurrentTransactions.Code
	}
	switch cur.state {
	case Ongoing:
		all := true
		for _, tp := range tps {
			all = all && cur.has(tp)
		}
		if all {
			return nil, 0 // nothing to write
		}
	case Empty, CompleteCommit, CompleteAbort:
	default: // PrepareCommit, PrepareAbort: the last transaction is ending
		return nil, kerr.ConcurrentTransactions.Code
	}
	next := cur
	now := sh.c.now().UnixMilli()
	if cur.state != Ongoing {
		next.startMs = now
	}
	next.state, next.partitions, next.updateMs = Ongoing, cur.withPartitions(tps), now
	return sh.writeLocked(t, next, nil), 0
}

// verify is KIP-890 part 1's check, for a partition leader about to take
// transactional data: all is the code of every partition, or 0 and missing
// names the partitions not in the producer's ongoing transaction.
func (c *Coordinator) verify(id string, pid int64, epoch int16, tps []TopicPartition) (all int16, missing map[TopicPartition]bool) {
	if id == "" {
		return kerr.InvalidRequest.Code, nil
	}
	sh, code := c.shardFor(id)
	if code != 0 {
		return code, nil
	}
	t := sh.get(id)
	if t == nil {
		return kerr.InvalidProducerIDMapping.Code, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.cur
	switch {
	case t.removed || pid != cur.producerID:
		return kerr.InvalidProducerIDMapping.Code, nil
	case epoch != cur.epoch:
		return kerr.ProducerFenced.Code, nil
	case cur.state == PrepareCommit || cur.state == PrepareAbort:
		return kerr.ConcurrentTransactions.Code, nil
	}
	missing = map[TopicPartition]bool{}
	for _, tp := range tps {
		if !cur.has(tp) {
			missing[tp] = true
		}
	}
	return 0, missing
}
