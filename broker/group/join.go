package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	errUnknownMemberID     = kerr.UnknownMemberID.Code
	errRebalanceInProgress = kerr.RebalanceInProgress.Code
)

func joinError(memberID string, code int16) *kmsg.JoinGroupResponse {
	return &kmsg.JoinGroupResponse{ErrorCode: code, Generation: -1, MemberID: memberID}
}

func syncError(code int16) *kmsg.SyncGroupResponse {
	return &kmsg.SyncGroupResponse{ErrorCode: code}
}

// newMemberID is Kafka's form: the client id (or the static instance id) and
// a random suffix.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// JoinGroup serves JoinGroup (classic groups). The join takes effect at
// once, in the order requests arrive; the returned function waits for the
// rebalance the join takes part in to complete, or for ctx to end (the
// connection went away: the member stays until its session times out, as in
// Kafka).
func (c *Coordinator) JoinGroup(req *kmsg.JoinGroupRequest, clientID, clientHost string) func(context.Context) *kmsg.JoinGroupResponse {
	resp, wait := c.join(req, clientID, clientHost)
	return func(ctx context.Context) *kmsg.JoinGroupResponse {
		if wait != nil {
			select {
			case resp = <-wait:
			case <-ctx.Done():
				resp = joinError(req.MemberID, kerr.RebalanceInProgress.Code)
			}
		}
		out := req.ResponseKind().(*kmsg.JoinGroupResponse)
		out.ErrorCode, out.Generation, out.MemberID, out.LeaderID = resp.ErrorCode, resp.Generation, resp.MemberID, resp.LeaderID
		out.Protocol, out.ProtocolType, out.Members = resp.Protocol, resp.ProtocolType, resp.Members
		if req.Version < 7 && out.Protocol == nil {
			out.Protocol = kmsg.StringPtr("")
		}
		return out
	}
}

// join handles the request; a nil wait means resp is the answer now.
func (c *Coordinator) join(req *kmsg.JoinGroupRequest, clientID, clientHost string) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = session
	}
	switch {
	case req.Group == "":
		return joinError(req.MemberID, kerr.InvalidGroupID.Code), nil
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return joinError(req.MemberID, kerr.InvalidSessionTimeout.Code), nil
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return joinError(req.MemberID, kerr.InconsistentGroupProtocol.Code), nil
	}
	sh, code := c.shardFor(req.Group)
	if code != 0 {
		return joinError(req.MemberID, code), nil
	}
	g := sh.group(req.Group, req.MemberID == "")
	if g == nil {
		return joinError(req.MemberID, kerr.UnknownMemberID.Code), nil
	}
	ps := make([]protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		ps[i] = protocol{name: p.Name, metadata: p.Metadata}
	}
	j := joinRequest{version: req.Version, memberID: req.MemberID, instanceID: req.InstanceID, clientID: clientID,
		clientHost: clientHost, session: session, rebalance: rebalance, protocolType: req.ProtocolType, protocols: ps}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kind == kindConsumer {
		if len(g.cg.members) > 0 {
			return joinError(req.MemberID, kerr.InconsistentGroupProtocol.Code), nil
		}
		// An empty consumer group may become a classic one (its offsets
		// stay).
		g.kind, g.cg, g.protocolType = kindClassic, nil, ""
	}
	switch {
	case g.state == stateDead:
		return joinError(req.MemberID, kerr.CoordinatorNotAvailable.Code), nil
	case !g.supportsProtocolsLocked(req.ProtocolType, ps):
		return joinError(req.MemberID, kerr.InconsistentGroupProtocol.Code), nil
	case req.MemberID == "":
		return g.joinNewLocked(j)
	default:
		return g.joinKnownLocked(j)
	}
}

// joinRequest is what a JoinGroup says of its member.
type joinRequest struct {
	version              int16
	memberID             string
	instanceID           *string
	clientID, clientHost string
	session, rebalance   time.Duration
	protocolType         string
	protocols            []protocol
}

// joinNewLocked handles a join without a member id.
func (g *group) joinNewLocked(j joinRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	if j.instanceID != nil {
		if old, ok := g.members[g.static[*j.instanceID]]; ok {
			return g.replaceStaticLocked(old, j)
		}
	}
	if len(g.members)+len(g.pending) >= g.sh.c.cfg.MaxGroupSize {
		return joinError("", kerr.GroupMaxSizeReached.Code), nil
	}
	prefix := j.clientID
	if j.instanceID != nil {
		prefix = *j.instanceID
	}
	id := newMemberID(prefix)
	if j.instanceID == nil && j.version >= 4 {
		// KIP-394: the member must come back with the id, so that a client
		// that never gets this response leaves no member behind.
		g.pending[id] = time.AfterFunc(j.session, func() {
			g.mu.Lock()
			delete(g.pending, id)
			g.mu.Unlock()
		})
		return joinError(id, kerr.MemberIDRequired.Code), nil
	}
	j.memberID = id
	return nil, g.addMemberLocked(j)
}

// addMemberLocked adds a member that waits for the rebalance it starts (or
// joins).
func (g *group) addMemberLocked(j joinRequest) chan *kmsg.JoinGroupResponse {
	m := &member{id: j.memberID, instanceID: j.instanceID, clientID: j.clientID, clientHost: j.clientHost,
		sessionTimeout: j.session, rebalanceTimeout: j.rebalance, protocols: j.protocols}
	if g.isEmptyLocked() {
		g.protocolType = j.protocolType
	}
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joining = ch
	g.touchLocked(m)
	g.rebalanceForJoinLocked("new member " + m.id + " joined")
	return ch
}

// rebalanceForJoinLocked starts a rebalance for a joining member, or lets it
// join the one under way.
func (g *group) rebalanceForJoinLocked(reason string) {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked(reason)
		g.maybeCompleteJoinLocked()
	case statePreparingRebalance:
		if !g.initialUntil.IsZero() {
			// A new member during the initial delay extends it.
			g.initialUntil = minTime(g.sh.c.now().Add(g.sh.c.cfg.InitialRebalanceDelay), g.rebalanceDeadline)
			g.scheduleLocked()
		}
		g.maybeCompleteJoinLocked()
	}
}

// joinKnownLocked handles a join of a member that has its id.
func (g *group) joinKnownLocked(j joinRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	if t, ok := g.pending[j.memberID]; ok {
		t.Stop()
		delete(g.pending, j.memberID)
		return nil, g.addMemberLocked(j)
	}
	m := g.members[j.memberID]
	switch {
	case j.instanceID != nil && g.static[*j.instanceID] != "" && g.static[*j.instanceID] != j.memberID:
		return joinError(j.memberID, kerr.FencedInstanceID.Code), nil
	case m == nil:
		return joinError(j.memberID, kerr.UnknownMemberID.Code), nil
	}
	if m.joining != nil {
		// A retried join replaces the one still waiting.
		m.joining <- joinError(m.id, kerr.RebalanceInProgress.Code)
		m.joining = nil
	}
	same := sameProtocols(m.protocols, j.protocols)
	switch g.state {
	case stateCompletingRebalance, stateStable:
		if same && (g.state == stateCompletingRebalance || m.id != g.leader) {
			// The member missed the response of this generation.
			g.touchLocked(m)
			return g.currentJoinLocked(m), nil
		}
	case statePreparingRebalance:
	default:
		return joinError(j.memberID, kerr.UnknownMemberID.Code), nil
	}
	m.protocols, m.sessionTimeout, m.rebalanceTimeout = j.protocols, j.session, j.rebalance
	m.clientID, m.clientHost = j.clientID, j.clientHost
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joining = ch
	g.touchLocked(m)
	if g.state == statePreparingRebalance {
		g.maybeCompleteJoinLocked()
	} else {
		g.prepareRebalanceLocked("member " + m.id + " rejoined with new metadata or as leader")
		g.maybeCompleteJoinLocked()
	}
	return nil, ch
}

// currentJoinLocked is the JoinGroup answer of the current generation for m.
func (g *group) currentJoinLocked(m *member) *kmsg.JoinGroupResponse {
	resp := &kmsg.JoinGroupResponse{Generation: g.generation, Protocol: kmsg.StringPtr(g.protocol),
		ProtocolType: kmsg.StringPtr(g.protocolType), LeaderID: g.leader, MemberID: m.id}
	if m.id == g.leader {
		for _, o := range g.members {
			resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{MemberID: o.id,
				InstanceID: o.instanceID, ProtocolMetadata: o.metadataFor(g.protocol)})
		}
	}
	return resp
}

// replaceStaticLocked handles a static member rejoining without its member
// id (a restarted instance): it gets a new id and the old one is fenced
// (KIP-345). A stable group whose member comes back unchanged does not
// rebalance.
func (g *group) replaceStaticLocked(old *member, j joinRequest) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	id := newMemberID(*j.instanceID)
	if old.timer != nil {
		old.timer.Stop()
	}
	if old.joining != nil {
		old.joining <- joinError(old.id, kerr.FencedInstanceID.Code)
	}
	if old.syncing != nil {
		old.syncing <- syncError(kerr.FencedInstanceID.Code)
	}
	delete(g.members, old.id)
	m := &member{id: id, instanceID: j.instanceID, clientID: j.clientID, clientHost: j.clientHost,
		sessionTimeout: j.session, rebalanceTimeout: j.rebalance, protocols: j.protocols, assignment: old.assignment}
	g.members[id] = m
	g.static[*j.instanceID] = id
	wasLeader := g.leader == old.id
	if wasLeader {
		g.leader = id
	}
	g.sh.c.log.Info("static member replaced", "group", g.id, "instance", *j.instanceID, "old_member", old.id, "member", id)
	if g.state == stateStable && sameProtocols(old.protocols, j.protocols) && !wasLeader {
		g.touchLocked(m)
		resp := g.currentJoinLocked(m)
		g.persistAsync() // the new member id must survive a coordinator change
		return resp, nil
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joining = ch
	g.touchLocked(m)
	g.rebalanceForJoinLocked("static member " + *j.instanceID + " replaced")
	return nil, ch
}
