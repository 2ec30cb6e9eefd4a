package it

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceModes covers what the codec tests do not: acks=0 and acks=1,
// auto-created topics, partitions that do not exist, a log of many small
// segments read across their boundaries, and a long-polling consumer woken
// by a produce.
func TestProduceModes(t *testing.T) {
	t.Parallel()
	// Tiny segments: every few batches roll a new one.
	b := StartBroker(t, "--num-partitions", "3", "--log-segment-bytes", "16384")
	adm := b.Admin(t)

	t.Run("acks", func(t *testing.T) {
		for name, acks := range map[string]kgo.Acks{"acks0": kgo.NoAck(), "acks1": kgo.LeaderAck()} {
			topic := "modes-" + name
			createTopic(t, adm, topic, 1, nil)
			// Batches must stay below segment.bytes (a larger one is
			// MESSAGE_TOO_LARGE, as in Kafka); how much a client batches
			// depends on load, so bound it.
			cl := b.Client(t, manualPartitions, kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite(),
				kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(8<<10))
			const n = 2000 // ~100 KiB: several segments
			ctx := testContext(t, 60*time.Second)
			for i := range n {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(value(topic, 0, i))}, func(r *kgo.Record, err error) {
					if err != nil {
						t.Errorf("%s: produce %d: %v", topic, i, err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// acks=0 is answered by nobody: wait for the log to catch up.
			deadline := time.Now().Add(30 * time.Second)
			for endOffsets(t, adm, topic)[0] < n && time.Now().Before(deadline) {
				<-time.After(50 * time.Millisecond)
			}
			checkValues(t, topic, 0, 0, 0, consumePartition(t, b, topic, 0, 0, n))
			// Across segment boundaries from anywhere.
			for _, from := range []int{1, 377, 1024, n - 1} {
				checkValues(t, topic, 0, int64(from), from, consumePartition(t, b, topic, 0, int64(from), n-from))
			}
		}
		segs := activeSegment(t, b.Dir+"/modes-acks1-0")
		if segs == b.Dir+"/modes-acks1-0/00000000000000000000.log" {
			t.Fatalf("no segment roll with --log-segment-bytes 16384: active segment %s", segs)
		}
	})

	t.Run("auto-create", func(t *testing.T) {
		cl := b.Client(t, manualPartitions, kgo.AllowAutoTopicCreation())
		produceSync(t, cl, "modes-auto", 2, 0, 3, 0)
		td, err := adm.ListTopics(testContext(t, 10*time.Second), "modes-auto")
		if err != nil || len(td["modes-auto"].Partitions) != 3 {
			t.Fatalf("auto-created topic: %+v (err %v), want 3 partitions (--num-partitions)", td["modes-auto"], err)
		}
		checkValues(t, "modes-auto", 2, 0, 0, consumePartition(t, b, "modes-auto", 2, 0, 3))
	})

	t.Run("missing partition", func(t *testing.T) {
		createTopic(t, adm, "modes-two", 2, nil)
		cl := b.Client(t, manualPartitions, kgo.RecordDeliveryTimeout(3*time.Second))
		err := cl.ProduceSync(testContext(t, 20*time.Second), &kgo.Record{Topic: "modes-two", Partition: 5, Value: []byte("x")}).FirstErr()
		if err == nil {
			t.Fatal("produce to partition 5 of a 2-partition topic succeeded")
		}
		t.Logf("produce to a missing partition: %v", err)
		// Raw: the broker answers UNKNOWN_TOPIC_OR_PARTITION.
		c := dialRaw(t, b.Addr)
		res := producePartitionResult(t, c.roundTrip(produceRequest(9, "modes-two", 5, recordBatch([]string{"x"}, nil))))
		if res.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("produce to a missing partition: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(res.ErrorCode))
		}
	})

	t.Run("long poll", func(t *testing.T) {
		const topic = "modes-poll"
		createTopic(t, adm, topic, 1, nil)
		cons := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
			kgo.FetchMaxWait(10*time.Second))
		prod := b.Client(t, manualPartitions)
		ctx := testContext(t, 30*time.Second)
		got := make(chan time.Time, 1)
		go func() {
			for {
				fs := cons.PollFetches(ctx)
				if ctx.Err() != nil {
					return
				}
				if len(fs.Records()) > 0 {
					got <- time.Now()
					return
				}
			}
		}()
		// Give the consumer time to park its fetch on the broker.
		<-time.After(time.Second)
		sent := time.Now()
		produceSync(t, prod, topic, 0, 0, 1, 0)
		select {
		case at := <-got:
			if lat := at.Sub(sent); lat > 2*time.Second {
				t.Fatalf("a parked fetch returned %v after the produce: the long poll was not woken", lat)
			} else {
				t.Logf("long poll woken %v after the produce", lat.Round(time.Millisecond))
			}
		case <-ctx.Done():
			t.Fatal("the consumer never got the record")
		}
	})
}
