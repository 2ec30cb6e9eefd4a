package broker

// TxnOffsetCommit, versions 0-4: a transactional producer commits a
// group's offsets inside its transaction (KIP-98, with KIP-447's
// generation and member fencing from v3). The group coordinator
// (broker/group) appends them to __consumer_offsets as a transactional
// batch and answers once it is committed there; they stay invisible to
// OffsetFetch until the transaction's COMMIT marker reaches the partition
// (WriteTxnMarkers), and an ABORT drops them. Versions 5+ belong to
// transaction version 2 (KIP-890 part 2), which is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleTxnOffsetCommit(c *conn, r *request) (*pending, error) {
	req, denied := c.txnOffsetCommitCheck(r.kreq.(*kmsg.TxnOffsetCommitRequest))
	if req == nil {
		resp := r.kreq.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		resp.Topics = denied
		return immediate(resp)
	}
	wait := c.srv.groups.TxnOffsetCommit(req)
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := wait(ctx)
		resp.Topics = append(resp.Topics, denied...)
		return outgoing{resp: resp}
	}}, nil
}
