package broker

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestApiVersionsDerived checks the advertised versions are exactly the
// registered ones.
func TestApiVersionsDerived(t *testing.T) {
	b := startBroker(t, nil)
	cl := b.client()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ApiKeys) != len(registered) {
		t.Fatalf("advertised %d apis, registered %d", len(resp.ApiKeys), len(registered))
	}
	for i, k := range resp.ApiKeys {
		r := registered[i]
		if k.ApiKey != r.key || k.MinVersion != r.min || k.MaxVersion != r.max {
			t.Errorf("api %d: advertised %+v, registered %+v", i, k, r)
		}
	}
}

// TestProduceConsumeCodecs round-trips records through every codec over
// several partitions and checks order and content.
func TestProduceConsumeCodecs(t *testing.T) {
	b := startBroker(t, nil)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			b.createTopic(topic, 4, nil)
			p := b.client(kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			const n = 500
			ctx := ctxT(t, 30*time.Second)
			var recs []*kgo.Record
			for part := int32(0); part < 4; part++ {
				for i := 0; i < n; i++ {
					recs = append(recs, &kgo.Record{Partition: part, Value: val(part, i)})
				}
			}
			if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			c := b.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {
				0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(), 3: kgo.NewOffset().AtStart(),
			}}))
			next := map[int32]int{}
			for got := 0; got < 4*n; {
				fs := c.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					got++
					want := val(r.Partition, next[r.Partition])
					if !bytes.Equal(r.Value, want) || r.Offset != int64(next[r.Partition]) {
						t.Fatalf("partition %d offset %d: got %q, want %q at offset %d", r.Partition, r.Offset, r.Value, want, next[r.Partition])
					}
					next[r.Partition]++
				})
			}
		})
	}
}

// TestFetchSessionsManyTopics consumes from interleaved topics so a
// response carries records of several topics (placeholder splicing) and
// franz-go's incremental fetch sessions are exercised.
func TestFetchSessionsManyTopics(t *testing.T) {
	b := startBroker(t, nil)
	topics := []string{"ta", "tb", "tc"}
	for _, tp := range topics {
		b.createTopic(tp, 3, nil)
	}
	p := b.client()
	ctx := ctxT(t, 60*time.Second)
	parts := map[string]map[int32]kgo.Offset{}
	for _, tp := range topics {
		parts[tp] = map[int32]kgo.Offset{0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart()}
	}
	c := b.client(kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))
	const rounds, per = 20, 30
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 0; r < rounds; r++ {
			var recs []*kgo.Record
			for _, tp := range topics {
				for i := 0; i < per; i++ {
					recs = append(recs, &kgo.Record{Topic: tp, Value: []byte(tp)})
				}
			}
			if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	count := map[string]int{}
	total := 0
	for total < rounds*per*len(topics) {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != r.Topic {
				t.Fatalf("record of %s carries %q", r.Topic, r.Value)
			}
			count[r.Topic]++
			total++
		})
	}
	wg.Wait()
	for _, tp := range topics {
		if count[tp] != rounds*per {
			t.Errorf("%s: %d records, want %d", tp, count[tp], rounds*per)
		}
	}
}

// TestLongPoll: a fetch with MinBytes waits for data and returns soon
// after it arrives, and returns empty after MaxWait otherwise.
func TestLongPoll(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("lp", 1, nil)
	cl := b.client()
	ctx := ctxT(t, 30*time.Second)
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "lp")
	if err != nil {
		t.Fatal(err)
	}
	id := topics["lp"].ID
	fetch := func(wait int32) (*kmsg.FetchResponse, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = wait, 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "lp", id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp, time.Since(start)
	}
	resp, took := fetch(300)
	if took < 250*time.Millisecond {
		t.Fatalf("empty fetch returned after %v, before MaxWait", took)
	}
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 0 {
		t.Fatalf("empty log returned %d bytes", n)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		cl.ProduceSync(ctx, &kgo.Record{Topic: "lp", Value: []byte("x")})
	}()
	resp, took = fetch(10000)
	if took > 5*time.Second {
		t.Fatalf("long poll took %v although data arrived", took)
	}
	if len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatal("long poll returned no records")
	}
}

// TestIdempotentDedup sends the same idempotent batch twice: the second gets
// the original offset; a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER.
func TestIdempotentDedup(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("idem", 1, nil)
	cl := b.client()
	ctx := ctxT(t, 30*time.Second)
	ipid, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || ipid.ErrorCode != 0 {
		t.Fatal(err, ipid.ErrorCode)
	}
	produce := func(seq int32, n int) (int16, int64) {
		batch := buildBatch(ipid.ProducerID, ipid.ProducerEpoch, seq, n)
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "idem"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.Topics[0].Partitions[0]
		return sp.ErrorCode, sp.BaseOffset
	}
	if code, off := produce(0, 5); code != 0 || off != 0 {
		t.Fatalf("first batch: code %d offset %d", code, off)
	}
	if code, off := produce(5, 5); code != 0 || off != 5 {
		t.Fatalf("second batch: code %d offset %d", code, off)
	}
	if code, off := produce(0, 5); code != 0 || off != 0 {
		t.Fatalf("duplicate of first: code %d offset %d, want 0 and original offset 0", code, off)
	}
	if code, _ := produce(20, 5); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
	// The log holds exactly the 10 records.
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, "idem")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("idem", 0); o.Offset != 10 {
		t.Fatalf("end offset %d, want 10", o.Offset)
	}
}

// buildBatch encodes an uncompressed v2 batch with kmsg.
func buildBatch(pid int64, epoch int16, seq int32, n int) []byte {
	var recs []byte
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte("v")
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.LastOffsetDelta = int32(n - 1)
	rb.FirstTimestamp, rb.MaxTimestamp = now, now
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pid, epoch, seq
	rb.NumRecords = int32(n)
	rb.Records = recs
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	// CRC-32C over attributes..end.
	crc := crc32c(raw[21:])
	raw[17], raw[18], raw[19], raw[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return raw
}

// TestTopicAdmin covers create/describe/alter configs/create partitions/
// delete records/delete topic and the errors that go with them.
func TestTopicAdmin(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.AutoCreateTopics = false })
	adm := b.admin()
	ctx := ctxT(t, 60*time.Second)
	retention := "3600000"
	b.createTopic("adm", 2, map[string]*string{"retention.ms": &retention})

	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "adm"); !errors.Is(err, kerr.TopicAlreadyExists) {
		resp, _ := adm.CreateTopic(ctx, 1, 1, nil, "adm")
		if !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			t.Fatalf("duplicate create: %v / %v", err, resp.Err)
		}
	}
	bad := "nope"
	resp, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &bad}, "badcfg")
	if !errors.Is(resp.Err, kerr.InvalidConfig) {
		t.Fatalf("invalid config: %v", resp.Err)
	}
	resp, _ = adm.CreateTopic(ctx, 1, 1, nil, "bad/name")
	if !errors.Is(resp.Err, kerr.InvalidTopicException) {
		t.Fatalf("invalid name: %v", resp.Err)
	}
	resp, _ = adm.CreateTopic(ctx, 1, 3, nil, "rf3")
	if !errors.Is(resp.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3 on one broker: %v", resp.Err)
	}

	cfgs, err := adm.DescribeTopicConfigs(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := cfgs.On("adm", nil)
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["retention.ms"] != "3600000" || got["segment.bytes"] == "" {
		t.Fatalf("configs: %v", got)
	}

	seg := "1048576"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: &seg}}, "adm"); err != nil {
		t.Fatal(err)
	}
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: &seg}}, "adm")
	if err == nil {
		if r, _ := ar.On("adm", nil); !errors.Is(r.Err, kerr.InvalidConfig) {
			t.Fatalf("unknown config accepted: %v", r.Err)
		}
	}
	cfgs, _ = adm.DescribeTopicConfigs(ctx, "adm")
	rc, _ = cfgs.On("adm", nil)
	for _, c := range rc.Configs {
		if c.Key == "segment.bytes" && c.MaybeValue() != seg {
			t.Fatalf("segment.bytes = %s after alter", c.MaybeValue())
		}
		if c.Key == "retention.ms" && c.MaybeValue() != "3600000" {
			t.Fatalf("incremental alter dropped retention.ms: %s", c.MaybeValue())
		}
	}

	if _, err := adm.CreatePartitions(ctx, 2, "adm"); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics["adm"].Partitions); n != 4 {
		t.Fatalf("%d partitions after adding 2, want 4", n)
	}
	cl := b.client(kgo.DefaultProduceTopic("adm"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 3, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"adm": {3: {Topic: "adm", Partition: 3, At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("adm", 3); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", r)
	}
	so, err := adm.ListStartOffsets(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := so.Lookup("adm", 3); o.Offset != 4 {
		t.Fatalf("start offset %d after delete records, want 4", o.Offset)
	}

	// Produce to a missing topic with auto-create off.
	miss := b.client(kgo.DefaultProduceTopic("missing"), kgo.RecordRetries(1), kgo.ProduceRequestTimeout(2*time.Second))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = miss.ProduceSync(pctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("produce to a missing topic succeeded with auto-create off")
	}
	if _, ok := b.srv.cache.Topic("missing"); ok {
		t.Fatal("topic auto-created with auto.create.topics.enable=false")
	}

	if _, err := adm.DeleteTopics(ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.srv.cache.Topic("adm"); ok {
		t.Fatal("topic still present after delete")
	}
	if p := b.srv.parts.Get("adm", 0); p != nil {
		t.Fatal("local partition still open after delete")
	}
}

// TestListOffsetsByTimestamp checks earliest, latest, max timestamp and by
// timestamp lookups.
func TestListOffsetsByTimestamp(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("ts", 1, nil)
	cl := b.client(kgo.DefaultProduceTopic("ts"))
	ctx := ctxT(t, 30*time.Second)
	base := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte("x"), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4500*time.Millisecond).UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("ts", 0); o.Offset != 5 {
		t.Fatalf("offset after t+4.5s = %d, want 5", o.Offset)
	}
	end, _ := adm.ListEndOffsets(ctx, "ts")
	if o, _ := end.Lookup("ts", 0); o.Offset != 10 {
		t.Fatalf("end offset %d", o.Offset)
	}
	maxts, err := adm.ListMaxTimestampOffsets(ctx, "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := maxts.Lookup("ts", 0); o.Offset != 9 || o.Timestamp != base.Add(9*time.Second).UnixMilli() {
		t.Fatalf("max timestamp offset %+v", o)
	}
}
