package broker

// AddOffsetsToTxn, versions 0-4: the __consumer_offsets partition of a
// group joins the producer's transaction, so that the offsets it commits
// with TxnOffsetCommit are committed or aborted with the transaction.
// __consumer_offsets is created first if it does not exist, as
// FindCoordinator creates it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddOffsetsToTxn(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	if code := c.addOffsetsDenied(req); code != 0 {
		return deny(req, code)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		if _, err := c.srv.ensureOffsetsTopic(ctx); err != nil {
			// The coordinator answers COORDINATOR_NOT_AVAILABLE while the
			// topic does not exist.
			c.log.Warn("AddOffsetsToTxn: creating the offsets topic failed", "err", err)
		}
		return outgoing{resp: c.srv.txns.AddOffsetsToTxn(ctx, req)}
	}}, nil
}
