package broker

// LeaveGroup, versions 0-5 (v3+: a batch of members, static ones by
// instance id).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	if !c.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		return deny(req, kerr.GroupAuthorizationFailed.Code)
	}
	return immediate(c.srv.groups.LeaveGroup(req))
}
