package it

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterISRShrinkExpand freezes a follower with SIGSTOP while acks=all
// producers write: its leader must drop it from the ISR once it has not
// caught up for replica.lag.time.max (the session timeout is set far longer,
// so this is the leader's doing, not the controller's), acks=all must go on
// with the two replicas left (min.insync.replicas=2), and after SIGCONT the
// follower must catch up and be taken back into the ISR.
func TestClusterISRShrinkExpand(t *testing.T) {
	c := StartCluster(t, 3, "--broker-session-timeout", "60s")
	const topic = "isr"
	c.CreateTopic(topic, 1, 3, nil)
	ld := c.StartLoad(t, topic, 1, 2)
	ld.waitAcks(acksPerStep, 60*time.Second)

	v, err := c.View(topic)
	if err != nil {
		t.Fatal(err)
	}
	st := v.Parts[0]
	leader := st.Leader
	follower := st.Replicas[0]
	for _, r := range st.Replicas {
		if r != leader && r != v.Controller {
			follower = r
			break
		}
	}
	if follower == leader {
		follower = st.Replicas[1]
	}
	fb, lb := c.Node(follower), c.Node(leader)
	leaderLogStart := len(lb.RunLogs())
	paused := time.Now()
	c.Pause(fb)
	c.WaitFor(fmt.Sprintf("broker %d out of the ISR", follower), topic, 30*time.Second, func(v clusterView) (bool, string) {
		s := v.Parts[0]
		return !slices.Contains(s.ISR, follower) && len(s.ISR) == 2 && s.Leader == leader, s.String()
	})
	shrunk := time.Since(paused)
	t.Logf("paused follower %d of leader %d: out of the ISR after %v (replica.lag.time.max %v)", follower, leader, shrunk.Round(time.Millisecond), clusterReplicaLag)
	if shrunk < clusterReplicaLag/2 {
		t.Errorf("the ISR shrank %v after the follower stopped, before replica.lag.time.max %v", shrunk, clusterReplicaLag)
	}
	line, ok := matchLine(lb.RunLogs()[leaderLogStart:], regexp.MustCompile(`msg="ISR changed" partition=isr-0 `))
	if !ok {
		t.Errorf("leader %d logged no ISR change", leader)
	} else {
		t.Logf("leader: %s", line)
	}
	// Two in-sync replicas satisfy min.insync.replicas=2.
	ld.waitAcks(ld.ackCount()+acksPerStep, 30*time.Second)

	resumed := time.Now()
	c.Resume(fb)
	c.WaitFor(fmt.Sprintf("broker %d back in the ISR", follower), topic, 30*time.Second, func(v clusterView) (bool, string) {
		s := v.Parts[0]
		return len(s.ISR) == 3, s.String()
	})
	t.Logf("resumed follower %d: back in the ISR after %v", follower, time.Since(resumed).Round(time.Millisecond))
	ld.waitAcks(ld.ackCount()+acksPerStep, 30*time.Second)
	c.Settle(ld, 3)
}

// TestClusterNotEnoughReplicas kills the follower of a two-replica topic with
// min.insync.replicas=2: once the ISR is the leader alone, an acks=all
// produce must be refused with NOT_ENOUGH_REPLICAS and leave the log as it
// was (acks=1 is still served, as in Kafka); when the follower is back in the
// ISR, acks=all succeeds again.
func TestClusterNotEnoughReplicas(t *testing.T) {
	c := StartCluster(t, 3)
	const topic = "min-isr"
	c.CreateTopic(topic, 1, 2, nil)
	all := c.Client(t, manualPartitions, kgo.RecordRetries(2))
	produceSync(t, all, topic, 0, 0, 10, 0)

	v, err := c.View(topic)
	if err != nil {
		t.Fatal(err)
	}
	st := v.Parts[0]
	var follower int32 = -1
	for _, r := range st.Replicas {
		if r != st.Leader {
			follower = r
		}
	}
	fb := c.Node(follower)
	c.KillAndWait(fb)
	c.WaitFor("the ISR down to the leader", topic, 30*time.Second, func(v clusterView) (bool, string) {
		s := v.Parts[0]
		return len(s.ISR) == 1 && s.Leader == st.Leader, s.String()
	})

	adm := c.Admin(t)
	before := endOffsets(t, adm, topic)[0]
	ctx := testContext(t, 30*time.Second)
	rec := &kgo.Record{Topic: topic, Partition: 0, Value: []byte("refused")}
	err = all.ProduceSync(ctx, rec).FirstErr()
	if !isKErr(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all produce with one in-sync replica of a min.insync.replicas=2 topic: got %v, want NOT_ENOUGH_REPLICAS", err)
	}
	t.Logf("acks=all with the ISR at 1: %v", err)
	if after := endOffsets(t, adm, topic)[0]; after != before {
		t.Fatalf("end offset moved from %d to %d after a refused produce", before, after)
	}
	one := c.Client(t, manualPartitions, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceSync(t, one, topic, 0, 10, 5, before)

	fb.Restart()
	c.WaitISR(topic, 1, 2, clusterSettleTimeout)
	again := c.Client(t, manualPartitions)
	produceSync(t, again, topic, 0, 15, 5, before+5)
	recs := consumePartition(t, c.Brokers[slices.IndexFunc(c.Brokers, (*Broker).Running)], topic, 0, 0, 20)
	checkValues(t, topic, 0, 0, 0, recs)
	c.CompareReplicas(topic, 1)
}
