package broker

// OffsetDelete, version 0: committed offsets of topics a group does not
// consume (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(c *conn, r *request) (*pending, error) {
	req, denied, code := c.offsetDeleteCheck(r.kreq.(*kmsg.OffsetDeleteRequest))
	if code != 0 {
		return deny(r.kreq, code)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := c.srv.groups.OffsetDelete(ctx, req)
		resp.Topics = append(resp.Topics, denied...)
		return outgoing{resp: resp}
	}}, nil
}
