package it

// Transactional producers of every client against one 3-broker cluster:
// alternating committed and aborted transactions over several partitions,
// read back at both isolation levels (TestTxnClientsInterop).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProducer is one client's transactional producer, as the interop test
// drives it: records go to an explicit partition.
type txnProducer interface {
	Begin() error
	Produce(partition int32, value string) error // may be asynchronous; End flushes
	End(commit bool) error
}

// txnClient is a client under test: its transactional producer, and its
// read_committed/read_uncommitted consumer when it has a simple one (nil:
// franz-go's reads are checked for every client anyway).
type txnClient struct {
	name    string
	produce func(t testing.TB, c *Cluster, topic, id string) txnProducer
	consume func(t testing.TB, c *Cluster, topic string, partitions int32, readCommitted bool, want int) []string
	require func(t testing.TB) // ends the subtest when the client cannot run here; nil: it can
}

const (
	txnInteropPartitions = 4
	txnInteropTxns       = 6 // even ones commit, odd ones abort
	txnInteropPerPart    = 5 // records per partition per transaction
)

// TestTxnClientsInterop runs, for franz-go, sarama and confluent-kafka-go
// (librdkafka) in turn, transactions that alternately commit and abort
// over four partitions of a topic, and checks that read_committed
// consumers (franz-go's and the client's own) see exactly the committed
// records and read_uncommitted ones every record, each once.
func TestTxnClientsInterop(t *testing.T) {
	t.Parallel()
	c := startTxnCluster(t)
	for _, tc := range []txnClient{
		{name: "franz", produce: franzTxnProducer},
		{name: "sarama", produce: saramaTxnProducer, consume: saramaRead},
		confluentTxnClient(),
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.require != nil {
				tc.require(t)
			}
			topic := "txn-interop-" + tc.name
			c.CreateTopic(topic, txnInteropPartitions, 3, nil)
			p := tc.produce(t, c, topic, "it-txn-"+tc.name)
			var l txnLedger
			for n := range txnInteropTxns {
				commit := n%2 == 0
				if err := p.Begin(); err != nil {
					t.Fatalf("%s: transaction %d: begin: %v", tc.name, n, err)
				}
				var vals []string
				for i := range txnInteropPerPart {
					for part := range int32(txnInteropPartitions) {
						v := fmt.Sprintf("%s-t%d-p%d-%d", tc.name, n, part, i)
						if err := p.Produce(part, v); err != nil {
							t.Fatalf("%s: transaction %d: produce: %v", tc.name, n, err)
						}
						vals = append(vals, v)
					}
				}
				if err := p.End(commit); err != nil {
					t.Fatalf("%s: transaction %d: end (commit %v): %v", tc.name, n, commit, err)
				}
				l.add(commit, vals...)
			}
			waitStable(t, c, topic, 30*time.Second)
			l.check(t, "franz-go read_committed", true, values(readTopic(t, c, topic, true, len(l.committed))))
			l.check(t, "franz-go read_uncommitted", false, values(readTopic(t, c, topic, false, len(l.committed)+len(l.aborted))))
			if tc.consume != nil {
				l.check(t, tc.name+" read_committed", true, tc.consume(t, c, topic, txnInteropPartitions, true, len(l.committed)))
				l.check(t, tc.name+" read_uncommitted", false, tc.consume(t, c, topic, txnInteropPartitions, false, len(l.committed)+len(l.aborted)))
			}
		})
	}
}

type franzTxn struct {
	t     testing.TB
	cl    *kgo.Client
	topic string
}

func franzTxnProducer(t testing.TB, c *Cluster, topic, id string) txnProducer {
	cl := c.Client(t,
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(topic),
	)
	return &franzTxn{t: t, cl: cl, topic: topic}
}

func (f *franzTxn) Begin() error { return f.cl.BeginTransaction() }

func (f *franzTxn) Produce(part int32, v string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.cl.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr()
}

func (f *franzTxn) End(commit bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}

type saramaTxn struct {
	p     sarama.SyncProducer
	topic string
}

// saramaConfig is sarama's configuration for the transaction tests.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "it-txn-sarama"
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func saramaTxnProducer(t testing.TB, c *Cluster, topic, id string) txnProducer {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.Transaction.ID = id
	cfg.Producer.Transaction.Timeout = txnTimeout
	cfg.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Transaction.Retry.Max = 100
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(c.Addrs(), cfg)
	if err != nil {
		t.Fatalf("sarama transactional producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return &saramaTxn{p: p, topic: topic}
}

func (s *saramaTxn) Begin() error { return s.p.BeginTxn() }

func (s *saramaTxn) Produce(part int32, v string) error {
	_, _, err := s.p.SendMessage(&sarama.ProducerMessage{Topic: s.topic, Partition: part, Value: sarama.StringEncoder(v)})
	return err
}

func (s *saramaTxn) End(commit bool) error {
	if commit {
		return s.p.CommitTxn()
	}
	return s.p.AbortTxn()
}

// saramaRead reads every partition of topic from the start with sarama's
// partition consumers until want values came, then a moment more
// (readUntil).
func saramaRead(t testing.TB, c *Cluster, topic string, partitions int32, readCommitted bool, want int) []string {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadUncommitted
	if readCommitted {
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cons, err := sarama.NewConsumer(c.Addrs(), cfg)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer cons.Close()
	got := make(chan string, 1024)
	done := make(chan struct{})
	for p := range partitions {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama: consuming %s[%d]: %v", topic, p, err)
		}
		defer pc.AsyncClose()
		go func() {
			for m := range pc.Messages() { // drained until closed, as AsyncClose wants
				select {
				case got <- string(m.Value):
				case <-done:
				}
			}
		}()
	}
	defer close(done) // first of the deferred calls
	var out []string
	readUntil(t, fmt.Sprintf("sarama reading %s (read_committed %v)", topic, readCommitted), want, func() int {
		select {
		case v := <-got:
			out = append(out, v)
		case <-time.After(100 * time.Millisecond):
		}
		return len(out)
	})
	return out
}
