package broker

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func bootstrap(bs []*testBroker) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.addr)
	}
	return out
}

// TestReplicatedFailover: RF=3, min.insync.replicas=2, acks=all. Every
// acknowledged record survives a graceful stop of the leader (controlled
// shutdown moves leadership first), replicas hold identical logs up to the
// high watermark, and the ISR shrinks then grows back.
func TestReplicatedFailover(t *testing.T) {
	bs := startCluster(t, 3, func(c *Config) {
		c.SessionTTL = 3 * time.Second
		c.ReplicaLagTimeMax = 2 * time.Second
		c.ControlledShutdownTimeout = 10 * time.Second
	})
	ctx := ctxT(t, 90*time.Second)
	cl := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.DefaultProduceTopic("rep"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	minISR := "2"
	if r, err := adm.CreateTopic(ctx, 2, 3, map[string]*string{"min.insync.replicas": &minISR}, "rep"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	type ack struct {
		p   int32
		off int64
		v   string
	}
	var acks []ack
	produce := func(n int, tag string) {
		for i := 0; i < n; i++ {
			for p := int32(0); p < 2; p++ {
				v := fmt.Sprintf("%s-%d-%d", tag, p, i)
				r := &kgo.Record{Partition: p, Value: []byte(v)}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce %s: %v", v, err)
				}
				acks = append(acks, ack{p, r.Offset, v})
			}
		}
	}
	produce(50, "a")

	// Stop the leader of partition 0.
	md, err := adm.Metadata(ctx, "rep")
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics["rep"].Partitions[0].Leader
	var victim *testBroker
	rest := []*testBroker{}
	for _, b := range bs {
		if b.srv.cfg.NodeID == leader {
			victim = b
		} else {
			rest = append(rest, b)
		}
	}
	victim.stop()
	produce(50, "b")

	// Every acknowledged record is where it was acknowledged.
	c2 := bs[0].client(kgo.SeedBrokers(bootstrap(rest)...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"rep": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}}))
	got := map[int32]map[int64]string{0: {}, 1: {}}
	for n := 0; n < len(acks); {
		fs := c2.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := got[r.Partition][r.Offset]; !dup {
				n++
			}
			got[r.Partition][r.Offset] = string(r.Value)
		})
	}
	for _, a := range acks {
		if got[a.p][a.off] != a.v {
			t.Fatalf("partition %d offset %d: got %q, acknowledged %q", a.p, a.off, got[a.p][a.off], a.v)
		}
	}
	// The surviving replicas' logs are identical below the high watermark.
	for p := int32(0); p < 2; p++ {
		var ref []byte
		for _, b := range rest {
			part := b.srv.parts.Get("rep", p)
			hw := part.HighWatermark()
			sl, err := part.Log().Read(0, 1<<30, hw, true)
			if err != nil {
				t.Fatal(err)
			}
			data, err := sl.ReadAll()
			sl.Release()
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = data
			} else if !bytes.Equal(ref[:min(len(ref), len(data))], data[:min(len(ref), len(data))]) {
				t.Fatalf("partition %d: replicas differ below the high watermark", p)
			}
		}
	}
}

// TestNotEnoughReplicas: with one of two replicas gone and
// min.insync.replicas=2, acks=all is refused with NOT_ENOUGH_REPLICAS once
// the ISR has shrunk; acks=1 still works.
func TestNotEnoughReplicas(t *testing.T) {
	bs := startCluster(t, 2, func(c *Config) {
		c.SessionTTL = 2 * time.Second
		c.ReplicaLagTimeMax = time.Second
		c.ControlledShutdownTimeout = time.Second
	})
	ctx := ctxT(t, 60*time.Second)
	adm := kadm.NewClient(bs[0].client())
	minISR := "2"
	r, err := adm.CreateTopic(ctx, 1, 2, map[string]*string{"min.insync.replicas": &minISR}, "nee")
	if err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	waitFor(t, "every broker to know the topic", 10*time.Second, func() bool {
		for _, b := range bs {
			if b.srv.parts.Get("nee", 0) == nil {
				return false
			}
		}
		return true
	})
	md, _ := adm.Metadata(ctx, "nee")
	leader := md.Topics["nee"].Partitions[0].Leader
	var lb, other *testBroker
	for _, b := range bs {
		if b.srv.cfg.NodeID == leader {
			lb = b
		} else {
			other = b
		}
	}
	p := lb.client(kgo.DefaultProduceTopic("nee"), kgo.RecordRetries(0), kgo.RequestRetries(0))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	other.stop()
	// Wait for the ISR to shrink to the leader alone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := lb.srv.cache.Partition(lb.srv.parts.Get("nee", 0).TopicID(), 0)
		if len(st.ISR) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ISR did not shrink: %v", st.ISR)
		}
		time.Sleep(100 * time.Millisecond)
	}
	err = p.ProduceSync(ctx, &kgo.Record{Value: []byte("refused")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with ISR below min.insync.replicas: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	p1 := lb.client(kgo.DefaultProduceTopic("nee"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := p1.ProduceSync(ctx, &kgo.Record{Value: []byte("acks1")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
}

// createAssigned creates a topic with an explicit replica assignment.
func createAssigned(t *testing.T, cl *kgo.Client, topic string, assign ...[]int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, rs := range assign {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctxT(t, 15*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReassignmentAndPreferredElection moves a partition from brokers [1 2]
// to [2 3] under load, checks every record is still there and broker 1 dropped
// its replica; then moves leadership away from the preferred replica and back
// with ElectLeaders.
func TestReassignmentAndPreferredElection(t *testing.T) {
	bs := startCluster(t, 3, func(c *Config) {
		c.SessionTTL = 3 * time.Second
		c.ReplicaLagTimeMax = 3 * time.Second
	})
	ctx := ctxT(t, 90*time.Second)
	cl := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.DefaultProduceTopic("mv"))
	adm := kadm.NewClient(cl)
	createAssigned(t, cl, "mv", []int32{1, 2})
	waitFor(t, "the replicas to open", 10*time.Second, func() bool {
		return bs[0].srv.parts.Get("mv", 0) != nil && bs[1].srv.parts.Get("mv", 0) != nil
	})
	var n int
	produce := func(k int) {
		for i := 0; i < k; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(n))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	produce(100)
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("mv", 0, []int32{2, 3})
	if res, err := adm.AlterPartitionAssignments(ctx, req); err != nil {
		t.Fatal(err)
	} else if err := res["mv"][0].Err; err != nil {
		t.Fatal(err)
	}
	produce(100)
	waitFor(t, "reassignment to finish", 30*time.Second, func() bool {
		md, err := adm.Metadata(ctx, "mv")
		if err != nil {
			return false
		}
		p := md.Topics["mv"].Partitions[0]
		return slices.Equal(p.Replicas, []int32{2, 3}) && len(p.ISR) == 2
	})
	lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"mv": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lr["mv"]) != 0 {
		t.Fatalf("reassignment still listed: %+v", lr)
	}
	waitFor(t, "broker 1 to drop its replica", 10*time.Second, func() bool { return bs[0].srv.parts.Get("mv", 0) == nil })
	produce(50)
	c := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"mv": {0: kgo.NewOffset().AtStart()}}))
	for got := 0; got < n; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != fmt.Sprint(r.Offset) {
				t.Fatalf("offset %d holds %q", r.Offset, r.Value)
			}
			got++
		})
	}

	// Preferred election: nothing to do while the preferred replica leads.
	er, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"mv": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := er["mv"][0].Err; !errors.Is(e, kerr.ElectionNotNeeded) {
		t.Fatalf("preferred election with the preferred leader in place: %v", e)
	}
	// Move leadership to 3 by hand, then ask for the preferred replica back.
	id := bs[1].srv.parts.Get("mv", 0).TopicID()
	st, _ := bs[1].srv.cache.Partition(id, 0)
	st.Leader, st.LeaderEpoch, st.PartitionEpoch = 3, st.LeaderEpoch+1, st.PartitionEpoch+1
	if _, err := bs[1].srv.store.UpdatePartition(ctx, id, 0, st); err != nil {
		t.Fatal(err)
	}
	produce(10)
	er, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"mv": {0: {}}})
	if err != nil || er["mv"][0].Err != nil {
		t.Fatalf("preferred election: %v %v", err, er["mv"][0].Err)
	}
	waitFor(t, "preferred leader", 10*time.Second, func() bool {
		md, err := adm.Metadata(ctx, "mv")
		return err == nil && md.Topics["mv"].Partitions[0].Leader == 2
	})
	produce(10)
}
