package broker

// LeaveGroup, versions 0-5 (v3+: a batch of members, static ones by
// instance id).

import "github.com/twmb/franz-go/pkg/kmsg"

func handleLeaveGroup(c *conn, r *request) (*pending, error) {
	return immediate(c.srv.groups.LeaveGroup(r.kreq.(*kmsg.LeaveGroupRequest)))
}
