package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupWire drives the group protocol with raw requests through a kgo
// client (which finds the coordinator by itself).
type groupWire struct {
	t  *testing.T
	cl *kgo.Client
}

func newGroupWire(t *testing.T, b *testBroker) *groupWire {
	return &groupWire{t: t, cl: b.client()}
}

func (w *groupWire) req(r kmsg.Request) kmsg.Response {
	w.t.Helper()
	resp, err := w.cl.Request(ctxT(w.t, 30*time.Second), r)
	if err != nil {
		w.t.Fatalf("%s: %v", kmsg.NameForKey(r.Key()), err)
	}
	return resp
}

func (w *groupWire) join(group, member string, instance *string, session time.Duration) *kmsg.JoinGroupResponse {
	w.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.InstanceID = group, member, instance
	req.SessionTimeoutMillis = int32(session / time.Millisecond)
	req.RebalanceTimeoutMillis = 5000
	req.ProtocolType = "consumer"
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"gp"}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	return w.req(req).(*kmsg.JoinGroupResponse)
}

func (w *groupWire) sync(group, member string, gen int32, assign map[string][]byte) *kmsg.SyncGroupResponse {
	w.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: a})
	}
	return w.req(req).(*kmsg.SyncGroupResponse)
}

func (w *groupWire) heartbeat(group, member string, gen int32) int16 {
	w.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	return w.req(req).(*kmsg.HeartbeatResponse).ErrorCode
}

func (w *groupWire) commit(group, member string, gen int32, offset int64) int16 {
	w.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "gp", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return w.req(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func (w *groupWire) committed(group string) int64 {
	w.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "gp", Partitions: []int32{0}}}
	resp := w.req(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 || len(resp.Groups) > 0 && resp.Groups[0].ErrorCode != 0 {
		w.t.Fatalf("offset fetch: %+v", resp)
	}
	if len(resp.Groups) > 0 {
		return resp.Groups[0].Topics[0].Partitions[0].Offset
	}
	return resp.Topics[0].Partitions[0].Offset
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wc := int16(0)
	if want != nil {
		wc = want.Code
	}
	if got != wc {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func fastGroups(c *Config) {
	groupConfig(c)
	c.Group.MinSessionTimeout = 100 * time.Millisecond
}

// The classic protocol as Kafka answers it: KIP-394 member ids, the leader's
// assignment, rebalances on join, generation fencing of heartbeats and
// commits, session expiry.
func TestGroupProtocol(t *testing.T) {
	b := startBroker(t, fastGroups)
	b.createTopic("gp", 1, nil)
	w := newGroupWire(t, b)

	first := w.join("gp1", "", nil, 10*time.Second)
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	a := w.join("gp1", first.MemberID, nil, 10*time.Second)
	wantCode(t, "join with the id", a.ErrorCode, nil)
	if a.Generation != 1 || a.LeaderID != a.MemberID || len(a.Members) != 1 || *a.Protocol != "range" {
		t.Fatalf("join: %+v", a)
	}
	wantCode(t, "commit before the assignment", w.commit("gp1", a.MemberID, 1, 5), kerr.RebalanceInProgress)
	s := w.sync("gp1", a.MemberID, 1, map[string][]byte{a.MemberID: []byte("all")})
	wantCode(t, "sync", s.ErrorCode, nil)
	if string(s.MemberAssignment) != "all" {
		t.Fatalf("assignment %q", s.MemberAssignment)
	}
	wantCode(t, "heartbeat", w.heartbeat("gp1", a.MemberID, 1), nil)
	wantCode(t, "stale heartbeat", w.heartbeat("gp1", a.MemberID, 0), kerr.IllegalGeneration)
	wantCode(t, "unknown member", w.heartbeat("gp1", "nobody", 1), kerr.UnknownMemberID)
	wantCode(t, "commit", w.commit("gp1", a.MemberID, 1, 7), nil)
	wantCode(t, "stale commit", w.commit("gp1", a.MemberID, 0, 9), kerr.IllegalGeneration)
	wantCode(t, "standalone commit to a live group", w.commit("gp1", "", -1, 9), kerr.UnknownMemberID)
	if got := w.committed("gp1"); got != 7 {
		t.Fatalf("committed %d, want 7", got)
	}

	// A second member: the first learns of the rebalance by heartbeat and
	// rejoins; both are in generation 2.
	second := w.join("gp1", "", nil, time.Second)
	joined := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { joined <- w.join("gp1", second.MemberID, nil, time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.heartbeat("gp1", a.MemberID, 1) != kerr.RebalanceInProgress.Code {
		if time.Now().After(deadline) {
			t.Fatal("the first member never heard of the rebalance")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, "commit while preparing the rebalance", w.commit("gp1", a.MemberID, 1, 8), nil)
	a2 := w.join("gp1", a.MemberID, nil, 10*time.Second)
	b2 := <-joined
	if a2.Generation != 2 || b2.Generation != 2 || a2.LeaderID != a.MemberID || len(a2.Members) != 2 || len(b2.Members) != 0 {
		t.Fatalf("generation 2: %+v / %+v", a2, b2)
	}
	synced := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { synced <- w.sync("gp1", b2.MemberID, 2, nil) }()
	s = w.sync("gp1", a.MemberID, 2, map[string][]byte{a.MemberID: []byte("a"), b2.MemberID: []byte("b")})
	if sb := <-synced; string(s.MemberAssignment) != "a" || string(sb.MemberAssignment) != "b" {
		t.Fatalf("assignments %q / %q", s.MemberAssignment, sb.MemberAssignment)
	}

	// The second member stops heartbeating: its session (1 s) expires and
	// the first is asked to rejoin alone.
	deadline = time.Now().Add(10 * time.Second)
	for w.heartbeat("gp1", a.MemberID, 2) != kerr.RebalanceInProgress.Code {
		if time.Now().After(deadline) {
			t.Fatal("an expired member did not trigger a rebalance")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGroupStaticMembership(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		fastGroups(c)
		c.Group.InitialRebalanceDelay = 300 * time.Millisecond // both join the first generation
	})
	b.createTopic("gp", 1, nil)
	w := newGroupWire(t, b)
	inst, other := "instance-a", "instance-b"
	joined := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { joined <- w.join("st", "", &other, 10*time.Second) }()
	a := w.join("st", "", &inst, 10*time.Second)
	o := <-joined
	wantCode(t, "static join", a.ErrorCode, nil) // no MEMBER_ID_REQUIRED for static members
	if a.Generation != 1 || o.Generation != 1 {
		t.Fatalf("joins: %+v / %+v", a, o)
	}
	leader, follower := a, o
	if o.LeaderID == o.MemberID {
		leader, follower = o, a
	}
	synced := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { synced <- w.sync("st", follower.MemberID, 1, nil) }()
	s := w.sync("st", leader.MemberID, 1, map[string][]byte{a.MemberID: []byte("x"), o.MemberID: []byte("y")})
	wantCode(t, "sync", s.ErrorCode, nil)
	<-synced

	// The instance restarts without its member id: it gets a new one at
	// once, the old id is fenced, and the group does not rebalance.
	if leader == a {
		inst, other = other, inst // restart the follower (a leader's return rebalances)
		a, o = o, a
	}
	a2 := w.join("st", "", &inst, 10*time.Second)
	wantCode(t, "static rejoin", a2.ErrorCode, nil)
	if a2.MemberID == a.MemberID || a2.Generation != a.Generation {
		t.Fatalf("rejoin: %+v (first %+v)", a2, a)
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation, req.InstanceID = "st", a.MemberID, a.Generation, &inst
	wantCode(t, "the replaced member", w.req(req).(*kmsg.HeartbeatResponse).ErrorCode, kerr.FencedInstanceID)
	s2 := w.sync("st", a2.MemberID, a2.Generation, nil)
	if want := map[bool]string{true: "x", false: "y"}[inst == "instance-a"]; string(s2.MemberAssignment) != want {
		t.Fatalf("the restarted instance's assignment %q, want its predecessor's", s2.MemberAssignment)
	}

	// Both leave by instance id in one request (LeaveGroup v3+).
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Group = "st"
	lr.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}, {InstanceID: &other}, {MemberID: "ghost"}}
	resp := w.req(lr).(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != 0 ||
		resp.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", resp)
	}
}

// Administration: list and describe, OffsetDelete refuses subscribed topics,
// DeleteGroups refuses groups with members and removes their offsets.
func TestGroupAdministration(t *testing.T) {
	b := startBroker(t, fastGroups)
	b.createTopic("gp", 1, nil)
	w := newGroupWire(t, b)
	m := w.join("adm", "", nil, 10*time.Second)
	j := w.join("adm", m.MemberID, nil, 10*time.Second)
	w.sync("adm", j.MemberID, j.Generation, map[string][]byte{j.MemberID: []byte("p")})
	wantCode(t, "commit", w.commit("adm", j.MemberID, j.Generation, 3), nil)

	lg := kmsg.NewPtrListGroupsRequest()
	lg.StatesFilter = []string{"Stable"}
	groups := w.req(lg).(*kmsg.ListGroupsResponse)
	if len(groups.Groups) != 1 || groups.Groups[0].Group != "adm" || groups.Groups[0].GroupState != "Stable" {
		t.Fatalf("list groups: %+v", groups)
	}
	lg.StatesFilter = []string{"Empty"}
	if groups := w.req(lg).(*kmsg.ListGroupsResponse); len(groups.Groups) != 0 {
		t.Fatalf("list Empty groups: %+v", groups)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"adm", "nope"}
	desc := w.req(dg).(*kmsg.DescribeGroupsResponse)
	if d := desc.Groups[0]; d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "p" {
		t.Fatalf("describe: %+v", d)
	}
	if d := desc.Groups[1]; d.State != "Dead" || len(d.Members) != 0 {
		t.Fatalf("describe an unknown group: %+v", d)
	}

	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "adm"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "gp", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	odr := w.req(od).(*kmsg.OffsetDeleteResponse)
	wantCode(t, "offset delete of a subscribed topic", odr.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"adm", "never"}
	dr := w.req(del).(*kmsg.DeleteGroupsResponse)
	wantCode(t, "delete a live group", dr.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	wantCode(t, "delete an unknown group", dr.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = "adm"
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: j.MemberID}}
	w.req(lv)
	del.Groups = []string{"adm"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dr = w.req(del).(*kmsg.DeleteGroupsResponse)
		if dr.Groups[0].ErrorCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete after the member left: %v", kerr.ErrorForCode(dr.Groups[0].ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := w.committed("adm"); got != -1 {
		t.Fatalf("offset %d survived the group's deletion", got)
	}
}

// Offsets of a group that has been empty for offsets.retention.minutes
// expire.
func TestGroupOffsetsExpire(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		fastGroups(c)
		c.Group.OffsetsRetention = 500 * time.Millisecond
		c.Group.OffsetsRetentionCheckInterval = 50 * time.Millisecond
	})
	b.createTopic("gp", 1, nil)
	w := newGroupWire(t, b)
	wantCode(t, "standalone commit", w.commit("exp", "", -1, 42), nil)
	if got := w.committed("exp"); got != 42 {
		t.Fatalf("committed %d", got)
	}
	ctx := ctxT(t, 10*time.Second)
	for w.committed("exp") != -1 {
		if ctx.Err() != nil {
			t.Fatal("offsets of an empty group never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = context.Background
}
