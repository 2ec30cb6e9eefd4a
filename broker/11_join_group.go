package broker

// JoinGroup, versions 0-9 (classic groups): the group coordinator
// (broker/group) takes the join in arrival order; the response waits, on
// the connection's writer, for the rebalance to complete. v4+ requires a
// member id (KIP-394), v5+ static members (KIP-345).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleJoinGroup(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	if !c.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		return deny(req, kerr.GroupAuthorizationFailed.Code)
	}
	wait := c.srv.groups.JoinGroup(req, r.clientID, c.clientHost())
	return &pending{complete: func(ctx context.Context) outgoing { return outgoing{resp: wait(ctx)} }}, nil
}
