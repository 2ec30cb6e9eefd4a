package group

// KIP-848 consumer groups: members heartbeat (ConsumerGroupHeartbeat) with
// their subscriptions and owned partitions; the coordinator computes the
// target assignment with a server-side assignor whenever the group epoch
// moves (membership, subscriptions, or the subscribed topics' partitions
// change), and hands each member its part incrementally: partitions it must
// give up are revoked first (its epoch stays until it reports them gone),
// then it moves to the target epoch and receives the partitions no other
// member still owns. Offset commits are fenced by the member epoch.

import (
	"context"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type groupKind int8

const (
	kindClassic groupKind = iota
	kindConsumer
)

func (k groupKind) String() string {
	if k == kindConsumer {
		return "consumer"
	}
	return "classic"
}

// consumerGroup is the state of a KIP-848 group.
type consumerGroup struct {
	epoch       int32 // the group epoch
	assignEpoch int32 // the epoch the target assignment was computed for
	assignor    string
	members     map[string]*cmember
	static      map[string]string // instance id -> member id
	target      map[string]assignment
	topicsHash  uint64 // the subscribed topics' metadata the target was computed from
}

// cmember is one member of a consumer group.
type cmember struct {
	id                   string
	instanceID, rackID   *string
	clientID, clientHost string
	topics               []string
	regex                *string
	assignor             string
	rebalanceTimeout     time.Duration

	epoch, prevEpoch int32
	assigned         assignment // what the member may own now
	revoking         assignment // taken from it, not yet reported released
	revokeSince      time.Time
	version, sent    int  // assignment versions made and sent
	left             bool // a static member that left for now (epoch -2)

	timer *time.Timer
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{assignor: "uniform", members: map[string]*cmember{}, static: map[string]string{},
		target: map[string]assignment{}}
}

// consumerState is the group's state as ListGroups and ConsumerGroupDescribe
// name it.
func (cg *consumerGroup) state() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.epoch != cg.assignEpoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignEpoch || len(m.revoking) > 0 || !m.assigned.equal(cg.target[m.id]) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// ConsumerGroupHeartbeat serves ConsumerGroupHeartbeat v0-1. The heartbeat
// takes effect at once; the returned function waits for the state it
// changed to be committed in __consumer_offsets, and answers.
func (c *Coordinator) ConsumerGroupHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string) func(context.Context) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.MemberEpoch = req.MemberEpoch
	done := func(code int16, msg string) func(context.Context) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return func(context.Context) *kmsg.ConsumerGroupHeartbeatResponse { return resp }
	}
	if code, msg := c.validateHeartbeat(req); code != 0 {
		return done(code, msg)
	}
	sh, code := c.shardFor(req.Group)
	if code != 0 {
		return done(code, "")
	}
	g := sh.group(req.Group, req.MemberEpoch == 0)
	if g == nil {
		return done(kerr.GroupIDNotFound.Code, "group "+req.Group+" does not exist")
	}
	g.mu.Lock()
	code, msg, w := g.consumerHeartbeatLocked(req, clientID, clientHost, resp)
	g.mu.Unlock()
	if code != 0 {
		return done(code, msg)
	}
	return func(ctx context.Context) *kmsg.ConsumerGroupHeartbeatResponse {
		if w != nil {
			if code := sh.wait(ctx, *w); code != 0 {
				resp.ErrorCode, resp.Assignment = code, nil
			}
		}
		return resp
	}
}

// validateHeartbeat applies Kafka's request checks.
func (c *Coordinator) validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (int16, string) {
	bad := func(msg string) (int16, string) { return kerr.InvalidRequest.Code, msg }
	switch {
	case req.Group == "":
		return bad("GroupId can't be empty")
	case req.Version >= 1 && req.MemberID == "":
		return bad("MemberId can't be empty")
	case req.MemberEpoch < -2:
		return bad("MemberEpoch is invalid")
	case req.MemberEpoch == -2 && req.InstanceID == nil:
		return bad("InstanceId can't be null with MemberEpoch -2")
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis == -1:
		return bad("RebalanceTimeoutMs must be provided in the first request")
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return bad("SubscribedTopicNames or SubscribedTopicRegex must be set in the first request")
	case req.MemberEpoch == 0 && (req.Topics == nil || len(req.Topics) > 0):
		return bad("TopicPartitions must be empty when (re-)joining")
	case req.ServerAssignor != nil && *req.ServerAssignor != "uniform" && *req.ServerAssignor != "range":
		return kerr.UnsupportedAssignor.Code, "assignor " + *req.ServerAssignor + " is not supported (uniform, range)"
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression.Code, err.Error()
		}
	}
	return 0, ""
}

// consumerHeartbeatLocked applies a heartbeat and fills resp. It returns an
// error code, or the write that must be committed before resp goes out.
func (g *group) consumerHeartbeatLocked(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string,
	resp *kmsg.ConsumerGroupHeartbeatResponse) (int16, string, *pendingWrite) {
	c := g.sh.c
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code, "", nil
	}
	converted := false
	if g.kind == kindClassic {
		if !g.isEmptyLocked() || len(g.pending) > 0 {
			return kerr.GroupIDNotFound.Code, "group " + g.id + " is a classic group with members", nil
		}
		g.kind, g.cg, converted = kindConsumer, newConsumerGroup(), true
		g.protocolType, g.protocol, g.leader = "consumer", "", ""
	}
	cg := g.cg
	id := req.MemberID
	if id == "" {
		id = newMemberID(clientID) // v0: the coordinator names the member
	}
	changed := converted
	joined := false // a new member: the group epoch moves once
	var m *cmember
	switch {
	case req.MemberEpoch < 0:
		m = cg.members[id]
		if m == nil {
			return kerr.UnknownMemberID.Code, "", nil
		}
		resp.MemberID, resp.MemberEpoch = &id, req.MemberEpoch
		if req.MemberEpoch == -2 {
			// A static member leaving for a restart keeps its assignment
			// for a session timeout.
			m.left = true
		} else {
			g.removeConsumerLocked(m, "member left")
		}
		return 0, "", g.writeConsumerLocked(false)
	case req.MemberEpoch == 0:
		var (
			code     int16
			takeover bool
		)
		if m, takeover, code = g.joinConsumerLocked(id, req, clientID, clientHost); code != 0 {
			return code, "", nil
		}
		joined, changed = !takeover, true
	default:
		m = cg.members[id]
		if m == nil || m.left {
			return kerr.UnknownMemberID.Code, "", nil
		}
		if req.MemberEpoch != m.epoch && !(req.MemberEpoch == m.prevEpoch && ownsSubset(req.Topics, m.assigned)) {
			return kerr.FencedMemberEpoch.Code, "", nil
		}
	}
	if g.updateMemberLocked(m, req) {
		changed = true
	} else if joined {
		cg.epoch++
	}
	if g.refreshTargetLocked() {
		changed = true
	}
	fenced, moved := g.reconcileLocked(m, req.Topics, c.now())
	if fenced {
		g.removeConsumerLocked(m, "member did not revoke its partitions within its rebalance timeout")
		g.writeConsumerLocked(true)
		return kerr.FencedMemberEpoch.Code, "", nil
	}
	changed = changed || moved
	g.touchConsumerLocked(m)
	resp.MemberID, resp.MemberEpoch = &id, m.epoch
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval / time.Millisecond)
	if req.MemberEpoch == 0 || m.sent != m.version || (req.Topics != nil && !m.assigned.equal(fromRequest(req.Topics))) {
		resp.Assignment = toResponse(m.assigned)
		m.sent = m.version
	}
	if !changed {
		return 0, "", nil
	}
	return 0, "", g.writeConsumerLocked(false)
}

// joinConsumerLocked adds a member joining (epoch 0), replacing a static
// member that left with the same instance id, or resetting a member that
// rejoins with its id.
func (g *group) joinConsumerLocked(id string, req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string) (m *cmember, takeover bool, code int16) {
	cg := g.cg
	m = &cmember{id: id, clientID: clientID, clientHost: clientHost, instanceID: req.InstanceID,
		assigned: assignment{}, revoking: assignment{}}
	if req.InstanceID != nil {
		if oldID, ok := cg.static[*req.InstanceID]; ok && oldID != id {
			old := cg.members[oldID]
			if old != nil && !old.left {
				return nil, false, kerr.UnreleasedInstanceID.Code
			}
			if old != nil {
				// The restarted instance takes over its predecessor's
				// assignment and epoch: no rebalance (KIP-848 static
				// membership).
				if old.timer != nil {
					old.timer.Stop()
				}
				delete(cg.members, oldID)
				m.epoch, m.prevEpoch, m.assigned, m.revoking = old.epoch, old.prevEpoch, old.assigned, old.revoking
				m.topics, m.regex, m.assignor, m.rebalanceTimeout = old.topics, old.regex, old.assignor, old.rebalanceTimeout
				cg.target[id] = cg.target[oldID]
				delete(cg.target, oldID)
				cg.members[id] = m
				cg.static[*req.InstanceID] = id
				m.version++
				return m, true, 0
			}
		}
	}
	if old := cg.members[id]; old != nil {
		// A member rejoining with its id starts afresh: what it owned is
		// released.
		if old.timer != nil {
			old.timer.Stop()
		}
		delete(cg.members, id)
	} else if len(cg.members) >= g.sh.c.cfg.MaxGroupSize {
		return nil, false, kerr.GroupMaxSizeReached.Code
	}
	cg.members[id] = m
	if req.InstanceID != nil {
		cg.static[*req.InstanceID] = id
	}
	g.sh.c.log.Info("consumer group member joined", "group", g.id, "member", id)
	return m, false, 0
}

// updateMemberLocked applies what the heartbeat says of the member; it
// reports whether the group epoch moved (a new subscription or assignor).
func (g *group) updateMemberLocked(m *cmember, req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	cg := g.cg
	bump := false
	if req.RebalanceTimeoutMillis >= 0 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.SubscribedTopicNames != nil {
		topics := slices.Sorted(slices.Values(req.SubscribedTopicNames))
		if !slices.Equal(topics, m.topics) {
			m.topics, bump = topics, true
		}
	}
	if req.SubscribedTopicRegex != nil {
		var re *string
		if *req.SubscribedTopicRegex != "" {
			re = req.SubscribedTopicRegex
		}
		if deref(re) != deref(m.regex) {
			m.regex, bump = re, true
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, bump = *req.ServerAssignor, true
	}
	if bump {
		cg.epoch++
	}
	return bump
}

// subscribedTopics resolves a member's subscription against the topics that
// exist: names, and a regex matched against whole names (internal topics
// excluded), as Kafka does.
func (g *group) subscribedTopics(m *cmember, all map[string]topicInfo) []topicInfo {
	var out []topicInfo
	seen := map[string]bool{}
	for _, name := range m.topics {
		if t, ok := all[name]; ok && !seen[name] {
			out = append(out, t)
			seen[name] = true
		}
	}
	if m.regex != nil {
		if re, err := regexp.Compile("^(?:" + *m.regex + ")$"); err == nil {
			for name, t := range all {
				if !seen[name] && !strings.HasPrefix(name, "__") && re.MatchString(name) {
					out = append(out, t)
					seen[name] = true
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b topicInfo) int { return strings.Compare(a.name, b.name) })
	return out
}

// refreshTargetLocked recomputes the target assignment when the group epoch
// moved or the subscribed topics changed (created, deleted, more
// partitions); it reports whether anything changed.
func (g *group) refreshTargetLocked() bool {
	cg := g.cg
	all := map[string]topicInfo{}
	for _, t := range g.sh.c.topics() {
		all[t.name] = t
	}
	subs := make(map[string][]topicInfo, len(cg.members))
	h := fnv.New64a()
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		ts := g.subscribedTopics(cg.members[id], all)
		subs[id] = ts
		for _, t := range ts {
			h.Write([]byte(t.name))
			h.Write(t.id[:])
			h.Write([]byte{byte(t.partitions >> 24), byte(t.partitions >> 16), byte(t.partitions >> 8), byte(t.partitions)})
		}
	}
	sum := h.Sum64()
	if sum != cg.topicsHash && cg.assignEpoch == cg.epoch {
		cg.epoch++ // the subscribed topics' metadata changed
	}
	if cg.assignEpoch == cg.epoch {
		return false
	}
	cg.topicsHash = sum
	cg.assignor = g.groupAssignorLocked()
	cg.target = assign(cg.assignor, subs, cg.target)
	cg.assignEpoch = cg.epoch
	g.sh.c.metrics.rebalances.Inc()
	g.sh.c.log.Info("consumer group assignment computed", "group", g.id, "group_epoch", cg.epoch,
		"members", len(cg.members), "assignor", cg.assignor)
	return true
}

// groupAssignorLocked is the assignor most members ask for, uniform by
// default.
func (g *group) groupAssignorLocked() string {
	votes := map[string]int{}
	for _, m := range g.cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := "uniform"
	for _, a := range []string{"uniform", "range"} {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// reconcileLocked moves m toward its target: first it gives up what it must
// (its epoch stays until it reports them released), then it takes the target
// epoch and the partitions nobody else still owns. owned is what the member
// reports owning (nil: unchanged). It reports whether m must be fenced (it
// did not revoke within its rebalance timeout) and whether m changed.
func (g *group) reconcileLocked(m *cmember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic, now time.Time) (fenced, changed bool) {
	cg := g.cg
	if len(m.revoking) > 0 && owned != nil {
		still := fromRequest(owned)
		for t, ps := range m.revoking.clone() {
			for _, p := range ps {
				if !still.has(t, p) {
					m.revoking.remove(t, p)
					changed = true
				}
			}
		}
	}
	if len(m.revoking) > 0 {
		return m.rebalanceTimeout > 0 && now.Sub(m.revokeSince) > m.rebalanceTimeout, changed
	}
	target := cg.target[m.id]
	if m.epoch == cg.assignEpoch && m.assigned.equal(target) {
		return false, changed
	}
	if give := m.assigned.minus(target); len(give) > 0 {
		m.assigned = m.assigned.minus(give)
		m.revoking, m.revokeSince = give, now
		m.version++
		return false, true
	}
	if m.epoch != cg.assignEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignEpoch
		changed = true
	}
	for t, ps := range target.minus(m.assigned) {
		for _, p := range ps {
			if !g.ownedByOtherLocked(m, t, p) {
				m.assigned.add(t, p)
				m.version++
				changed = true
			}
		}
	}
	return false, changed
}

func (g *group) ownedByOtherLocked(m *cmember, t [16]byte, p int32) bool {
	for _, o := range g.cg.members {
		if o != m && (o.assigned.has(t, p) || o.revoking.has(t, p)) {
			return true
		}
	}
	return false
}

// removeConsumerLocked drops a member; the group epoch moves so the others
// share its partitions.
func (g *group) removeConsumerLocked(m *cmember, reason string) {
	cg := g.cg
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.epoch++
	if len(cg.members) == 0 {
		g.stateSince = g.sh.c.now() // offsets retention counts from here
	}
	g.refreshTargetLocked()
	g.sh.c.log.Info("consumer group member removed", "group", g.id, "member", m.id, "reason", reason, "group_epoch", cg.epoch)
}

// touchConsumerLocked re-arms m's session timer (group.consumer.session.timeout.ms).
func (g *group) touchConsumerLocked(m *cmember) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timer = time.AfterFunc(g.sh.c.cfg.ConsumerSessionTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.state == stateDead || g.cg == nil || g.cg.members[m.id] != m {
			return
		}
		g.removeConsumerLocked(m, "session timeout")
		g.writeConsumerLocked(true)
	})
}

// writeConsumerLocked appends the group's state. With async, nobody waits:
// a failure is logged (the next write carries the whole state again).
func (g *group) writeConsumerLocked(async bool) *pendingWrite {
	sh := g.sh
	records := []kv{g.consumerRecordLocked()}
	if g.classicPersisted {
		records = append(records, kv{key: groupKey(g.id)}) // the classic group this was is gone
		g.classicPersisted = false
	}
	g.consumerPersisted = true
	w := sh.append(records)
	if !async {
		return &w
	}
	sh.c.wg.Go(func() {
		if code := sh.wait(sh.ctx, w); code != 0 && sh.ctx.Err() == nil {
			sh.c.log.Warn("writing consumer group state failed", "group", g.id, "error_code", code)
		}
	})
	return nil
}

func ownsSubset(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, assigned assignment) bool {
	if owned == nil {
		return true
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !assigned.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

func fromRequest(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) assignment {
	a := assignment{}
	for _, t := range ts {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return a
}

func toResponse(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := &kmsg.ConsumerGroupHeartbeatResponseAssignment{Topics: []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}}
	for _, t := range slices.SortedFunc(maps.Keys(a), func(x, y [16]byte) int { return slices.Compare(x[:], y[:]) }) {
		out.Topics = append(out.Topics, kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{TopicID: t, Partitions: slices.Clone(a[t])})
	}
	return out
}

// stateNameLocked is the group's state as ListGroups names it.
func (g *group) stateNameLocked() string {
	if g.state == stateDead {
		return "Dead"
	}
	if g.kind == kindConsumer {
		return g.cg.state()
	}
	return g.state.String()
}
