//go:build cgo

package it

import (
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TestConfluentKafkaGo produces with confluent-kafka-go (librdkafka) with
// every compression.type and enable.idempotence=true, and consumes each
// partition through Assign with explicit offsets and no offset commits.
func TestConfluentKafkaGo(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := b.Admin(t)
	const (
		partitions = 3
		perPart    = 200
	)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "confluent-" + codec
			createTopic(t, adm, topic, partitions, nil)

			prod, err := kafka.NewProducer(&kafka.ConfigMap{
				"bootstrap.servers":  b.Addr,
				"client.id":          "it-confluent",
				"compression.type":   codec,
				"enable.idempotence": true,
				"acks":               "all",
				"linger.ms":          5,
				"message.timeout.ms": 60000,
			})
			if err != nil {
				t.Fatalf("confluent producer: %v", err)
			}
			defer prod.Close()
			go func() {
				for e := range prod.Events() {
					if ke, ok := e.(kafka.Error); ok {
						t.Logf("producer event: %v (code %v, fatal %v)", ke, ke.Code(), ke.IsFatal())
					}
				}
			}()
			delivery := make(chan kafka.Event, partitions*perPart)
			for i := range perPart {
				for p := range int32(partitions) {
					tp := kafka.TopicPartition{Topic: &topic, Partition: p}
					if err := prod.Produce(&kafka.Message{TopicPartition: tp, Value: []byte(value(topic, p, i))}, delivery); err != nil {
						t.Fatalf("confluent Produce: %v", err)
					}
				}
			}
			if left := prod.Flush(60_000); left != 0 {
				t.Fatalf("confluent producer: %d messages not delivered after 60s", left)
			}
			// Message i of a partition must be acknowledged at offset i,
			// exactly once. (The order in which librdkafka hands out
			// delivery reports is the client's business; the placement is
			// the broker's.)
			seen := map[int32]map[int64]bool{}
			for range partitions * perPart {
				var m *kafka.Message
				select {
				case e := <-delivery:
					m = e.(*kafka.Message)
				case <-time.After(30 * time.Second):
					t.Fatal("missing delivery reports")
				}
				tp := m.TopicPartition
				if tp.Error != nil {
					t.Fatalf("%s[%d]: delivery failed: %v", topic, tp.Partition, tp.Error)
				}
				off := int64(tp.Offset)
				if off < 0 || off >= perPart || string(m.Value) != value(topic, tp.Partition, int(off)) {
					t.Fatalf("%s[%d]: %q delivered at offset %d", topic, tp.Partition, m.Value, off)
				}
				if seen[tp.Partition] == nil {
					seen[tp.Partition] = map[int64]bool{}
				}
				if seen[tp.Partition][off] {
					t.Fatalf("%s[%d]: offset %d acknowledged twice", topic, tp.Partition, off)
				}
				seen[tp.Partition][off] = true
			}

			cons, err := kafka.NewConsumer(&kafka.ConfigMap{
				"bootstrap.servers": b.Addr,
				"client.id":         "it-confluent",
				// librdkafka requires a group.id even when partitions are
				// assigned by hand; nothing is committed to it.
				"group.id":                 "it-confluent-unused",
				"enable.auto.commit":       false,
				"enable.auto.offset.store": false,
				"fetch.wait.max.ms":        250,
			})
			if err != nil {
				t.Fatalf("confluent consumer: %v", err)
			}
			defer cons.Close()
			var assign []kafka.TopicPartition
			for p := range int32(partitions) {
				assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(0)})
			}
			if err := cons.Assign(assign); err != nil {
				t.Fatalf("confluent Assign: %v", err)
			}
			got := map[int32]int64{}
			deadline := time.Now().Add(60 * time.Second)
			seenErrs := map[string]bool{}
			for n := 0; n < partitions*perPart; {
				if time.Now().After(deadline) {
					t.Fatalf("confluent consumer: %d of %d messages before the deadline (per partition %v)", n, partitions*perPart, got)
				}
				m, err := cons.ReadMessage(time.Second)
				var ke kafka.Error
				switch {
				case errors.As(err, &ke) && ke.Code() == kafka.ErrTimedOut:
					continue
				case err != nil:
					// Report what librdkafka makes of a broker without
					// group coordination, once per message.
					if !seenErrs[err.Error()] {
						seenErrs[err.Error()] = true
						t.Logf("consumer error event: %v", err)
					}
					if errors.As(err, &ke) && ke.IsFatal() {
						t.Fatalf("fatal consumer error: %v", err)
					}
					continue
				}
				p := m.TopicPartition.Partition
				want := value(topic, p, int(got[p]))
				if *m.TopicPartition.Topic != topic || int64(m.TopicPartition.Offset) != got[p] || string(m.Value) != want {
					t.Fatalf("%s[%d]: message at offset %d is %q, want %q at %d", topic, p, m.TopicPartition.Offset, m.Value, want, got[p])
				}
				got[p]++
				n++
			}
			for p := range int32(partitions) {
				stored := map[uint8]int{}
				for _, r := range consumePartition(t, b, topic, p, 0, perPart) {
					stored[r.Attrs.CompressionType()]++
					if r.ProducerID < 0 {
						t.Fatalf("%s[%d] offset %d: batch has no producer id: not idempotent", topic, p, r.Offset)
					}
				}
				for c := range stored {
					if c != 0 && c != codecAttr(codec) {
						t.Fatalf("%s[%d]: batches stored with codec %d, want %d (%s) or none", topic, p, c, codecAttr(codec), codec)
					}
				}
				if codec != "none" && stored[codecAttr(codec)] == 0 {
					// librdkafka enables LZ4 only when the broker
					// advertises FindCoordinator (consumer groups).
					if codec != "lz4" {
						t.Fatalf("%s[%d]: librdkafka sent no %s batch", topic, p, codec)
					}
					t.Logf("%s[%d]: librdkafka sent lz4 uncompressed: it enables LZ4 only for brokers that advertise FindCoordinator", topic, p)
				}
			}
		})
	}
}
