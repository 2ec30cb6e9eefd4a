package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsAcrossBrokers: three brokers, the transaction coordinator
// on one and the partitions' leaders spread over all of them, so that
// markers reach most partitions in WriteTxnMarkers from the coordinator's
// broker: read_committed sees exactly the committed transactions. Then the
// coordinator stops with a transaction open; another broker takes over
// __transaction_state (replicated), loads the transaction and commits it.
func TestTransactionsAcrossBrokers(t *testing.T) {
	bs := startCluster(t, 3, func(c *Config) {
		txnConfig(c)
		c.Txn.NumPartitions = 1
		c.SessionTTL = 3 * time.Second
		c.ControlledShutdownTimeout = 10 * time.Second
	})
	ctx := ctxT(t, 60*time.Second)
	cl := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...))
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 3, 2, nil, "txc"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	p := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.TransactionalID("txc-producer"), kgo.DefaultProduceTopic("txc"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	committed, all := alternateTxns(t, p, "c", 6, 3, 20)

	ds, err := adm.DescribeTransactions(ctx, "txc-producer")
	if err != nil {
		t.Fatal(err)
	}
	coordinator := ds["txc-producer"].Coordinator
	md, err := adm.Metadata(ctx, "txc")
	if err != nil {
		t.Fatal(err)
	}
	remote := 0
	for _, pd := range md.Topics["txc"].Partitions {
		if pd.Leader != coordinator {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("every partition is led by the coordinator %d: the test needs markers sent to other brokers", coordinator)
	}

	sameRecords(t, "read_committed", consumeAll(t, bs[0], "txc", kgo.ReadCommitted(), len(committed), kgo.SeedBrokers(bootstrap(bs)...)), committed)
	sameRecords(t, "read_uncommitted", consumeAll(t, bs[0], "txc", kgo.ReadUncommitted(), len(all), kgo.SeedBrokers(bootstrap(bs)...)), all)

	// The coordinator goes away with a transaction open.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for part := range int32(3) {
		v := fmt.Sprintf("failover-p%d", part)
		recs = append(recs, &kgo.Record{Partition: part, Value: []byte(v)})
		committed = append(committed, v)
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var rest []*testBroker
	for _, b := range bs {
		if b.srv.cfg.NodeID == coordinator {
			b.stop()
		} else {
			rest = append(rest, b)
		}
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit through the new coordinator: %v", err)
	}
	sameRecords(t, "read_committed after the failover", consumeAll(t, rest[0], "txc", kgo.ReadCommitted(), len(committed),
		kgo.SeedBrokers(bootstrap(rest)...)), committed)
	adm = kadm.NewClient(rest[0].client(kgo.SeedBrokers(bootstrap(rest)...)))
	var d kadm.DescribedTransaction
	waitFor(t, "the new coordinator to complete the commit", 10*time.Second, func() bool {
		ds, err := adm.DescribeTransactions(ctx, "txc-producer")
		d = ds["txc-producer"]
		return err == nil && d.Err == nil && d.State == "CompleteCommit"
	})
	if d.Coordinator == coordinator {
		t.Fatalf("after the failover: %+v, want another coordinator than %d", d, coordinator)
	}
}
