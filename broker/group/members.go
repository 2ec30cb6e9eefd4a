package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat serves Heartbeat: it keeps a member's session alive and tells it
// when to rejoin.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.heartbeat(req)
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	sh, code := c.shardFor(req.Group)
	if code != 0 {
		return code
	}
	g := sh.group(req.Group, false)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[req.MemberID]
	switch {
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case req.InstanceID != nil && g.static[*req.InstanceID] != "" && g.static[*req.InstanceID] != req.MemberID:
		return kerr.FencedInstanceID.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case statePreparingRebalance:
		g.touchLocked(m)
		return kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		g.touchLocked(m)
		return 0
	default:
		return kerr.UnknownMemberID.Code
	}
}

// LeaveGroup serves LeaveGroup: v0-2 name one member, v3+ a batch, static
// members by instance id.
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	var (
		g    *group
		code int16
	)
	if req.Group == "" {
		code = kerr.InvalidGroupID.Code
	} else if sh, c0 := c.shardFor(req.Group); c0 != 0 {
		code = c0
	} else if g = sh.group(req.Group, false); g == nil {
		code = kerr.UnknownMemberID.Code
	}
	if code != 0 && (req.Version < 3 || code != kerr.UnknownMemberID.Code) {
		resp.ErrorCode = code
		return resp
	}
	if g != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.state == stateDead {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
	}
	for _, l := range leaving {
		mc := kerr.UnknownMemberID.Code
		if g != nil {
			mc = g.leaveLocked(l.MemberID, l.InstanceID)
		}
		resp.Members = append(resp.Members, kmsg.LeaveGroupResponseMember{MemberID: l.MemberID, InstanceID: l.InstanceID, ErrorCode: mc})
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (g *group) leaveLocked(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		id, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case memberID != "" && memberID != id:
			return kerr.FencedInstanceID.Code
		}
		memberID = id
	}
	if t, ok := g.pending[memberID]; ok {
		t.Stop()
		delete(g.pending, memberID)
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.sh.c.log.Info("group member left", "group", g.id, "member", memberID)
	g.removeMemberLocked(m, "member "+memberID+" left")
	return 0
}
