package it

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// codecs are the four compression codecs every client is exercised with, and
// "none".
var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// kgoCodec maps a codec name to franz-go's.
func kgoCodec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// codecAttr is the v2 batch attributes value (bits 0-2) of a codec name.
func codecAttr(name string) uint8 {
	switch name {
	case "gzip":
		return 1
	case "snappy":
		return 2
	case "lz4":
		return 3
	case "zstd":
		return 4
	}
	return 0
}

// value is the payload of record i of partition p in a test topic: unique,
// and long enough (and repetitive enough) that compression changes bytes.
func value(topic string, p int32, i int) string {
	return fmt.Sprintf("%s/p%d/%06d/the quick brown fox jumps over the lazy dog", topic, p, i)
}

// createTopic creates a topic and waits until its partitions have leaders.
func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	waitTopic(t, adm, topic, partitions)
}

// waitTopic waits until Metadata lists topic with n partitions, each with a leader.
func waitTopic(t testing.TB, adm *kadm.Client, topic string, n int32) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	var last string
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			switch {
			case !ok:
				last = "topic missing"
			case td.Err != nil:
				last = td.Err.Error()
			case len(td.Partitions) != int(n):
				last = fmt.Sprintf("%d partitions", len(td.Partitions))
			default:
				ready := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
						last = fmt.Sprintf("partition %d: leader %d err %v", p.Partition, p.Leader, p.Err)
					}
				}
				if ready {
					return
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s not ready: %s", topic, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// consumePartition reads records [from, from+n) of one partition with a franz-go
// consumer assigned to it directly (there are no consumer groups yet).
func consumePartition(t testing.TB, b *Broker, topic string, p int32, from int64, n int) []*kgo.Record {
	t.Helper()
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {p: kgo.NewOffset().At(from)},
	}), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	ctx := testContext(t, 60*time.Second)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s[%d]: consumed %d of %d records from offset %d before the deadline", topic, p, len(out), n, from)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("%s[%d]: fetch error: %v", e.Topic, e.Partition, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) > n {
		t.Fatalf("%s[%d]: consumed %d records, want %d", topic, p, len(out), n)
	}
	return out
}

// checkValues checks that records are offsets from, from+1, ... of partition p
// with value(topic, p, firstIndex+k).
func checkValues(t testing.TB, topic string, p int32, from int64, firstIndex int, recs []*kgo.Record) {
	t.Helper()
	for k, r := range recs {
		wantOff := from + int64(k)
		want := value(topic, p, firstIndex+k)
		if r.Partition != p || r.Offset != wantOff || string(r.Value) != want {
			t.Fatalf("%s[%d] record %d: got partition %d offset %d value %q, want offset %d value %q",
				topic, p, k, r.Partition, r.Offset, r.Value, wantOff, want)
		}
	}
}

// endOffsets lists the end offsets of topic's partitions.
func endOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s[%d]: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// produceSync produces value(topic, p, first..first+n-1) to partition p and
// checks the offsets it is acknowledged at, starting with wantBase.
func produceSync(t testing.TB, cl *kgo.Client, topic string, p int32, first, n int, wantBase int64) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Value: []byte(value(topic, p, first+i))}
	}
	res := cl.ProduceSync(ctx, recs...)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("produce %s[%d] record %d: %v", topic, p, first+i, r.Err)
		}
		if want := wantBase + int64(i); wantBase >= 0 && r.Record.Offset != want {
			t.Fatalf("produce %s[%d] record %d: acknowledged at offset %d, want %d", topic, p, first+i, r.Record.Offset, want)
		}
	}
}

// isKErr reports whether err is (or wraps) the Kafka error e.
func isKErr(err error, e *kerr.Error) bool { return errors.Is(err, e) }

// manualPartitions is the franz-go option that sends each record to its
// Partition field.
var manualPartitions = kgo.RecordPartitioner(kgo.ManualPartitioner())
