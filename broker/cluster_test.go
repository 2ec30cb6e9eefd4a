package broker

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
			part := b.srv.parts.get("rep", p)
			hw := part.hw.Load()
			sl, err := part.log.Read(0, 1<<30, hw, true)
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
		st, _ := lb.srv.cache.Partition(lb.srv.parts.get("nee", 0).id, 0)
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
