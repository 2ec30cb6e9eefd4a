package it

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGoProduceConsume produces with franz-go to three partitions with
// every codec (acks=all, idempotent, batches of many records) and consumes
// each partition back by direct assignment: every value, in order, at its
// acknowledged offset, and in a batch carrying the producer's codec (batches
// are stored verbatim).
func TestFranzGoProduceConsume(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := b.Admin(t)
	const (
		partitions = 3
		perPart    = 400
	)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "franz-" + codec
			createTopic(t, adm, topic, partitions, nil)
			cl := b.Client(t,
				manualPartitions,
				kgo.ProducerBatchCompression(kgoCodec(codec)),
				kgo.ProducerLinger(5*time.Millisecond),
				kgo.RequiredAcks(kgo.AllISRAcks()),
			)
			ctx := testContext(t, 60*time.Second)
			type ack struct {
				off int64
				err error
			}
			acks := make([][]ack, partitions)
			for p := range acks {
				acks[p] = make([]ack, perPart)
			}
			// Interleave partitions so that each produce request carries several.
			for i := range perPart {
				for p := range int32(partitions) {
					r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(value(topic, p, i))}
					cl.Produce(ctx, r, func(r *kgo.Record, err error) {
						acks[r.Partition][i] = ack{r.Offset, err}
					})
				}
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			for p := range int32(partitions) {
				for i, a := range acks[p] {
					if a.err != nil || a.off != int64(i) {
						t.Fatalf("%s[%d] record %d: acknowledged at offset %d, err %v; want offset %d", topic, p, i, a.off, a.err, i)
					}
				}
			}
			ends := endOffsets(t, adm, topic)
			for p := range int32(partitions) {
				if ends[p] != perPart {
					t.Fatalf("%s[%d]: end offset %d, want %d", topic, p, ends[p], perPart)
				}
				recs := consumePartition(t, b, topic, p, 0, perPart)
				checkValues(t, topic, p, 0, 0, recs)
				// Batches come back as produced: with the codec, or
				// uncompressed where kgo found compressing did not pay (a
				// small batch); at least one must carry the codec.
				withCodec := 0
				for _, r := range recs {
					switch got := r.Attrs.CompressionType(); got {
					case codecAttr(codec):
						withCodec++
					case 0:
					default:
						t.Fatalf("%s[%d] offset %d: fetched batch codec %d, want %d (%s) or none", topic, p, r.Offset, got, codecAttr(codec), codec)
					}
				}
				if withCodec == 0 {
					t.Fatalf("%s[%d]: no batch stored with %s", topic, p, codec)
				}
				// A consumer starting in the middle of a batch gets the rest of it.
				mid := int64(perPart/2 + 1)
				recs = consumePartition(t, b, topic, p, mid, perPart-int(mid))
				checkValues(t, topic, p, mid, int(mid), recs)
			}
		})
	}
}

// TestFranzGoAdmin drives every admin API the broker serves through kadm.
func TestFranzGoAdmin(t *testing.T) {
	t.Parallel()
	b := StartBroker(t, "--num-partitions", "2")
	adm := b.Admin(t)
	ctx := testContext(t, 2*time.Minute)

	// CreateTopics with configs; a duplicate fails with TOPIC_ALREADY_EXISTS.
	retention := "3600000"
	createTopic(t, adm, "admin-a", 3, map[string]*string{"retention.ms": &retention})
	createTopic(t, adm, "admin-b", 1, nil)
	if r, _ := adm.CreateTopic(ctx, 1, 1, nil, "admin-a"); !isKErr(r.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("creating admin-a again: %v; want TOPIC_ALREADY_EXISTS", r.Err)
	}
	// Replication factor 3 cannot be met by one broker.
	if r, _ := adm.CreateTopic(ctx, 1, 3, nil, "admin-rf3"); !isKErr(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("creating a topic with replication factor 3 on one broker: %v; want INVALID_REPLICATION_FACTOR", r.Err)
	}

	// ListTopics and describe (Metadata).
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	for name, n := range map[string]int{"admin-a": 3, "admin-b": 1} {
		d, ok := td[name]
		if !ok || d.Err != nil || len(d.Partitions) != n || d.ID == [16]byte{} {
			t.Fatalf("list topics: %s = %+v (present %v), want %d partitions and a topic id", name, d, ok, n)
		}
		for _, p := range d.Partitions {
			if p.Leader != 1 || len(p.Replicas) != 1 || p.Replicas[0] != 1 || len(p.ISR) != 1 {
				t.Fatalf("%s[%d]: leader %d replicas %v isr %v, want leader 1, replicas [1], isr [1]", name, p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
	}
	if _, ok := td["admin-rf3"]; ok {
		t.Fatal("admin-rf3 exists after its creation failed")
	}

	// DescribeCluster and broker metadata.
	bm, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("broker metadata: %v", err)
	}
	if len(bm.Brokers) != 1 || bm.Brokers[0].NodeID != 1 || bm.Controller != 1 || bm.Cluster == "" {
		t.Fatalf("broker metadata: %+v, want broker 1 as the controller and a cluster id", bm)
	}
	if got := fmt.Sprintf("%s:%d", bm.Brokers[0].Host, bm.Brokers[0].Port); got != b.Addr {
		t.Fatalf("advertised address %s, want %s", got, b.Addr)
	}

	// DescribeCluster (kadm has no wrapper: a raw kmsg request through kgo).
	dcReq := kmsg.NewPtrDescribeClusterRequest()
	dcResp, err := dcReq.RequestWith(ctx, b.Client(t))
	if err != nil {
		t.Fatalf("describe cluster: %v", err)
	}
	if dcResp.ErrorCode != 0 || dcResp.ClusterID != bm.Cluster || dcResp.ControllerID != 1 ||
		len(dcResp.Brokers) != 1 || fmt.Sprintf("%s:%d", dcResp.Brokers[0].Host, dcResp.Brokers[0].Port) != b.Addr {
		t.Fatalf("describe cluster: %+v, want cluster %s, controller 1 and broker 1 at %s", dcResp, bm.Cluster, b.Addr)
	}

	// DescribeConfigs: the topic override and broker defaults.
	rcs, err := adm.DescribeTopicConfigs(ctx, "admin-a")
	if err != nil {
		t.Fatalf("describe topic configs: %v", err)
	}
	rc, err := rcs.On("admin-a", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of admin-a: %v %v", err, rc.Err)
	}
	cfgs := configMap(rc)
	if c, ok := cfgs["retention.ms"]; !ok || c.MaybeValue() != "3600000" || c.Source != 1 /* DYNAMIC_TOPIC_CONFIG */ {
		t.Fatalf("admin-a retention.ms = %+v, want 3600000 from DYNAMIC_TOPIC_CONFIG", c)
	}
	if c, ok := cfgs["segment.bytes"]; !ok || c.MaybeValue() == "" {
		t.Fatalf("admin-a segment.bytes missing from DescribeConfigs: %+v", c)
	}
	brcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatalf("describe broker configs: %v", err)
	}
	if len(brcs) != 1 || brcs[0].Err != nil || len(brcs[0].Configs) == 0 {
		t.Fatalf("describe broker configs: %+v", brcs)
	}

	// IncrementalAlterConfigs: set, then delete back to the default.
	segMs := "600000"
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.ms", Value: &segMs},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "admin-a")
	if err != nil || len(ar) != 1 || ar[0].Err != nil {
		t.Fatalf("incremental alter configs: %v %+v", err, ar)
	}
	cfgs = describeTopicConfigs(t, adm, "admin-a")
	if c := cfgs["segment.ms"]; c.MaybeValue() != "600000" || c.Source != 1 {
		t.Fatalf("after incremental alter: segment.ms = %+v, want 600000 (dynamic)", c)
	}
	if c := cfgs["retention.ms"]; c.Source == 1 {
		t.Fatalf("after deleting retention.ms it is still a topic override: %+v", c)
	}
	// An unknown config is rejected and changes nothing.
	bogus := "1"
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: &bogus}}, "admin-a")
	if err == nil && (len(ar) != 1 || ar[0].Err == nil) {
		t.Fatalf("altering an unknown config succeeded: %+v", ar)
	}

	// AlterConfigs (legacy, replaces the whole set).
	maxMsg := "500000"
	ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &maxMsg}}, "admin-a")
	if err != nil || len(ar) != 1 || ar[0].Err != nil {
		t.Fatalf("alter configs: %v %+v", err, ar)
	}
	cfgs = describeTopicConfigs(t, adm, "admin-a")
	if c := cfgs["max.message.bytes"]; c.MaybeValue() != "500000" || c.Source != 1 {
		t.Fatalf("after alter configs: max.message.bytes = %+v, want 500000 (dynamic)", c)
	}
	if c := cfgs["segment.ms"]; c.Source == 1 {
		t.Fatalf("legacy AlterConfigs kept segment.ms as an override: %+v", c)
	}

	// CreatePartitions: 3 -> 5; the new partitions take produces.
	cp, err := adm.UpdatePartitions(ctx, 5, "admin-a")
	if err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	if r, err := cp.On("admin-a", nil); err != nil || r.Err != nil {
		t.Fatalf("create partitions of admin-a: %v %v", err, r.Err)
	}
	waitTopic(t, adm, "admin-a", 5)
	cl := b.Client(t, manualPartitions)
	for p := range int32(5) {
		produceSync(t, cl, "admin-a", p, 0, 10, 0)
	}

	// ListOffsets: start, end, and by timestamp.
	const n = 20
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "admin-b", Partition: 0, Value: []byte(value("admin-b", 0, i)),
			Timestamp: base.Add(time.Duration(i) * time.Second)}
	}
	// One record per request: ListOffsets by time is exact at batch boundaries.
	for _, r := range recs {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce admin-b: %v", err)
		}
	}
	var lo kadm.ListedOffsets
	lo, err = adm.ListStartOffsets(ctx, "admin-b")
	checkListed(t, "start", lo, err, 0)
	lo, err = adm.ListEndOffsets(ctx, "admin-b")
	checkListed(t, "end", lo, err, n)
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(5500*time.Millisecond).UnixMilli(), "admin-b")
	checkListed(t, "after base+5.5s", lo, err, 6)
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.UnixMilli(), "admin-b")
	checkListed(t, "after base", lo, err, 0)
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "admin-b")
	checkListed(t, "after the last timestamp", lo, err, n)
	if got := consumePartition(t, b, "admin-b", 0, 0, n); len(got) != n || !got[7].Timestamp.Equal(base.Add(7*time.Second)) {
		t.Fatalf("record 7 timestamp %v, want %v", got[7].Timestamp, base.Add(7*time.Second))
	}

	// DeleteRecords moves the log start offset; fetching below it is out of range.
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"admin-b": {0: {Topic: "admin-b", Partition: 0, At: 12}}})
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	if r, ok := dr.Lookup("admin-b", 0); !ok || r.Err != nil || r.LowWatermark != 12 {
		t.Fatalf("delete records: %+v (ok %v), want low watermark 12", r, ok)
	}
	lo, err = adm.ListStartOffsets(ctx, "admin-b")
	checkListed(t, "start after delete records", lo, err, 12)
	got := consumePartition(t, b, "admin-b", 0, 12, n-12)
	checkValues(t, "admin-b", 0, 12, 12, got)
	{
		lcl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"admin-b": {0: kgo.NewOffset().At(3)}}),
			kgo.ConsumeResetOffset(kgo.NoResetOffset()))
		fctx := testContext(t, 20*time.Second)
		var ferr error
		for ferr == nil && fctx.Err() == nil {
			fs := lcl.PollFetches(fctx)
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if len(fs.Records()) > 0 {
				t.Fatalf("fetch below the log start offset returned records (first offset %d)", fs.Records()[0].Offset)
			}
		}
		if !isKErr(ferr, kerr.OffsetOutOfRange) {
			t.Fatalf("fetch below the log start offset: %v, want OFFSET_OUT_OF_RANGE", ferr)
		}
		lcl.Close()
	}

	// DescribeLogDirs reports the partitions with their sizes.
	ld, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatalf("describe log dirs: %v", err)
	}
	var found bool
	ld.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Fatalf("log dir %s: %v", d.Dir, d.Err)
		}
		if p, ok := d.Topics["admin-b"][0]; ok && p.Size > 0 {
			found = true
		}
	})
	if !found {
		t.Fatalf("describe log dirs does not list admin-b[0] with a size: %+v", ld)
	}

	// DeleteTopics: the topic disappears and a new one of the same name starts empty.
	dt, err := adm.DeleteTopics(ctx, "admin-b")
	if err != nil || dt["admin-b"].Err != nil {
		t.Fatalf("delete topic: %v %+v", err, dt)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		td, err := adm.ListTopics(ctx)
		if err == nil {
			if _, ok := td["admin-b"]; !ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin-b still listed after deletion (err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	createTopic(t, adm, "admin-b", 1, nil)
	// A client that knew the old topic id abandons its records (franz-go
	// fails them with UNKNOWN_TOPIC_ID); use a new one.
	cl = b.Client(t, manualPartitions)
	lo, err = adm.ListEndOffsets(ctx, "admin-b")
	checkListed(t, "end of re-created topic", lo, err, 0)
	produceSync(t, cl, "admin-b", 0, 100, 3, 0)
	checkValues(t, "admin-b", 0, 0, 100, consumePartition(t, b, "admin-b", 0, 0, 3))
	if dt, err := adm.DeleteTopics(ctx, "no-such-topic"); err != nil || !isKErr(dt["no-such-topic"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleting a missing topic: %v %+v, want UNKNOWN_TOPIC_OR_PARTITION", err, dt)
	}
}

func configMap(rc kadm.ResourceConfig) map[string]kadm.Config {
	m := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		m[c.Key] = c
	}
	return m
}

func describeTopicConfigs(t testing.TB, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testContext(t, 30*time.Second), topic)
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	return configMap(rc)
}

// checkListed requires every partition of a ListOffsets result to be at want.
func checkListed(t testing.TB, what string, lo kadm.ListedOffsets, err error, want int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("list offsets (%s): %v", what, err)
	}
	n := 0
	lo.Each(func(o kadm.ListedOffset) {
		n++
		if o.Err != nil || o.Offset != want {
			t.Fatalf("list offsets (%s) %s[%d]: offset %d err %v, want %d", what, o.Topic, o.Partition, o.Offset, o.Err, want)
		}
	})
	if n == 0 {
		t.Fatalf("list offsets (%s): no partitions", what)
	}
}
