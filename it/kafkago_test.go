package it

import (
	"strconv"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

// keyPartition routes each message to the partition number in its key.
type keyPartition struct{}

func (keyPartition) Balance(m kafka.Message, partitions ...int) int {
	p, err := strconv.Atoi(string(m.Key))
	if err != nil || p >= len(partitions) {
		panic("keyPartition: bad key " + string(m.Key)) // test bug
	}
	return partitions[p]
}

func kafkaGoCodec(name string) kafka.Compression {
	switch name {
	case "gzip":
		return kafka.Gzip
	case "snappy":
		return kafka.Snappy
	case "lz4":
		return kafka.Lz4
	case "zstd":
		return kafka.Zstd
	}
	return 0
}

// TestKafkaGo produces with segmentio/kafka-go's Writer with every codec and
// reads each partition with a Reader assigned to it (no group).
func TestKafkaGo(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := b.Admin(t)
	const (
		partitions = 3
		perPart    = 200
	)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kafkago-" + codec
			createTopic(t, adm, topic, partitions, nil)
			ctx := testContext(t, 90*time.Second)

			// A transport of its own: kafka-go's shared default caches
			// metadata (6s) and fails writes to topics created since
			// with UNKNOWN_TOPIC_OR_PARTITION instead of refreshing.
			tr := &kafka.Transport{MetadataTTL: time.Second}
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{
				Addr:         kafka.TCP(b.Addr),
				Transport:    tr,
				Topic:        topic,
				Balancer:     keyPartition{},
				RequiredAcks: kafka.RequireAll,
				Compression:  kafkaGoCodec(codec),
				BatchSize:    50,
				BatchTimeout: 5 * time.Millisecond,
				MaxAttempts:  3,
			}
			defer w.Close()
			var msgs []kafka.Message
			for i := range perPart {
				for p := range int32(partitions) {
					msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(int(p))), Value: []byte(value(topic, p, i))})
				}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("kafka-go WriteMessages: %v", err)
			}
			if st := w.Stats(); st.Errors != 0 || st.Messages != int64(len(msgs)) {
				t.Fatalf("kafka-go writer stats: %d messages, %d errors; want %d, 0", st.Messages, st.Errors, len(msgs))
			}

			for p := range int32(partitions) {
				r := kafka.NewReader(kafka.ReaderConfig{
					Brokers:   []string{b.Addr},
					Topic:     topic,
					Partition: int(p),
					MinBytes:  1,
					MaxBytes:  1 << 20,
					MaxWait:   250 * time.Millisecond,
				})
				if err := r.SetOffset(kafka.FirstOffset); err != nil {
					t.Fatal(err)
				}
				for i := range perPart {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						r.Close()
						t.Fatalf("%s[%d]: reading message %d: %v", topic, p, i, err)
					}
					if m.Partition != int(p) || m.Offset != int64(i) || string(m.Value) != value(topic, p, i) || string(m.Key) != strconv.Itoa(int(p)) {
						r.Close()
						t.Fatalf("%s[%d]: message %d is partition %d offset %d key %q value %q, want offset %d value %q",
							topic, p, i, m.Partition, m.Offset, m.Key, m.Value, i, value(topic, p, i))
					}
				}
				if lag := r.Lag(); lag != 0 {
					t.Fatalf("%s[%d]: reader lag %d after reading everything", topic, p, lag)
				}
				r.Close()
				for _, rec := range consumePartition(t, b, topic, p, 0, perPart) {
					if c := rec.Attrs.CompressionType(); c != codecAttr(codec) {
						t.Fatalf("%s[%d] offset %d: batch codec %d, want %d", topic, p, rec.Offset, c, codecAttr(codec))
					}
				}
			}
		})
	}
}
