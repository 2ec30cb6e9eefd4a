//go:build cgo

package it

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// confluentGroupClient is confluent-kafka-go's consumer (librdkafka,
// cooperative-sticky; each message's offset stored once the ledger has
// it, and autocommitted). A
// member's assignment epoch counts the rebalance callbacks, which run in
// the polling goroutine between messages. librdkafka has no way to drop a
// connection, so the member meant to be killed is a static one
// (group.instance.id): KIP-345 members do not leave when they close, and
// the coordinator must expire its session.
func confluentGroupClient() groupClient {
	return groupClient{name: "confluent", start: func(t testing.TB, r *groupRun, name string, crash bool) groupMember {
		return startConfluentMember(t, r, name, crash)
	}}
}

type confluentMember struct {
	t      testing.TB
	name   string
	c      *kafka.Consumer
	stop   atomic.Bool
	killed atomic.Bool
	done   chan struct{}
}

func startConfluentMember(t testing.TB, r *groupRun, name string, static bool) *confluentMember {
	t.Helper()
	cfg := kafka.ConfigMap{
		"bootstrap.servers":             strings.Join(r.c.Addrs(), ","),
		"group.id":                      r.group,
		"client.id":                     "it-confluent-" + name,
		"auto.offset.reset":             "earliest",
		"partition.assignment.strategy": "cooperative-sticky",
		"session.timeout.ms":            int(groupSession / time.Millisecond),
		"heartbeat.interval.ms":         int(groupHeartbeat / time.Millisecond),
		"auto.commit.interval.ms":       int(groupCommitTick / time.Millisecond),
		// Only what the ledger has recorded gets committed: a message
		// Close polls on its way out must not be.
		"enable.auto.offset.store":           false,
		"fetch.wait.max.ms":                  500,
		"topic.metadata.refresh.interval.ms": 1000,
	}
	if static {
		cfg["group.instance.id"] = r.group + "-" + name
	}
	c, err := kafka.NewConsumer(&cfg)
	if err != nil {
		t.Fatalf("%s: confluent consumer: %v", name, err)
	}
	m := &confluentMember{t: t, name: name, c: c, done: make(chan struct{})}
	var epoch atomic.Int64
	if err := c.SubscribeTopics([]string{r.topic}, func(*kafka.Consumer, kafka.Event) error {
		epoch.Add(1)
		return nil
	}); err != nil {
		t.Fatalf("%s: subscribe: %v", name, err)
	}
	go func() {
		defer close(m.done)
		for !m.stop.Load() {
			switch e := c.Poll(100).(type) {
			case *kafka.Message:
				if e.TopicPartition.Error != nil || m.killed.Load() {
					continue
				}
				r.ledger.consume(name, epoch.Load(), e.TopicPartition.Partition, int64(e.TopicPartition.Offset), string(e.Value))
				if _, err := c.StoreMessage(e); err != nil {
					t.Logf("%s: storing the offset of %s[%d] offset %d: %v", name, r.topic, e.TopicPartition.Partition, e.TopicPartition.Offset, err)
				}
			case kafka.Error:
				if !m.killed.Load() {
					t.Logf("%s: %v (code %v, fatal %v)", name, e, e.Code(), e.IsFatal())
				}
			}
		}
	}()
	t.Cleanup(func() {
		m.killed.Store(true)
		m.stop.Store(true)
		<-m.done
		_ = c.Close() // an error when already closed
	})
	return m
}

func (m *confluentMember) Leave() {
	m.t.Helper()
	m.stop.Store(true)
	<-m.done
	if err := m.c.Close(); err != nil { // commits the stored offsets, leaves
		m.t.Fatalf("%s: closing the consumer: %v", m.name, err)
	}
}

func (m *confluentMember) Kill() {
	m.t.Helper()
	m.killed.Store(true)
	m.stop.Store(true)
	<-m.done
	if err := m.c.Close(); err != nil { // a static member: no LeaveGroup
		m.t.Fatalf("%s: closing the consumer: %v", m.name, err)
	}
}
