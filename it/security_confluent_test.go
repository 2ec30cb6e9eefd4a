//go:build cgo

package it

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// confluentSecClient is TestSecurityClients' confluent-kafka-go
// (librdkafka) client: a producer waiting for each delivery report, and a
// consumer assigned partition 0 from offset 0 (no group coordination; the
// group.id librdkafka requires is not used).
func confluentSecClient(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error {
	// config is c's connection properties and more.
	config := func(more kafka.ConfigMap) *kafka.ConfigMap {
		more["bootstrap.servers"], more["client.id"] = sb.addr(c), "it-confluent-security"
		for k, v := range sb.librdkafkaProps(c) {
			more[k] = v
		}
		return &more
	}
	prod, err := kafka.NewProducer(config(kafka.ConfigMap{"acks": "all", "linger.ms": 5, "message.timeout.ms": 20000}))
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer prod.Close()
	go func() {
		for e := range prod.Events() {
			if ke, ok := e.(kafka.Error); ok {
				t.Logf("confluent producer event: %v (code %v)", ke, ke.Code())
			}
		}
	}()
	delivery := make(chan kafka.Event, secRecords)
	for i := range secRecords {
		tp := kafka.TopicPartition{Topic: &topic, Partition: 0}
		if err := prod.Produce(&kafka.Message{TopicPartition: tp, Value: []byte(value(topic, 0, i))}, delivery); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		select {
		case e := <-delivery:
			m := e.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				return fmt.Errorf("produce: record %d: %w", i, m.TopicPartition.Error)
			}
			if off := int64(m.TopicPartition.Offset); off != int64(i) {
				return fmt.Errorf("produce: record %d acknowledged at offset %d", i, off)
			}
		case <-ctx.Done():
			return fmt.Errorf("produce: no delivery report for record %d: %w", i, ctx.Err())
		}
	}

	cons, err := kafka.NewConsumer(config(kafka.ConfigMap{"group.id": "it-confluent-security-unused",
		"enable.auto.commit": false, "enable.auto.offset.store": false, "fetch.wait.max.ms": 250}))
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer cons.Close()
	if err := cons.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(0)}}); err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	var got []string
	for len(got) < secRecords {
		if ctx.Err() != nil {
			return fmt.Errorf("consume: %d of %d records: %w", len(got), secRecords, ctx.Err())
		}
		m, err := cons.ReadMessage(250 * time.Millisecond)
		var ke kafka.Error
		switch {
		case errors.As(err, &ke) && ke.Code() == kafka.ErrTimedOut:
			continue
		case errors.As(err, &ke) && ke.IsFatal():
			return fmt.Errorf("consume: %w", err)
		case err != nil:
			t.Logf("confluent consumer event: %v", err)
			continue
		}
		got = append(got, string(m.Value))
	}
	return checkSecValues(topic, got)
}

// confluentProbe asks a confluent-kafka-go producer for metadata until it
// gets it, or librdkafka reports an error event (it would retry a refused
// connection until the timeout), which it returns.
func confluentProbe(t *testing.T, ctx context.Context, sb *secBroker, c secCreds) error {
	cfg := kafka.ConfigMap{"bootstrap.servers": sb.addr(c), "client.id": "it-confluent-security"}
	for k, v := range sb.librdkafkaProps(c) {
		cfg[k] = v
	}
	prod, err := kafka.NewProducer(&cfg)
	if err != nil {
		return err
	}
	defer prod.Close()
	for {
		_, err := prod.GetMetadata(nil, true, 250)
		if err == nil {
			return nil
		}
		for drained := false; !drained; {
			select {
			case e := <-prod.Events():
				if ke, ok := e.(kafka.Error); ok {
					return ke
				}
			default:
				drained = true
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("metadata: %w (and no error event: %w)", err, ctx.Err())
		}
	}
}
