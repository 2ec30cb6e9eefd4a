package it

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/broker/group"
)

// TestGroupCoordinatorKill kills -9 the broker coordinating a group while
// its three franz-go members consume and commit (every 100 ms, and on
// every revoke) under a steady produce load, and samples the group's
// committed offsets every 50 ms throughout. The coordinator must be the
// leader of the group's __consumer_offsets partition; after the kill the
// group must move to another broker, with its members and every committed
// offset: no sample may ever go back, every member's commits must resume
// there, every record must be consumed (with no gap within an assignment),
// and the committed offsets must be the end offsets once the members leave.
func TestGroupCoordinatorKill(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3, groupBrokerFlags...)
	topic := "grp-coordinator-kill"
	c.CreateTopic(topic, groupPartitions, 3, nil)
	r := &groupRun{c: c, topic: topic, group: topic + "-group", ledger: newGroupLedger(t, topic, groupPartitions)}
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	describe := describeClassic(cl, r.group, topic)
	stopSampling := sampleCommits(cl, r.group, r.ledger, 50*time.Millisecond)
	t.Cleanup(stopSampling)
	c.logGroupOnFailure(t, r.group)
	prod := c.startGroupProducers(t, 2, 150, r.ledger)
	var members []*franzMember
	for _, name := range []string{"m1", "m2", "m3"} {
		// Commit load: every member commits every 100 ms (kgo's least).
		members = append(members, startFranzMember(t, r, name, kgo.AutoCommitInterval(100*time.Millisecond)))
	}
	waitGroupView(t, describe, "stable with 3 members", groupSettle, stableWith(3))
	r.ledger.waitConsumed(300, groupSettle)
	before := r.ledger.waitCommitted(groupSettle)

	coord := groupCoordinator(t, adm, r.group, -1)
	offsetsPart := group.PartitionFor(r.group, groupOffsetsPartitions)
	if leader := c.Leaders(group.OffsetsTopic)[offsetsPart]; leader != coord {
		t.Fatalf("FindCoordinator names broker %d, but %s[%d] is led by %d", coord, group.OffsetsTopic, offsetsPart, leader)
	}
	c.KillAndWait(c.Node(coord))
	killed := time.Now()
	moved := groupCoordinator(t, adm, r.group, coord)
	t.Logf("kill -9 broker %d, the coordinator (leader of %s[%d]); FindCoordinator names broker %d after %v",
		coord, group.OffsetsTopic, offsetsPart, moved, time.Since(killed).Round(time.Millisecond))
	r.ledger.waitCommitsPast(before, groupSettle)
	t.Logf("every partition's committed offset advanced past its value at the kill after %v", time.Since(killed).Round(time.Millisecond))
	waitGroupView(t, describe, "stable with 3 members on the new coordinator", groupSettle, stableWith(3))

	c.Node(coord).Restart()
	c.WaitISR(topic, groupPartitions, 3, clusterSettleTimeout)
	prod.finish()
	ends := endOffsets(t, adm, topic)
	r.ledger.waitAll(ends, groupSettle)
	for _, m := range members {
		m.Leave()
	}
	waitGroupView(t, describe, "empty", groupSettle, func(v groupView) bool { return v.State == "Empty" && len(v.Members) == 0 })
	stopSampling()
	requireCommittedAtEnd(t, cl, r.group, topic, ends)
	r.ledger.verify(ends)
}

// TestGroupClusterRestart stops all three brokers and starts them again on
// the same data while two groups consume one topic: one has committed and
// is empty, the other keeps its member running across the restart. After
// the restart both groups are listed and described as before (protocol
// type "consumer", the empty one Empty) with the same committed offsets; a
// new member of the empty group resumes exactly at its committed offsets,
// the live group's member goes on, both consume everything produced after
// the restart, and their committed offsets end at the end offsets.
func TestGroupClusterRestart(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3, groupBrokerFlags...)
	topic := "grp-restart"
	c.CreateTopic(topic, groupPartitions, 3, nil)
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	empty := &groupRun{c: c, topic: topic, group: topic + "-empty", ledger: newGroupLedger(t, topic, groupPartitions)}
	live := &groupRun{c: c, topic: topic, group: topic + "-live", ledger: newGroupLedger(t, topic, groupPartitions)}
	describeEmpty := describeClassic(cl, empty.group, topic)
	describeLive := describeClassic(cl, live.group, topic)
	stopEmpty := sampleCommits(cl, empty.group, empty.ledger, 100*time.Millisecond)
	t.Cleanup(stopEmpty)
	stopLive := sampleCommits(cl, live.group, live.ledger, 100*time.Millisecond)
	t.Cleanup(stopLive)
	c.logGroupOnFailure(t, empty.group)
	c.logGroupOnFailure(t, live.group)
	prod := c.startGroupProducers(t, 2, 100, empty.ledger, live.ledger)

	first := startFranzMember(t, empty, "e1")
	liveMember := startFranzMember(t, live, "l1")
	waitGroupView(t, describeEmpty, "stable with 1 member", groupSettle, stableWith(1))
	waitGroupView(t, describeLive, "stable with 1 member", groupSettle, stableWith(1))
	empty.ledger.waitConsumed(300, groupSettle)
	live.ledger.waitConsumed(300, groupSettle)
	prod.pause()
	empty.ledger.waitAcked(groupSettle)
	first.Leave()
	waitGroupView(t, describeEmpty, "empty", groupSettle, func(v groupView) bool { return v.State == "Empty" && len(v.Members) == 0 })
	committed := committedOffsets(t, cl, empty.group, topic, 30*time.Second)
	ends := endOffsets(t, adm, topic)
	if !maps.Equal(committed, ends) {
		t.Fatalf("group %s left with committed offsets %v, want the end offsets %v", empty.group, committed, ends)
	}
	listed := listGroups(t, adm)
	c.RestartAll()

	// The groups and their offsets are back.
	got := committedOffsets(t, cl, empty.group, topic, groupSettle)
	if !maps.Equal(got, committed) {
		t.Fatalf("group %s after the restart: committed offsets %v, want %v", empty.group, got, committed)
	}
	after := listGroups(t, adm)
	for _, g := range []string{empty.group, live.group} {
		if after[g].ProtocolType != "consumer" || after[g].ProtocolType != listed[g].ProtocolType {
			t.Fatalf("ListGroups after the restart: %s is %+v; before: %+v", g, after[g], listed[g])
		}
	}
	if after[empty.group].State != "Empty" {
		t.Fatalf("ListGroups after the restart: %s is %+v, want Empty", empty.group, after[empty.group])
	}
	ve := waitGroupView(t, describeEmpty, "described", groupSettle, func(groupView) bool { return true })
	if ve.State != "Empty" || ve.ProtocolType != "consumer" || len(ve.Members) != 0 {
		t.Fatalf("DescribeGroups %s after the restart: %s, protocol type %q; want an Empty group of protocol type consumer", empty.group, ve, ve.ProtocolType)
	}
	vl := waitGroupView(t, describeLive, "described", groupSettle, func(groupView) bool { return true })
	if vl.ProtocolType != "consumer" {
		t.Fatalf("DescribeGroups %s after the restart: %s, protocol type %q; want protocol type consumer", live.group, vl, vl.ProtocolType)
	}

	// A new member resumes exactly where the first one committed; the
	// live member goes on.
	prod.resume()
	second := startFranzMember(t, empty, "e2")
	waitGroupView(t, describeEmpty, "stable with 1 member", groupSettle, stableWith(1))
	waitGroupView(t, describeLive, "stable with 1 member", groupSettle, stableWith(1))
	empty.ledger.waitFor("e2 consuming every partition", groupSettle, func() (bool, string) {
		n := len(empty.ledger.firsts["e2"])
		return n == groupPartitions, fmt.Sprintf("%d partitions", n)
	})
	firsts := empty.ledger.firstOffsets("e2")
	for p := range int32(groupPartitions) {
		if firsts[p] != committed[p] {
			t.Fatalf("%s[%d]: the member that joined after the restart started at offset %d, want the committed offset %d", topic, p, firsts[p], committed[p])
		}
	}

	prod.finish()
	ends = endOffsets(t, adm, topic)
	empty.ledger.waitAll(ends, groupSettle)
	live.ledger.waitAll(ends, groupSettle)
	second.Leave()
	liveMember.Leave()
	for _, d := range []func(context.Context) (groupView, error){describeEmpty, describeLive} {
		waitGroupView(t, d, "empty", groupSettle, func(v groupView) bool { return v.State == "Empty" && len(v.Members) == 0 })
	}
	stopEmpty()
	stopLive()
	requireCommittedAtEnd(t, cl, empty.group, topic, ends)
	requireCommittedAtEnd(t, cl, live.group, topic, ends)
	empty.ledger.verify(ends)
	live.ledger.verify(ends)
}

// groupCoordinator is the node FindCoordinator names for group, asked
// until it answers without error and names a node other than not (-1:
// any node).
func groupCoordinator(t testing.TB, adm *kadm.Client, group string, not int32) int32 {
	t.Helper()
	ctx := testContext(t, groupSettle)
	var last string
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp := adm.FindGroupCoordinators(rctx, group)[group]
		cancel()
		if resp.Err == nil && resp.NodeID >= 0 && resp.NodeID != not {
			return resp.NodeID
		}
		last = fmt.Sprintf("node %d, error %v %s", resp.NodeID, resp.Err, resp.ErrMessage)
		select {
		case <-ctx.Done():
			t.Fatalf("FindCoordinator of group %s: no coordinator other than %d within %v (last: %s)", group, not, groupSettle, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// listGroups is ListGroups, asked until it answers without error.
func listGroups(t testing.TB, adm *kadm.Client) kadm.ListedGroups {
	t.Helper()
	ctx := testContext(t, groupSettle)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lg, err := adm.ListGroups(rctx)
		cancel()
		if err == nil {
			return lg
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ListGroups: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
