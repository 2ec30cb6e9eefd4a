package txn

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
	etcdmeta "github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/meta/metatest"
	"github.com/sedimentio/sediment/segment"
)

// TestOverARealPartition runs the coordinator over the partition layer: a
// real __transaction_state log (the records pass the log's validation and
// are committed by its high watermark), elected through the RoleObserver,
// and a second coordinator that loads what the first wrote.
func TestOverARealPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	dir := t.TempDir()
	store, cache := metatest.Start(t)
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	markers := newFakeMarkers()
	d := Deps{ProducerIDs: &fakePIDs{next: 1}, Markers: markers, MarkerRetryBackoff: time.Millisecond,
		Partitions:      func() int32 { return 1 },
		TopicPartitions: func(topic string) int32 { return map[string]int32{"a": 2}[topic] }}
	c, err := New(DefaultConfig(), d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pcfg := partition.DefaultConfig()
	pcfg.DataDir = filepath.Join(dir, "data")
	m, err := partition.New(pcfg, partition.Deps{Logger: logger, Store: store, Cache: cache, Roles: c,
		Settings: func(etcdmeta.Topic) (partition.TopicSettings, error) {
			return partition.TopicSettings{Log: segment.DefaultConfig(), MinInsyncReplicas: 1}, nil
		},
		Resolve: func(int32) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	rev, err := store.CreateTopic(ctx, etcdmeta.Topic{Name: StateTopic, ID: etcdmeta.NewTopicID(), Partitions: [][]int32{{1}}},
		[]etcdmeta.PartitionState{{Leader: 1, LeaderEpoch: 3, ISR: []int32{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, markers: markers}
	h.waitFor("load", func() bool { _, code := c.shardFor("x"); return code == 0 })

	pid, epoch := h.mustInit("t")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0), tp("a", 1)), nil)
	wantCode(t, "commit", h.end("t", pid, epoch, true), nil)
	h.settle("t", CompleteCommit)
	if ms := markers.writtenTo(tp("a", 1)); len(ms) != 1 || ms[0].CoordinatorEpoch != 3 {
		t.Fatalf("markers: %+v", ms)
	}
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 1)), nil)

	// Another coordinator elected over the same log loads it.
	p, err := m.Leader(StateTopic, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	d.Registerer = nil
	c2, err := New(DefaultConfig(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Elected(p, 3)
	h2 := &harness{t: t, c: c2}
	h2.waitFor("load", func() bool { _, code := c2.shardFor("x"); return code == 0 })
	resp := c2.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"t"}})
	st := resp.TransactionStates[0]
	if st.ErrorCode != 0 || st.State != "Ongoing" || st.ProducerID != pid || st.ProducerEpoch != epoch ||
		len(st.Topics) != 1 || len(st.Topics[0].Partitions) != 1 {
		t.Fatalf("loaded: %+v", st)
	}
}
