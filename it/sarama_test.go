package it

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaCodec(name string) sarama.CompressionCodec {
	switch name {
	case "gzip":
		return sarama.CompressionGZIP
	case "snappy":
		return sarama.CompressionSnappy
	case "lz4":
		return sarama.CompressionLZ4
	case "zstd":
		return sarama.CompressionZSTD
	}
	return sarama.CompressionNone
}

// TestSarama produces with sarama's idempotent SyncProducer (acks=all, one
// request in flight) with every codec and consumes with its partition
// consumer.
func TestSarama(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := b.Admin(t)
	const (
		partitions = 3
		perPart    = 200
	)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "sarama-" + codec
			createTopic(t, adm, topic, partitions, nil)

			cfg := sarama.NewConfig()
			cfg.ClientID = "it-sarama"
			cfg.Version = sarama.V2_8_0_0 // zstd needs >= 2.1; idempotence >= 0.11
			cfg.Metadata.AllowAutoTopicCreation = false
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			cfg.Producer.Retry.Max = 5
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			cfg.Producer.Compression = saramaCodec(codec)
			cfg.Producer.Flush.Frequency = 5 * time.Millisecond
			cfg.Net.DialTimeout = 5 * time.Second
			cfg.Consumer.Return.Errors = true
			cfg.Consumer.MaxWaitTime = 250 * time.Millisecond

			prod, err := sarama.NewSyncProducer([]string{b.Addr}, cfg)
			if err != nil {
				t.Fatalf("sarama producer: %v", err)
			}
			defer prod.Close()
			var msgs []*sarama.ProducerMessage
			for i := range perPart {
				for p := range int32(partitions) {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder(value(topic, p, i))})
				}
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatalf("sarama SendMessages: %v", err)
			}
			next := map[int32]int64{}
			for _, m := range msgs {
				if m.Offset != next[m.Partition] {
					t.Fatalf("%s[%d]: %q acknowledged at offset %d, want %d", topic, m.Partition, m.Value, m.Offset, next[m.Partition])
				}
				next[m.Partition]++
			}
			// One more, alone, through SendMessage.
			p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 1, Value: sarama.StringEncoder(value(topic, 1, perPart))})
			if err != nil || p != 1 || off != perPart {
				t.Fatalf("sarama SendMessage: partition %d offset %d err %v, want 1, %d", p, off, err, perPart)
			}

			cons, err := sarama.NewConsumer([]string{b.Addr}, cfg)
			if err != nil {
				t.Fatalf("sarama consumer: %v", err)
			}
			defer cons.Close()
			for p := range int32(partitions) {
				want := perPart
				if p == 1 {
					want++
				}
				pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
				if err != nil {
					t.Fatalf("consume %s[%d]: %v", topic, p, err)
				}
				timeout := time.After(60 * time.Second)
				for i := 0; i < want; i++ {
					select {
					case m := <-pc.Messages():
						if m.Offset != int64(i) || string(m.Value) != value(topic, p, i) {
							t.Fatalf("%s[%d]: message %d at offset %d is %q, want %q", topic, p, i, m.Offset, m.Value, value(topic, p, i))
						}
					case err := <-pc.Errors():
						t.Fatalf("%s[%d]: consumer error: %v", topic, p, err)
					case <-timeout:
						t.Fatalf("%s[%d]: consumed %d of %d messages before the deadline", topic, p, i, want)
					}
				}
				if hwm := pc.HighWaterMarkOffset(); hwm != int64(want) {
					t.Fatalf("%s[%d]: high watermark %d, want %d", topic, p, hwm, want)
				}
				pc.Close()
				// Stored as sarama sent them: in batches of its codec.
				for _, r := range consumePartition(t, b, topic, p, 0, want) {
					if c := r.Attrs.CompressionType(); c != codecAttr(codec) {
						t.Fatalf("%s[%d] offset %d: batch codec %d, want %d", topic, p, r.Offset, c, codecAttr(codec))
					}
					if r.ProducerID < 0 {
						t.Fatalf("%s[%d] offset %d: batch has no producer id: sarama did not produce idempotently", topic, p, r.Offset)
					}
				}
			}
		})
	}
}
