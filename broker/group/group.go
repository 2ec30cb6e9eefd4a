package group

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic group's state, as Kafka names them.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// protocol is one assignment protocol a member supports, in its order of
// preference.
type protocol struct {
	name     string
	metadata []byte
}

// member is one member of a classic group.
type member struct {
	id               string
	instanceID       *string // static membership (KIP-345)
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocol
	assignment       []byte

	// joining is set while the member's JoinGroup waits for the rebalance
	// to complete; syncing while its SyncGroup waits for the leader's
	// assignment. Each gets exactly one response.
	joining chan *kmsg.JoinGroupResponse
	syncing chan *kmsg.SyncGroupResponse

	// expires is when the member is gone without a heartbeat; timer fires
	// then (and is re-armed by every heartbeat, join and sync).
	expires time.Time
	timer   *time.Timer
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p protocol) bool { return p.name == name })
}

func sameProtocols(a, b []protocol) bool {
	return slices.EqualFunc(a, b, func(x, y protocol) bool {
		return x.name == y.name && string(x.metadata) == string(y.metadata)
	})
}

// topicPartition names a committed offset.
type topicPartition struct {
	topic     string
	partition int32
}

// offset is a committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  time.Time
	// logOffset is where the commit's record is in __consumer_offsets: of
	// two commits whose writes finish out of order, the later record wins.
	logOffset int64
}

// group is one group this broker coordinates. Every field is guarded by mu;
// the group's timers and waiting requests take mu too.
type group struct {
	mu    sync.Mutex
	sh    *shard
	id    string
	state state

	protocolType string
	protocol     string // chosen for the current generation
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string // instance id -> member id
	// pending are member ids handed out with MEMBER_ID_REQUIRED (KIP-394)
	// that have not joined with them yet; they expire with the session
	// timeout.
	pending map[string]*time.Timer

	offsets map[topicPartition]offset

	// A rebalance completes when every member has rejoined, or at
	// rebalanceDeadline without those that have not. A group rebalancing
	// out of Empty also waits group.initial.rebalance.delay.ms, extended by
	// each new member up to the deadline (initialUntil).
	rebalanceDeadline time.Time
	initialUntil      time.Time
	timer             *time.Timer

	stateSince time.Time // when the group entered its state (also: when it became empty)

	// kind says which protocol the group speaks; cg holds a consumer
	// group's state (KIP-848). classicPersisted and consumerPersisted say
	// which of the two records __consumer_offsets holds for the group, so a
	// group converted from one kind to the other leaves a tombstone for the
	// other record.
	kind                                groupKind
	cg                                  *consumerGroup
	classicPersisted, consumerPersisted bool
	// writing is set while a group metadata write is in flight for this
	// generation, so a second SyncGroup of the leader does not write again.
	writing bool
}

func newGroup(sh *shard, id string, now time.Time) *group {
	return &group{sh: sh, id: id, state: stateEmpty, members: map[string]*member{},
		static: map[string]string{}, pending: map[string]*time.Timer{},
		offsets: map[topicPartition]offset{}, stateSince: now}
}

func (g *group) setStateLocked(s state) {
	if g.state != s {
		g.state = s
		g.stateSince = g.sh.c.now()
		g.sh.c.metrics.stateChanged(g)
	}
}

// idleLocked reports whether the group has no members at all, of either
// kind, and no rebalance under way: its offsets may expire and it may be
// deleted.
func (g *group) idleLocked() bool {
	if g.state == stateDead {
		return false
	}
	if g.kind == kindConsumer {
		return len(g.cg.members) == 0
	}
	return g.state == stateEmpty && len(g.members) == 0
}

// tombstonesLocked are the records deleting the group's state (not its
// offsets).
func (g *group) tombstonesLocked() []kv {
	out := []kv{{key: groupKey(g.id)}}
	if g.consumerPersisted || g.kind == kindConsumer {
		out = append(out, kv{key: consumerKey(g.id)})
	}
	return out
}

// isEmptyLocked reports whether the group has no members (it may still have
// committed offsets).
func (g *group) isEmptyLocked() bool { return len(g.members) == 0 }

// maxRebalanceTimeoutLocked is how long a rebalance may take: the longest
// rebalance timeout of the members.
func (g *group) maxRebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// selectProtocolLocked picks the protocol every member supports that most
// members prefer (each votes for its first supported candidate), as Kafka
// does.
func (g *group) selectProtocolLocked() string {
	var candidates []string
	for _, m := range g.members {
		if candidates == nil {
			for _, p := range m.protocols {
				candidates = append(candidates, p.name)
			}
			continue
		}
		candidates = slices.DeleteFunc(candidates, func(n string) bool { return !m.supports(n) })
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// supportsProtocolsLocked reports whether a member with these protocols
// could join: the protocol type matches and, unless the group is empty,
// one of them is supported by every member.
func (g *group) supportsProtocolsLocked(ptype string, ps []protocol) bool {
	if g.isEmptyLocked() {
		return ptype != "" && len(ps) > 0
	}
	if ptype != g.protocolType {
		return false
	}
	for _, p := range ps {
		ok := true
		for _, m := range g.members {
			if !m.supports(p.name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// touchLocked re-arms m's session timer.
func (g *group) touchLocked(m *member) {
	m.expires = g.sh.c.now().Add(m.sessionTimeout)
	if m.timer != nil {
		m.timer.Stop()
	}
	id := m.id
	m.timer = time.AfterFunc(m.sessionTimeout, func() { g.expireMember(id, m) })
}

// expireMember removes a member whose session timed out, unless it is
// waiting in JoinGroup or SyncGroup or heartbeated meanwhile.
func (g *group) expireMember(id string, m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members[id] != m || g.state == stateDead {
		return
	}
	now := g.sh.c.now()
	if m.joining != nil || m.syncing != nil {
		g.touchLocked(m)
		return
	}
	if now.Before(m.expires) {
		return
	}
	g.sh.c.log.Info("group member session expired", "group", g.id, "member", id, "generation", g.generation)
	g.removeMemberLocked(m, "session timeout")
}

// removeMemberLocked drops a member and rebalances as its absence requires.
func (g *group) removeMemberLocked(m *member, reason string) {
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if m.joining != nil {
		m.joining <- joinError(m.id, errUnknownMemberID)
		m.joining = nil
	}
	if m.syncing != nil {
		m.syncing <- syncError(errUnknownMemberID)
		m.syncing = nil
	}
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked(reason)
		g.maybeCompleteJoinLocked()
	case statePreparingRebalance:
		g.maybeCompleteJoinLocked()
	}
}

// prepareRebalanceLocked starts a rebalance: members must rejoin within the
// longest rebalance timeout.
func (g *group) prepareRebalanceLocked(reason string) {
	now := g.sh.c.now()
	if g.state == stateCompletingRebalance {
		// The assignment of this generation will never come.
		for _, m := range g.members {
			if m.syncing != nil {
				m.syncing <- syncError(errRebalanceInProgress)
				m.syncing = nil
			}
		}
	}
	fromEmpty := g.state == stateEmpty
	g.setStateLocked(statePreparingRebalance)
	g.sh.c.metrics.rebalances.Inc()
	g.rebalanceDeadline = now.Add(max(g.maxRebalanceTimeoutLocked(), time.Millisecond))
	g.initialUntil = time.Time{}
	if fromEmpty && g.sh.c.cfg.InitialRebalanceDelay > 0 {
		g.initialUntil = minTime(now.Add(g.sh.c.cfg.InitialRebalanceDelay), g.rebalanceDeadline)
	}
	g.sh.c.log.Info("preparing to rebalance group", "group", g.id, "generation", g.generation, "reason", reason)
	g.scheduleLocked()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// scheduleLocked arms the group's timer for the next instant the rebalance
// may complete.
func (g *group) scheduleLocked() {
	if g.timer != nil {
		g.timer.Stop()
	}
	if g.state != statePreparingRebalance {
		return
	}
	at := g.rebalanceDeadline
	if !g.initialUntil.IsZero() && g.initialUntil.Before(at) {
		at = g.initialUntil
	}
	g.timer = time.AfterFunc(max(at.Sub(g.sh.c.now()), 0), g.onTimer)
}

func (g *group) onTimer() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != statePreparingRebalance {
		return
	}
	now := g.sh.c.now()
	if !now.Before(g.rebalanceDeadline) {
		// Time is up: whoever has not rejoined is out.
		for _, m := range g.members {
			if m.joining == nil {
				g.sh.c.log.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
				if m.timer != nil {
					m.timer.Stop()
				}
				delete(g.members, m.id)
				if m.instanceID != nil && g.static[*m.instanceID] == m.id {
					delete(g.static, *m.instanceID)
				}
			}
		}
		g.completeJoinLocked()
		return
	}
	if !g.initialUntil.IsZero() && !now.Before(g.initialUntil) {
		g.initialUntil = time.Time{}
	}
	if !g.maybeCompleteJoinLocked() {
		g.scheduleLocked()
	}
}

// maybeCompleteJoinLocked completes the rebalance if every member has
// rejoined and the initial delay is over.
func (g *group) maybeCompleteJoinLocked() bool {
	if g.state != statePreparingRebalance {
		return false
	}
	if !g.initialUntil.IsZero() && g.sh.c.now().Before(g.initialUntil) {
		return false
	}
	for _, m := range g.members {
		if m.joining == nil {
			return false
		}
	}
	g.completeJoinLocked()
	return true
}

// completeJoinLocked ends the join phase: a new generation with the members
// that rejoined, a protocol and a leader; every waiting JoinGroup is
// answered (the leader with the members' metadata).
func (g *group) completeJoinLocked() {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.generation++
	g.writing = false
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setStateLocked(stateEmpty)
		g.sh.c.log.Info("group is empty", "group", g.id, "generation", g.generation)
		g.persistAsync()
		return
	}
	g.protocol = g.selectProtocolLocked()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		g.leader = slices.Sorted(maps.Keys(g.members))[0]
	}
	g.setStateLocked(stateCompletingRebalance)
	g.sh.c.log.Info("group rebalanced", "group", g.id, "generation", g.generation, "members", len(g.members),
		"protocol", g.protocol, "leader", g.leader)
	for _, m := range g.members {
		m.assignment = nil
		resp := &kmsg.JoinGroupResponse{Generation: g.generation, Protocol: kmsg.StringPtr(g.protocol),
			ProtocolType: kmsg.StringPtr(g.protocolType), LeaderID: g.leader, MemberID: m.id}
		if m.id == g.leader {
			for _, o := range g.members {
				resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{MemberID: o.id,
					InstanceID: o.instanceID, ProtocolMetadata: o.metadataFor(g.protocol)})
			}
		}
		m.joining <- resp
		m.joining = nil
		g.touchLocked(m)
	}
}
