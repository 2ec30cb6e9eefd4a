package broker

// ConsumerGroupHeartbeat, versions 0-1 (KIP-848): the consumer group
// protocol, with server-side assignors (uniform, range), member epochs and
// incremental revoke-then-assign (broker/group). v1 members name themselves.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleConsumerGroupHeartbeat(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if code := c.consumerGroupHeartbeatDenied(req); code != 0 {
		return deny(req, code)
	}
	wait := c.srv.groups.ConsumerGroupHeartbeat(req, r.clientID, c.clientHost())
	return &pending{complete: func(ctx context.Context) outgoing { return outgoing{resp: wait(ctx)} }}, nil
}
