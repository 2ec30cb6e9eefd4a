package broker

// DeleteGroups, versions 0-2: groups without members, with their committed
// offsets (tombstones in __consumer_offsets).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(c *conn, r *request) (*pending, error) {
	req, denied := c.deleteGroupsCheck(r.kreq.(*kmsg.DeleteGroupsRequest))
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := c.srv.groups.DeleteGroups(ctx, req)
		resp.Groups = append(resp.Groups, denied...)
		return outgoing{resp: resp}
	}}, nil
}
