package broker

// AddPartitionsToTxn, versions 0-5. Before v4 a transactional producer adds
// the partitions it is about to write to its transaction; v4+ batches
// transactions and is sent by brokers, its VerifyOnly mode being KIP-890
// part 1's check by a partition leader (Kafka requires CLUSTER_ACTION for
// it; Sediment has no authorizer yet). The transaction coordinator
// (broker/txn) answers once the new partitions are committed to
// __transaction_state.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddPartitionsToTxn(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	if resp := c.addPartitionsDenied(req); resp != nil {
		return immediate(resp)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		return outgoing{resp: c.srv.txns.AddPartitionsToTxn(ctx, req)}
	}}, nil
}
