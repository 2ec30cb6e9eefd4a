//go:build cgo

package it

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// confluentTxnClient is confluent-kafka-go's (librdkafka's) transactional
// producer and its consumer, for TestTxnClientsInterop.
func confluentTxnClient() txnClient {
	return txnClient{name: "confluent", produce: confluentTxnProducer, consume: confluentRead}
}

type confluentTxn struct {
	p     *kafka.Producer
	topic string
}

func confluentTxnProducer(t testing.TB, c *Cluster, topic, id string) txnProducer {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":      strings.Join(c.Addrs(), ","),
		"client.id":              "it-txn-confluent",
		"transactional.id":       id,
		"transaction.timeout.ms": int(txnTimeout / time.Millisecond),
		"go.delivery.reports":    false,
		"linger.ms":              5,
	})
	if err != nil {
		t.Fatalf("confluent transactional producer: %v", err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatalf("confluent: InitTransactions: %v", err)
	}
	return &confluentTxn{p: p, topic: topic}
}

func (f *confluentTxn) Begin() error { return f.p.BeginTransaction() }

func (f *confluentTxn) Produce(part int32, v string) error {
	return f.p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &f.topic, Partition: part}, Value: []byte(v)}, nil)
}

func (f *confluentTxn) End(commit bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if commit {
		return f.p.CommitTransaction(ctx) // flushes first
	}
	// librdkafka purges what it has not sent yet when it aborts: flush
	// first, so that the aborted records reach the log.
	if left := f.p.Flush(30_000); left > 0 {
		return fmt.Errorf("%d records still unsent after 30s", left)
	}
	return f.p.AbortTransaction(ctx)
}

// confluentRead reads every partition of topic from the start with a
// confluent-kafka-go consumer (assigned, no group) until want values came,
// then a moment more (readUntil).
func confluentRead(t testing.TB, c *Cluster, topic string, partitions int32, readCommitted bool, want int) []string {
	t.Helper()
	level := "read_uncommitted"
	if readCommitted {
		level = "read_committed"
	}
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  strings.Join(c.Addrs(), ","),
		"client.id":          "it-txn-confluent-reader",
		"group.id":           "it-txn-confluent-unused", // required, never joined: Assign only
		"isolation.level":    level,
		"enable.auto.commit": false,
		"fetch.wait.max.ms":  200,
	})
	if err != nil {
		t.Fatalf("confluent consumer: %v", err)
	}
	defer cons.Close()
	var tps []kafka.TopicPartition
	for p := range partitions {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := cons.Assign(tps); err != nil {
		t.Fatalf("confluent: assign: %v", err)
	}
	var out []string
	readUntil(t, "confluent reading "+topic+" ("+level+")", want, func() int {
		switch e := cons.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error == nil {
				out = append(out, string(e.Value))
			}
		case kafka.Error:
			t.Logf("confluent consumer: %v", e)
		}
		return len(out)
	})
	return out
}
