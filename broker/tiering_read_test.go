package broker

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
)

// slowStore delays every ranged read by delay (when set) and records the
// most reads it saw in flight at once.
type slowStore struct {
	tier.ObjectStore
	delay    atomic.Int64 // nanoseconds
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

func (s *slowStore) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.ObjectStore.ReadAt(ctx, key, p, off)
}

// tieredNode starts a broker on a slowStore with fast upload and retention
// loops, and the given remote.fetch.max.wait.
func tieredNode(t *testing.T, dir string, store tier.ObjectStore, remoteWait time.Duration) *testBroker {
	return startNode(t, dir, 1, nil, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
		c.RetentionCheckInterval = 200 * time.Millisecond
		if remoteWait > 0 {
			c.RemoteFetchMaxWait = remoteWait
		}
	}, func(d *Deps) { d.Tier = store })
}

// produceN produces n records of 100 bytes to every partition of topic, with
// record i of a partition at timestamp ts(i) when ts is set.
func produceN(t *testing.T, b *testBroker, topic string, partitions int32, n int, ts func(i int) time.Time) {
	t.Helper()
	cl := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(2048), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 60*time.Second)
	for p := range partitions {
		for i := range n {
			r := &kgo.Record{Partition: p, Value: []byte(strings.Repeat("x", 100))}
			if ts != nil {
				r.Timestamp = ts(i)
			}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitTiered waits until every partition of topic keeps only its active
// segment locally, the rest being in the tier.
func waitTiered(t *testing.T, b *testBroker, topic string, partitions int32) {
	t.Helper()
	for i := range partitions {
		p := b.srv.parts.Get(topic, i)
		waitFor(t, "history to move to the tier", 30*time.Second, func() bool {
			segs := p.Log().Segments()
			return len(segs) == 1 && p.Log().LogStartOffset() > 0 && p.RemoteStart() == 0
		})
	}
}

// topicID is the id of topic, for fetches by id (v13+).
func topicID(t *testing.T, b *testBroker, topic string) [16]byte {
	tp, ok := b.srv.cache.Topic(topic)
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	return tp.ID
}

// batchesOf checks that b is whole record batches starting with the one
// holding offset from, and returns the offset after the last.
func batchesOf(t *testing.T, b []byte, from int64) int64 {
	t.Helper()
	next := int64(-1)
	for len(b) > 0 {
		if len(b) < 61 {
			t.Fatalf("partial batch of %d bytes", len(b))
		}
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		base := int64(binary.BigEndian.Uint64(b))
		last := base + int64(binary.BigEndian.Uint32(b[23:]))
		if next < 0 && (base > from || last < from) {
			t.Fatalf("first batch [%d, %d] does not hold offset %d", base, last, from)
		}
		if next >= 0 && base != next {
			t.Fatalf("batch at %d after %d", base, next)
		}
		next = last + 1
		b = b[size:]
	}
	return next
}

// TestFetchMixesTierAndLocal: one Fetch naming partitions whose offsets are
// in the tier and partitions read locally gets every one of them, reads the
// tier for all its partitions at once, and keeps within MaxBytes and each
// PartitionMaxBytes (KIP-74: only the first partition may exceed with one
// whole batch).
func TestFetchMixesTierAndLocal(t *testing.T) {
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &slowStore{ObjectStore: fs}
	b := tieredNode(t, t.TempDir(), store, 10*time.Second)
	segBytes, zero, off := "4096", "0", "false"
	b.createTopic("cold", 3, map[string]*string{"segment.bytes": &segBytes, "local.retention.bytes": &zero})
	b.createTopic("hot", 1, map[string]*string{"segment.bytes": &segBytes, "remote.storage.enable": &off})
	produceN(t, b, "cold", 3, 150, nil)
	produceN(t, b, "hot", 1, 150, nil)
	waitTiered(t, b, "cold", 3)

	ctx := ctxT(t, 60*time.Second)
	cl := b.client()
	fetch := func(maxBytes, partMax int32) map[string][]kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 100
		req.MinBytes = 1
		req.MaxBytes = maxBytes
		req.SessionEpoch = -1
		for _, tp := range []struct {
			topic string
			part  int32
		}{{"cold", 0}, {"hot", 0}, {"cold", 1}, {"cold", 2}} {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = tp.topic
			rt.TopicID = topicID(t, b, tp.topic)
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = tp.part
			rp.FetchOffset = 0
			rp.PartitionMaxBytes = partMax
			rp.LogStartOffset = -1
			rp.CurrentLeaderEpoch = -1
			rp.LastFetchedEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]kmsg.FetchResponseTopicPartition{}
		for _, rt := range resp.Topics {
			name := rt.Topic
			for _, n := range []string{"cold", "hot"} {
				if rt.TopicID == topicID(t, b, n) {
					name = n
				}
			}
			out[name] = append(out[name], rt.Partitions...)
		}
		return out
	}

	// A slow store: the three tier reads overlap rather than queue.
	store.delay.Store(int64(200 * time.Millisecond))
	got := fetch(100000, 3000)
	store.delay.Store(0)
	var total int
	for topic, parts := range got {
		for _, rp := range parts {
			if rp.ErrorCode != 0 {
				t.Fatalf("%s-%d: %v", topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
			if len(rp.RecordBatches) == 0 || len(rp.RecordBatches) > 3000 {
				t.Fatalf("%s-%d: %d bytes with PartitionMaxBytes 3000", topic, rp.Partition, len(rp.RecordBatches))
			}
			batchesOf(t, rp.RecordBatches, 0)
			if topic == "cold" && rp.LogStartOffset != 0 {
				t.Fatalf("cold-%d: log start %d, want 0 (the tier's start)", rp.Partition, rp.LogStartOffset)
			}
			total += len(rp.RecordBatches)
		}
	}
	if len(got["cold"]) != 3 || len(got["hot"]) != 1 {
		t.Fatalf("partitions answered: %d cold, %d hot", len(got["cold"]), len(got["hot"]))
	}
	if m := store.maxSeen.Load(); m < 2 {
		t.Fatalf("at most %d ranged read in flight: the tier reads of one fetch ran one after another", m)
	}

	// A response budget smaller than the partitions' sum: the total stays
	// within it, in request order, whichever of them are remote.
	for _, maxBytes := range []int32{1, 2500, 5000, 7000} {
		got := fetch(maxBytes, 3000)
		total = 0
		first := true
		for _, topic := range []string{"cold", "hot"} {
			for _, rp := range got[topic] {
				if rp.ErrorCode != 0 {
					t.Fatalf("MaxBytes %d: %s-%d: %v", maxBytes, topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
				if len(rp.RecordBatches) > 0 {
					batchesOf(t, rp.RecordBatches, 0)
				}
				total += len(rp.RecordBatches)
			}
		}
		c0 := got["cold"][0]
		if len(c0.RecordBatches) == 0 {
			t.Fatalf("MaxBytes %d: the first partition got nothing (KIP-74 gives it one whole batch)", maxBytes)
		}
		if first && total > int(maxBytes) && total != len(c0.RecordBatches) {
			t.Fatalf("MaxBytes %d: %d bytes in the response", maxBytes, total)
		}
	}
}

// TestRemoteFetchMaxWait: a tier read slower than remote.fetch.max.wait.ms
// leaves its partition empty, without an error, and the fetch answers at
// once; the read goes on into the chunk cache, which serves the next fetch.
func TestRemoteFetchMaxWait(t *testing.T) {
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &slowStore{ObjectStore: fs}
	b := tieredNode(t, t.TempDir(), store, 200*time.Millisecond)
	segBytes, zero := "4096", "0"
	b.createTopic("cold", 1, map[string]*string{"segment.bytes": &segBytes, "local.retention.bytes": &zero})
	produceN(t, b, "cold", 1, 150, nil)
	waitTiered(t, b, "cold", 1)

	ctx := ctxT(t, 60*time.Second)
	cl := b.client()
	fetch := func() (kmsg.FetchResponseTopicPartition, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 10000
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "cold"
		rt.TopicID = topicID(t, b, "cold")
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0], time.Since(start)
	}
	const delay = 4 * time.Second
	store.delay.Store(int64(delay))
	rp, took := fetch()
	if rp.ErrorCode != 0 || len(rp.RecordBatches) != 0 {
		t.Fatalf("slow tier read: error %v, %d bytes; want an empty answer", kerr.ErrorForCode(rp.ErrorCode), len(rp.RecordBatches))
	}
	if took >= delay {
		t.Fatalf("the fetch waited %v, as long as the tier read itself", took)
	}
	var m dto.Metric
	if err := b.srv.metrics.remoteTimeouts.Write(&m); err != nil || m.GetCounter().GetValue() < 1 {
		t.Fatalf("remote_fetch_timeouts_total %v (%v)", m.GetCounter().GetValue(), err)
	}
	store.delay.Store(0)
	waitFor(t, "the tier read to land in the cache", 30*time.Second, func() bool {
		rp, _ := fetch()
		return rp.ErrorCode == 0 && len(rp.RecordBatches) > 0
	})
}

// TestTimestampsAndEpochsFromTier: ListOffsets by timestamp and
// OffsetForLeaderEpoch answer from the tier for history no longer on local
// disk, as they would have from local segments.
func TestTimestampsAndEpochsFromTier(t *testing.T) {
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bs := startCluster(t, 2, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
		c.RetentionCheckInterval = 200 * time.Millisecond
		c.ReplicaLagTimeMax = 2 * time.Second
		c.SessionTTL = 3 * time.Second
	}, func(d *Deps) { d.Tier = fs })
	segBytes, one := "4096", "1"
	if r, err := bs[0].admin().CreateTopic(ctxT(t, 20*time.Second), 1, 2, map[string]*string{"segment.bytes": &segBytes, "min.insync.replicas": &one}, "ts"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	var b *testBroker
	waitFor(t, "a leader", 20*time.Second, func() bool {
		for _, x := range bs {
			if p := x.srv.parts.Get("ts", 0); p != nil && p.IsLeader() {
				b = x
				return true
			}
		}
		return false
	})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	produceN(t, b, "ts", 1, 100, at)
	firstEpoch := b.srv.parts.Get("ts", 0).LeaderEpoch()
	waitFor(t, "both brokers in the ISR", 30*time.Second, func() bool {
		st, ok := b.srv.cache.Partition(topicID(t, b, "ts"), 0)
		return ok && len(st.ISR) == 2
	})

	// The leader stops: the other broker leads from offset 100 in a new epoch.
	other := bs[0]
	if other == b {
		other = bs[1]
	}
	b.stop()
	b = other
	waitFor(t, "the other broker to lead", 30*time.Second, func() bool {
		p := b.srv.parts.Get("ts", 0)
		return p != nil && p.IsLeader()
	})
	secondEpoch := b.srv.parts.Get("ts", 0).LeaderEpoch()
	if secondEpoch <= firstEpoch {
		t.Fatalf("leader epoch %d after the failover, %d before", secondEpoch, firstEpoch)
	}
	produceN(t, b, "ts", 1, 100, func(i int) time.Time { return at(100 + i) })

	zero := "0"
	ctx := ctxT(t, 60*time.Second)
	if _, err := b.admin().AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "local.retention.bytes", Value: &zero}}, "ts"); err != nil {
		t.Fatal(err)
	}
	waitTiered(t, b, "ts", 1)
	p := b.srv.parts.Get("ts", 0)
	localStart := p.Log().LogStartOffset()
	if localStart <= 100 {
		t.Fatalf("local log start %d: the test needs both epochs' history in the tier only", localStart)
	}

	adm := b.admin()
	for _, c := range []struct {
		ms   int64
		want int64
	}{
		{at(0).UnixMilli() - 5000, 0},
		{at(37).UnixMilli(), 37},
		{at(37).UnixMilli() - 400, 37},
		{at(150).UnixMilli(), 150},
		{at(199).UnixMilli(), 199},
		{at(200).UnixMilli(), 200}, // none: kadm gives the end offset
	} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, c.ms, "ts")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("ts", 0)
		if o.Err != nil || o.Offset != c.want {
			t.Fatalf("ListOffsets at %d ms: offset %d (%v), want %d (local log start %d)", c.ms, o.Offset, o.Err, c.want, localStart)
		}
	}

	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ts"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch = -1
	rp.LeaderEpoch = firstEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.client())
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode != 0 || got.LeaderEpoch != firstEpoch || got.EndOffset != 100 {
		t.Fatalf("OffsetForLeaderEpoch(%d): epoch %d end %d (%v), want epoch %d end 100",
			firstEpoch, got.LeaderEpoch, got.EndOffset, kerr.ErrorForCode(got.ErrorCode), firstEpoch)
	}
}
