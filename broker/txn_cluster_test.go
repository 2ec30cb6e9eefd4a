package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsAcrossBrokers: three brokers, the transaction coordinator
// on one and the partitions' leaders spread over all of them, so that
// markers reach most partitions in WriteTxnMarkers from the coordinator's
// broker: read_committed sees exactly the committed transactions.
func TestTransactionsAcrossBrokers(t *testing.T) {
	bs := startCluster(t, 3, func(c *Config) {
		txnConfig(c)
		c.Txn.NumPartitions = 1
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
}
