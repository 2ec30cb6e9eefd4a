package broker

// EndTxn, versions 0-4: the producer commits or aborts its transaction. The
// transaction coordinator (broker/txn) answers once PrepareCommit or
// PrepareAbort is committed to __transaction_state; the markers follow.
// Version 5 belongs to transaction version 2 (KIP-890 part 2), which the
// coordinator does not speak, so it is not served: clients keep adding
// partitions with AddPartitionsToTxn.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleEndTxn(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	if !c.authorizedTxnID(kmsg.ACLOperationWrite, req.TransactionalID) {
		return deny(req, kerr.TransactionalIDAuthorizationFailed.Code)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		return outgoing{resp: c.srv.txns.EndTxn(ctx, req)}
	}}, nil
}
