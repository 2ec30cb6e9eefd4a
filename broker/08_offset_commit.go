package broker

// OffsetCommit, versions 0-9: committed offsets go to __consumer_offsets
// through the partition layer and are acknowledged once committed there
// (acks=all semantics); generation fencing as Kafka's (broker/group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetCommit(c *conn, r *request) (*pending, error) {
	req, denied := c.offsetCommitCheck(r.kreq.(*kmsg.OffsetCommitRequest))
	if req == nil {
		resp := r.kreq.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = denied
		return immediate(resp)
	}
	wait := c.srv.groups.OffsetCommit(req)
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := wait(ctx)
		resp.Topics = append(resp.Topics, denied...)
		return outgoing{resp: resp}
	}}, nil
}
