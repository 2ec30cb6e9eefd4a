package it

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The failover scenarios run on three brokers, each holding an etcd member,
// with a topic of six partitions, three replicas each and
// min.insync.replicas=2, while idempotent acks=all producers write to every
// partition. After each scenario every acknowledged record must be read back
// exactly once at its acknowledged offset and in production order, the ISR
// must be full again, and all replicas must hold identical bytes below the
// high watermark (Cluster.Settle).
const (
	failoverPartitions = 6
	failoverRF         = 3
	failoverProducers  = 3
	acksPerStep        = 600 // acknowledgements between two faults
)

func startFailoverCluster(t *testing.T, topic string) (*Cluster, *clusterLoad) {
	t.Helper()
	c := StartCluster(t, 3)
	c.CreateTopic(topic, failoverPartitions, failoverRF, nil)
	ld := c.StartLoad(t, topic, failoverPartitions, failoverProducers)
	ld.waitAcks(acksPerStep, 60*time.Second)
	return c, ld
}

// TestClusterKillLeaders kills the leader of every partition in turn with
// SIGKILL (each kill takes all partitions that broker leads), measures the
// failover (kill to the first acks=all acknowledgement by a new leader of
// every partition the victim led), restarts the victim and waits for a full
// ISR before the next kill.
func TestClusterKillLeaders(t *testing.T) {
	const topic = "kill-leaders"
	c, ld := startFailoverCluster(t, topic)
	probe := c.NewProber(topic, failoverPartitions)
	start := time.Now()
	covered := map[int32]bool{}
	var failovers []time.Duration
	for p := range int32(failoverPartitions) {
		if covered[p] {
			continue
		}
		leaders := c.Leaders(topic)
		victim := leaders[p]
		if victim < 1 {
			t.Fatalf("partition %d has no leader: %v", p, leaders)
		}
		led := ledBy(leaders, victim)
		b := c.Node(victim)
		killed := time.Now()
		c.KillAndWait(b)
		fo := probe.Produce(led, killed)
		moved := c.WaitLeaderMoved(topic, led, victim, 30*time.Second)
		elected := time.Since(killed)
		failovers = append(failovers, fo)
		t.Logf("%v: killed broker %d (leader of %v): first acks=all acknowledgement by the new leaders after %v (Metadata: %v after %v)",
			time.Since(start).Round(time.Millisecond), victim, led, fo.Round(time.Millisecond), moved, elected.Round(time.Millisecond))
		ld.waitAckedAfter(led, killed, 30*time.Second)
		for _, q := range led {
			covered[q] = true
		}
		b.Restart()
		c.WaitISR(topic, failoverPartitions, failoverRF, clusterSettleTimeout)
		t.Logf("%v: broker %d back, ISR full", time.Since(start).Round(time.Millisecond), victim)
		ld.waitAcks(ld.ackCount()+acksPerStep, 60*time.Second)
	}
	slices.Sort(failovers)
	t.Logf("failover after kill -9 of a leader (session timeout %v): min %v, max %v over %d kills",
		clusterSessionTimeout, failovers[0].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond), len(failovers))
	c.Settle(ld, failoverRF)
}

// TestClusterPauseBroker freezes a broker that leads partitions with SIGSTOP
// for twice the session timeout: its session lapses and its leaderships move;
// after SIGCONT it must notice it was deposed, register again and catch up
// until the ISR is full again.
func TestClusterPauseBroker(t *testing.T) {
	const topic = "pause"
	c, ld := startFailoverCluster(t, topic)
	probe := c.NewProber(topic, failoverPartitions)
	leaders := c.Leaders(topic)
	victim := leaders[0]
	led := ledBy(leaders, victim)
	b := c.Node(victim)
	runLogStart := len(b.RunLogs())
	paused := time.Now()
	c.Pause(b)
	fo := probe.Produce(led, paused)
	moved := c.WaitLeaderMoved(topic, led, victim, 30*time.Second)
	t.Logf("paused broker %d (leader of %v): first acks=all acknowledgement by the new leaders %v after %v", victim, led, moved, fo.Round(time.Millisecond))
	// Stay frozen well past the session timeout.
	time.Sleep(time.Until(paused.Add(2 * clusterSessionTimeout)))
	c.WaitFor("paused broker left the cluster", "", 30*time.Second, func(v clusterView) (bool, string) {
		return !slices.Contains(v.Brokers, victim), fmt.Sprintf("live brokers %v", v.Brokers)
	})
	ld.waitAcks(ld.ackCount()+acksPerStep, 60*time.Second)
	resumed := time.Now()
	c.Resume(b)
	c.WaitFor("resumed broker registered again", "", 30*time.Second, func(v clusterView) (bool, string) {
		return slices.Contains(v.Brokers, victim), fmt.Sprintf("live brokers %v", v.Brokers)
	})
	c.WaitISR(topic, failoverPartitions, failoverRF, clusterSettleTimeout)
	t.Logf("broker %d resumed: registered and back in every ISR after %v", victim, time.Since(resumed).Round(time.Millisecond))
	if !registeredRE.MatchString(b.RunLogs()[runLogStart:]) {
		t.Errorf("broker %d did not log %q after it was resumed", victim, registeredRE)
	}
	ld.waitAcks(ld.ackCount()+acksPerStep, 60*time.Second)
	c.Settle(ld, failoverRF)
}

// TestClusterRollingRestart restarts the three brokers one after the other
// with SIGTERM (controlled shutdown: exit code 0, and no partition is left
// led by the stopped broker), waiting for a full ISR after each.
func TestClusterRollingRestart(t *testing.T) {
	const topic = "rolling"
	c, ld := startFailoverCluster(t, topic)
	for _, b := range c.Brokers {
		node := c.NodeID(b)
		led := ledBy(c.Leaders(topic), node)
		failedBefore := ld.failures()
		b.Stop() // requires exit code 0
		// Controlled shutdown moved its leaderships before it exited: the
		// survivors say so at once, not after a session timeout.
		v, err := c.View(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range led {
			if l := v.Parts[p].Leader; l == node || l < 0 {
				t.Errorf("partition %d: leader %d right after broker %d's controlled shutdown, want another broker", p, l, node)
			}
		}
		if slices.Contains(v.Brokers, node) {
			t.Errorf("broker %d still registered after its controlled shutdown: %v", node, v.Brokers)
		}
		ld.waitAcks(ld.ackCount()+acksPerStep, 60*time.Second)
		b.Restart()
		c.WaitISR(topic, failoverPartitions, failoverRF, clusterSettleTimeout)
		t.Logf("broker %d (leader of %v) restarted gracefully; %d produce failures meanwhile", node, led, ld.failures()-failedBefore)
		ld.waitAcks(ld.ackCount()+acksPerStep, 60*time.Second)
	}
	c.Settle(ld, failoverRF)
}

// TestClusterRestartFollowerThenLeader is KIP-101's scenario, five times: a
// follower of partition 0 crashes and comes back, and right after it the
// leader crashes, so the follower may be elected before it has fetched
// again. A follower that truncated to its own (lagging) high watermark on
// restart would lose acknowledged records, or the replicas would diverge.
func TestClusterRestartFollowerThenLeader(t *testing.T) {
	const topic = "kip101"
	c, ld := startFailoverCluster(t, topic)
	for round := range 5 {
		v, err := c.View(topic)
		if err != nil {
			t.Fatal(err)
		}
		st := v.Parts[0]
		leader := st.Leader
		var follower int32 = -1
		for i := range st.Replicas {
			if r := st.Replicas[(round+i)%len(st.Replicas)]; r != leader {
				follower = r
				break
			}
		}
		fb, lb := c.Node(follower), c.Node(leader)
		c.KillAndWait(fb)
		fb.Restart()
		c.KillAndWait(lb)
		lb.Restart()
		c.WaitISR(topic, failoverPartitions, failoverRF, clusterSettleTimeout)
		after, _ := c.View(topic)
		t.Logf("round %d: restarted follower %d then leader %d of partition 0: now %v", round+1, follower, leader, after.Parts[0])
		ld.waitAcks(ld.ackCount()+acksPerStep, 60*time.Second)
	}
	c.Settle(ld, failoverRF)
}
