package broker

// Heartbeat, versions 0-4: keeps a classic group member's session alive and
// tells it to rejoin (REBALANCE_IN_PROGRESS).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	if !c.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		return deny(req, kerr.GroupAuthorizationFailed.Code)
	}
	return immediate(c.srv.groups.Heartbeat(req))
}
