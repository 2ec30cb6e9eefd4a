package broker

// SyncGroup, versions 0-5: the leader's assignment is written to
// __consumer_offsets before members get their parts (broker/group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	if !c.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		return deny(req, kerr.GroupAuthorizationFailed.Code)
	}
	wait := c.srv.groups.SyncGroup(req)
	return &pending{complete: func(ctx context.Context) outgoing { return outgoing{resp: wait(ctx)} }}, nil
}
