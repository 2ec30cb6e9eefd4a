package broker

// KIP-890 part 1 on the partition leader: before transactional data starts
// a transaction in a partition, the leader asks the producer's transaction
// coordinator (AddPartitionsToTxn v4+ with VerifyOnly) whether the
// partition is part of the producer's ongoing transaction. A producer that
// never added the partition, or whose transaction ended meanwhile (aborted
// by its timeout, fenced), gets an error instead of leaving data no marker
// will ever end: a hanging transaction that holds the last stable offset,
// and every read_committed consumer, back. The check is guarded
// (segment.TxnGuard) against a marker written while it is under way.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/broker/txn"
	"github.com/sedimentio/sediment/segment"
)

// verifyProduce verifies, when the partition's data is transactional and
// its producer has no transaction ongoing in p, that the transaction
// includes the partition. It returns the guard to append with (0: none
// needed) or the Produce error code.
func (c *conn) verifyProduce(req *kmsg.ProduceRequest, topic string, partitionIndex int32, p *partition.Partition, records []byte) (segment.TxnGuard, int16) {
	s := c.srv
	if !s.cfg.TxnVerification {
		return 0, 0
	}
	h, err := segment.ParseBatchHeader(records)
	if err != nil || !h.Transactional() || !h.HasProducer() {
		return 0, 0 // the append reports what is wrong with it
	}
	id := ""
	if req.TransactionID != nil {
		id = *req.TransactionID
	}
	if id == "" {
		// Kafka refuses transactional records without a transactional id.
		return 0, kerr.InvalidRecord.Code
	}
	guard := p.StartTxnVerification(h.ProducerID)
	if guard == 0 {
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(req.TimeoutMillis))
	defer cancel()
	code := s.verifyTxn(ctx, id, h.ProducerID, h.ProducerEpoch, topic, partitionIndex)
	if code != 0 {
		p.EndTxnVerification(h.ProducerID, guard)
		return 0, produceVerifyCode(code, req.Version)
	}
	return guard, 0
}

// produceVerifyCode is the Produce error for a failed verification, as
// Kafka 4 answers it: clients from Produce v11 know TRANSACTION_ABORTABLE
// (the transaction cannot go on; abort it), older ones get
// INVALID_TXN_STATE; a coordinator that cannot answer now is a retriable
// NOT_ENOUGH_REPLICAS, which every client retries; a fenced producer gets
// Produce's INVALID_PRODUCER_EPOCH.
func produceVerifyCode(code int16, version int16) int16 {
	switch code {
	case kerr.TransactionAbortable.Code, kerr.InvalidTxnState.Code:
		if version >= 11 {
			return kerr.TransactionAbortable.Code
		}
		return kerr.InvalidTxnState.Code
	case kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.InvalidProducerIDMapping.Code:
		return code
	default: // not the coordinator, loading, not available, concurrent, timeouts, network
		return kerr.NotEnoughReplicas.Code
	}
}

// verifyTxn asks the coordinator of transactional id whether its producer's
// ongoing transaction includes topic/partition: directly when this broker is
// that coordinator, else in an AddPartitionsToTxn (v5, VerifyOnly) over the
// inter-broker listener. It returns the partition's code.
func (s *Server) verifyTxn(ctx context.Context, id string, pid int64, epoch int16, topic string, partition int32) int16 {
	n := s.txnPartitions()
	if n <= 0 {
		return kerr.CoordinatorNotAvailable.Code
	}
	coordinator, code := s.leaderOf(txn.StateTopic, txn.PartitionFor(id, n))
	if code != 0 {
		return kerr.CoordinatorNotAvailable.Code
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = id, pid, epoch, true
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = topic, []int32{partition}
	tr.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{tt}
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{tr}

	var resp *kmsg.AddPartitionsToTxnResponse
	if coordinator == s.cfg.NodeID {
		resp = s.txns.AddPartitionsToTxn(ctx, req)
	} else {
		cl, err := s.markers.client(coordinator)
		if err != nil {
			return kerr.CoordinatorNotAvailable.Code
		}
		kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return kerr.RequestTimedOut.Code
			}
			return kerr.NetworkException.Code
		}
		resp = kresp.(*kmsg.AddPartitionsToTxnResponse)
	}
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	for _, rt := range resp.Transactions {
		for _, t := range rt.Topics {
			for _, p := range t.Partitions {
				if rt.TransactionalID == id && t.Topic == topic && p.Partition == partition {
					return p.ErrorCode
				}
			}
		}
	}
	return kerr.UnknownServerError.Code // the coordinator did not answer for it
}
