package it

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeCluster asks broker b for DescribeCluster: live brokers and controller.
func describeCluster(t testing.TB, b *Broker) (brokers []int32, controller int32) {
	t.Helper()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.SetVersion(0)
	r, err := askBroker(b.Addr, req, 5*time.Second)
	if err != nil {
		t.Fatalf("DescribeCluster from %s: %v", b.Addr, err)
	}
	resp := r.(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("DescribeCluster from %s: error code %d", b.Addr, resp.ErrorCode)
	}
	for _, db := range resp.Brokers {
		brokers = append(brokers, db.NodeID)
	}
	slices.Sort(brokers)
	return brokers, resp.ControllerID
}

// waitDescribeCluster waits until every serving broker's DescribeCluster
// lists exactly want, with a controller among them.
func (c *Cluster) waitDescribeCluster(want []int32, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, b := range c.serving() {
		for {
			got, ctrl := describeCluster(c.t, b)
			if slices.Equal(got, want) && slices.Contains(want, ctrl) {
				c.t.Logf("broker %d: DescribeCluster lists %v, controller %d", c.NodeID(b), got, ctrl)
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("broker %d: DescribeCluster lists %v with controller %d after %v, want %v", c.NodeID(b), got, ctrl, timeout, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// produceAndReadBack writes n acks=all records to every partition of topic
// after the written[p] records already there, and reads every partition
// back from offset 0. (It counts rather than asking for end offsets: a newly
// elected leader reports a stale high watermark until its followers fetch.)
func (c *Cluster) produceAndReadBack(topic string, partitions int32, n int, written map[int32]int) {
	c.t.Helper()
	t := c.t
	cl := c.Client(t, manualPartitions)
	for p := range partitions {
		have := written[p]
		produceSync(t, cl, topic, p, have, n, int64(have))
		written[p] = have + n
		recs := consumePartition(t, c.serving()[0], topic, p, 0, have+n)
		checkValues(t, topic, p, 0, 0, recs)
	}
}

// TestClusterEtcdQuorum kills one of the three brokers, and with it one of
// the three etcd members: the two left keep a quorum and go on serving
// produce, consume and topic creation. A fourth broker that runs no etcd
// member joins through --meta-endpoints (one of which is the dead member),
// the dead broker comes back, and DescribeCluster lists all four; a topic
// created then places replicas on the fourth broker, which replicates them.
func TestClusterEtcdQuorum(t *testing.T) {
	c := StartCluster(t, 3)
	const topic = "quorum"
	c.CreateTopic(topic, 3, 3, nil)
	written := map[int32]int{}
	c.produceAndReadBack(topic, 3, 20, written)

	victim := c.Node(3)
	led := ledBy(c.Leaders(topic), 3)
	c.KillAndWait(victim)
	c.WaitLeaderMoved(topic, led, 3, 30*time.Second)
	c.WaitFor("broker 3 gone", "", 30*time.Second, func(v clusterView) (bool, string) {
		return slices.Equal(v.Brokers, []int32{1, 2}), fmt.Sprintf("live brokers %v", v.Brokers)
	})
	c.WaitISR(topic, 3, 2, clusterSettleTimeout) // the ISR without broker 3
	c.produceAndReadBack(topic, 3, 20, written)
	c.CreateTopic("quorum-two", 2, 2, nil)
	c.produceAndReadBack("quorum-two", 2, 20, map[int32]int{})
	t.Logf("two of three brokers (etcd members) serve produce, consume and CreateTopics")

	fourth := c.AddBroker()
	if id := c.NodeID(fourth); id != 4 {
		t.Fatalf("the added broker has node id %d", id)
	}
	c.waitDescribeCluster([]int32{1, 2, 4}, 30*time.Second)
	victim.Restart()
	c.WaitISR(topic, 3, 3, clusterSettleTimeout)
	c.waitDescribeCluster([]int32{1, 2, 3, 4}, 30*time.Second)

	const spread = "quorum-four"
	c.CreateTopic(spread, 8, 3, nil)
	v, err := c.View(spread)
	if err != nil {
		t.Fatal(err)
	}
	on4 := 0
	for _, s := range v.Parts {
		if slices.Contains(s.Replicas, 4) {
			on4++
		}
	}
	if on4 == 0 {
		t.Fatalf("no partition of %s has a replica on broker 4: %v", spread, v.Parts)
	}
	c.produceAndReadBack(spread, 8, 30, map[int32]int{})
	c.WaitISR(spread, 8, 3, clusterSettleTimeout)
	c.CompareReplicas(spread, 8)
	t.Logf("broker 4 holds replicas of %d of %s's 8 partitions", on4, spread)

	// Existing partitions move to broker 4 by reassignment (KIP-455):
	// partition 0 of the first topic goes from its three replicas to
	// {4, and two of the old ones}; the data written before follows it.
	old, err := c.View(topic)
	if err != nil {
		t.Fatal(err)
	}
	target := []int32{4, old.Parts[0].Replicas[0], old.Parts[0].Replicas[1]}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, target)
	res, err := c.Admin(t).AlterPartitionAssignments(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := res[topic][0].Err; err != nil {
		t.Fatalf("reassigning %s-0 to %v: %v", topic, target, err)
	}
	c.WaitFor("reassignment onto broker 4", topic, clusterSettleTimeout, func(v clusterView) (bool, string) {
		p := v.Parts[0]
		return slices.Equal(p.Replicas, target) && len(p.ISR) == 3,
			fmt.Sprintf("replicas %v isr %v", p.Replicas, p.ISR)
	})
	c.produceAndReadBack(topic, 3, 20, written)
	c.WaitISR(topic, 3, 3, clusterSettleTimeout)
	c.CompareReplicas(topic, 3)
	t.Logf("%s-0 reassigned to %v; broker 4's replica matches the others", topic, target)
}
