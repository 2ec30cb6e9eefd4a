package broker

// OffsetDelete, version 0: committed offsets of topics a group does not
// consume (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	return &pending{complete: func(ctx context.Context) outgoing {
		return outgoing{resp: c.srv.groups.OffsetDelete(ctx, req)}
	}}, nil
}
