package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hb848 is one ConsumerGroupHeartbeat.
type hb848 struct {
	member   string
	epoch    int32
	instance *string
	topics   []string
	regex    *string
	assignor *string
	owned    []kmsg.ConsumerGroupHeartbeatRequestTopic // nil: unchanged
}

func (w *groupWire) heartbeat848(group string, h hb848) *kmsg.ConsumerGroupHeartbeatResponse {
	w.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = group, h.member, h.epoch, h.instance
	req.RebalanceTimeoutMillis = -1
	req.SubscribedTopicNames, req.SubscribedTopicRegex, req.ServerAssignor = h.topics, h.regex, h.assignor
	req.Topics = h.owned
	if h.epoch == 0 {
		req.RebalanceTimeoutMillis = 5000
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			req.SubscribedTopicNames = []string{}
		}
	}
	return w.req(req).(*kmsg.ConsumerGroupHeartbeatResponse)
}

func ownedOf(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, t := range a.Topics {
		out = append(out, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t.TopicID, Partitions: slices.Clone(t.Partitions)})
	}
	return out
}

func countOwned(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) int {
	n := 0
	for _, t := range a.Topics {
		n += len(t.Partitions)
	}
	return n
}

// The KIP-848 protocol as the coordinator answers it: join, fencing by
// member epoch, revoke-then-assign between two members, commits fenced by
// member epoch, static members, regex subscriptions, and the classic
// protocol kept out of a consumer group with members.
func TestConsumerGroupProtocol848(t *testing.T) {
	b := startBroker(t, fast848)
	b.createTopic("c8", 4, nil)
	w := newGroupWire(t, b)

	a := w.heartbeat848("cg", hb848{member: "member-a", epoch: 0, topics: []string{"c8"}})
	wantCode(t, "join", a.ErrorCode, nil)
	if a.MemberEpoch < 1 || countOwned(a.Assignment) != 4 {
		t.Fatalf("join: epoch %d, assignment %+v", a.MemberEpoch, a.Assignment)
	}
	wantCode(t, "wrong epoch", w.heartbeat848("cg", hb848{member: "member-a", epoch: a.MemberEpoch + 7}).ErrorCode, kerr.FencedMemberEpoch)
	wantCode(t, "unknown member", w.heartbeat848("cg", hb848{member: "nobody", epoch: 3}).ErrorCode, kerr.UnknownMemberID)

	// A second member: the first must give up two partitions before the
	// second gets them.
	bm := w.heartbeat848("cg", hb848{member: "member-b", epoch: 0, topics: []string{"c8"}})
	wantCode(t, "second join", bm.ErrorCode, nil)
	if countOwned(bm.Assignment) != 0 {
		t.Fatalf("the second member got partitions the first still owns: %+v", bm.Assignment)
	}
	a2 := w.heartbeat848("cg", hb848{member: "member-a", epoch: a.MemberEpoch, owned: ownedOf(a.Assignment)})
	wantCode(t, "heartbeat while revoking", a2.ErrorCode, nil)
	if a2.Assignment == nil || countOwned(a2.Assignment) != 2 || a2.MemberEpoch != a.MemberEpoch {
		t.Fatalf("revocation: epoch %d (was %d), assignment %+v", a2.MemberEpoch, a.MemberEpoch, a2.Assignment)
	}
	// Commits are fenced by member epoch (v9 carries it).
	commit := func(member string, epoch int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "cg", member, epoch
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "c8", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
		return w.req(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "commit with the member epoch", commit("member-a", a2.MemberEpoch), nil)
	wantCode(t, "commit with an old epoch", commit("member-a", a2.MemberEpoch-1), kerr.StaleMemberEpoch)
	wantCode(t, "commit of an unknown member", commit("ghost", 1), kerr.UnknownMemberID)

	// The first reports the two released: it moves to the new epoch; the
	// second then gets them.
	a3 := w.heartbeat848("cg", hb848{member: "member-a", epoch: a2.MemberEpoch, owned: ownedOf(a2.Assignment)})
	wantCode(t, "released", a3.ErrorCode, nil)
	if a3.MemberEpoch <= a2.MemberEpoch {
		t.Fatalf("epoch after revoking: %d", a3.MemberEpoch)
	}
	b2 := w.heartbeat848("cg", hb848{member: "member-b", epoch: bm.MemberEpoch, owned: []kmsg.ConsumerGroupHeartbeatRequestTopic{}})
	if b2.Assignment == nil || countOwned(b2.Assignment) != 2 {
		t.Fatalf("the second member's assignment after the release: %+v", b2.Assignment)
	}

	// The classic protocol cannot join a consumer group with members.
	cj := kmsg.NewPtrJoinGroupRequest()
	cj.Group, cj.SessionTimeoutMillis, cj.RebalanceTimeoutMillis, cj.ProtocolType = "cg", 10000, 10000, "consumer"
	cj.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	wantCode(t, "classic join", w.req(cj).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)

	desc := kmsg.NewPtrConsumerGroupDescribeRequest()
	desc.Groups = []string{"cg", "nope"}
	dr := w.req(desc).(*kmsg.ConsumerGroupDescribeResponse)
	if g := dr.Groups[0]; g.ErrorCode != 0 || len(g.Members) != 2 || g.State != "Stable" || g.AssignorName != "uniform" {
		t.Fatalf("describe: %+v", g)
	}
	wantCode(t, "describe an unknown group", dr.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// Leaving hands the partitions over.
	wantCode(t, "leave", w.heartbeat848("cg", hb848{member: "member-b", epoch: -1}).ErrorCode, nil)
	owned := a2.Assignment // unchanged assignments are not sent again
	if a3.Assignment != nil {
		owned = a3.Assignment
	}
	a4 := w.heartbeat848("cg", hb848{member: "member-a", epoch: a3.MemberEpoch, owned: ownedOf(owned)})
	if a4.Assignment == nil || countOwned(a4.Assignment) != 4 {
		t.Fatalf("after the other left: %+v", a4.Assignment)
	}
}

func TestConsumerGroupStaticAndRegex848(t *testing.T) {
	b := startBroker(t, fast848)
	b.createTopic("rx-a", 2, nil)
	b.createTopic("rx-b", 1, nil)
	b.createTopic("other", 3, nil)
	w := newGroupWire(t, b)

	re := "rx-.*"
	inst := "node-1"
	s := w.heartbeat848("st8", hb848{member: "m-1", epoch: 0, instance: &inst, regex: &re})
	wantCode(t, "regex join", s.ErrorCode, nil)
	if countOwned(s.Assignment) != 3 {
		t.Fatalf("regex rx-.* got %d partitions, want 3 (rx-a, rx-b; not other)", countOwned(s.Assignment))
	}
	wantCode(t, "the same instance twice",
		w.heartbeat848("st8", hb848{member: "m-2", epoch: 0, instance: &inst, topics: []string{"other"}}).ErrorCode, kerr.UnreleasedInstanceID)
	// A static member leaving for a restart (-2) keeps its assignment: the
	// restarted instance takes it over, at the same epoch.
	wantCode(t, "static leave", w.heartbeat848("st8", hb848{member: "m-1", epoch: -2, instance: &inst}).ErrorCode, nil)
	r := w.heartbeat848("st8", hb848{member: "m-9", epoch: 0, instance: &inst, regex: &re})
	wantCode(t, "static rejoin", r.ErrorCode, nil)
	if r.MemberEpoch != s.MemberEpoch || countOwned(r.Assignment) != 3 {
		t.Fatalf("static rejoin: epoch %d (was %d), %d partitions", r.MemberEpoch, s.MemberEpoch, countOwned(r.Assignment))
	}

	bad := "("
	wantCode(t, "invalid regex", w.heartbeat848("st8", hb848{member: "m-3", epoch: 0, regex: &bad}).ErrorCode, kerr.InvalidRegularExpression)
	weird := "sticky"
	wantCode(t, "unknown assignor", w.heartbeat848("st8", hb848{member: "m-4", epoch: 0, topics: []string{"other"}, assignor: &weird}).ErrorCode, kerr.UnsupportedAssignor)

	// A classic group with members is not taken over.
	j := w.join("classic", "", nil, 10*time.Second)
	w.join("classic", j.MemberID, nil, 10*time.Second)
	wantCode(t, "consumer heartbeat to a classic group",
		w.heartbeat848("classic", hb848{member: "m-5", epoch: 0, topics: []string{"other"}}).ErrorCode, kerr.GroupIDNotFound)
}
