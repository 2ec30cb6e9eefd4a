package broker

// OffsetCommit, versions 0-9: committed offsets go to __consumer_offsets
// through the partition layer and are acknowledged once committed there
// (acks=all semantics); generation fencing as Kafka's (broker/group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetCommit(c *conn, r *request) (*pending, error) {
	wait := c.srv.groups.OffsetCommit(r.kreq.(*kmsg.OffsetCommitRequest))
	return &pending{complete: func(ctx context.Context) outgoing { return outgoing{resp: wait(ctx)} }}, nil
}
