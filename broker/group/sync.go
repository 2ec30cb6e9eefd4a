package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup serves SyncGroup: the leader hands in the assignment of the
// generation, which is written to __consumer_offsets before any member gets
// its part; the others wait for it. The request takes effect at once; the
// returned function waits for the answer or for ctx to end.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest) func(context.Context) *kmsg.SyncGroupResponse {
	resp, wait := c.sync(req)
	return func(ctx context.Context) *kmsg.SyncGroupResponse {
		if wait != nil {
			select {
			case resp = <-wait:
			case <-ctx.Done():
				resp = syncError(kerr.RebalanceInProgress.Code)
			}
		}
		out := req.ResponseKind().(*kmsg.SyncGroupResponse)
		out.ErrorCode, out.MemberAssignment = resp.ErrorCode, resp.MemberAssignment
		if out.MemberAssignment == nil {
			out.MemberAssignment = []byte{}
		}
		out.ProtocolType, out.Protocol = resp.ProtocolType, resp.Protocol
		return out
	}
}

func (c *Coordinator) sync(req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, chan *kmsg.SyncGroupResponse) {
	if req.Group == "" {
		return syncError(kerr.InvalidGroupID.Code), nil
	}
	sh, code := c.shardFor(req.Group)
	if code != 0 {
		return syncError(code), nil
	}
	g := sh.group(req.Group, false)
	if g == nil {
		return syncError(kerr.UnknownMemberID.Code), nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[req.MemberID]
	switch {
	case g.state == stateDead:
		return syncError(kerr.CoordinatorNotAvailable.Code), nil
	case req.InstanceID != nil && g.static[*req.InstanceID] != "" && g.static[*req.InstanceID] != req.MemberID:
		return syncError(kerr.FencedInstanceID.Code), nil
	case m == nil:
		return syncError(kerr.UnknownMemberID.Code), nil
	case req.Generation != g.generation:
		return syncError(kerr.IllegalGeneration.Code), nil
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return syncError(kerr.InconsistentGroupProtocol.Code), nil
	}
	switch g.state {
	case statePreparingRebalance:
		return syncError(kerr.RebalanceInProgress.Code), nil
	case stateStable:
		g.touchLocked(m)
		return g.syncAnswerLocked(m), nil
	case stateCompletingRebalance:
	default:
		return syncError(kerr.UnknownMemberID.Code), nil
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	if m.syncing != nil {
		m.syncing <- syncError(kerr.RebalanceInProgress.Code)
	}
	m.syncing = ch
	g.touchLocked(m)
	if m.id == g.leader && !g.writing {
		for _, a := range req.GroupAssignment {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = a.MemberAssignment
			}
		}
		g.writing = true
		gen := g.generation
		w := sh.append(g.classicRecordsLocked())
		c.wg.Go(func() { g.assignmentWritten(gen, sh.wait(sh.ctx, w)) })
	}
	return nil, ch
}

// assignmentWritten completes the generation once its assignment is
// committed: the group is stable and every member waiting in SyncGroup gets
// its part. A failed write starts the rebalance over.
func (g *group) assignmentWritten(gen int32, code int16) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.generation != gen || g.state != stateCompletingRebalance {
		return
	}
	g.writing = false
	if code != 0 {
		g.sh.c.log.Warn("writing the group's assignment failed; rebalancing again", "group", g.id,
			"generation", gen, "error_code", code)
		for _, m := range g.members {
			if m.syncing != nil {
				m.syncing <- syncError(code)
				m.syncing = nil
			}
			m.assignment = nil
		}
		g.prepareRebalanceLocked("writing the assignment failed")
		return
	}
	g.setStateLocked(stateStable)
	for _, m := range g.members {
		if m.syncing != nil {
			m.syncing <- g.syncAnswerLocked(m)
			m.syncing = nil
		}
	}
}

func (g *group) syncAnswerLocked(m *member) *kmsg.SyncGroupResponse {
	return &kmsg.SyncGroupResponse{MemberAssignment: m.assignment,
		ProtocolType: kmsg.StringPtr(g.protocolType), Protocol: kmsg.StringPtr(g.protocol)}
}
