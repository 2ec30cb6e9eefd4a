package meta_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sedimentio/sediment/meta"
)

// Example starts a single-member etcd in a temporary directory, creates a topic and reads it
// back from the watch-fed cache.
func Example() {
	dir, err := os.MkdirTemp("", "sediment-meta-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)

	cfg := meta.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "meta")
	cfg.ClientListen = "127.0.0.1:0" // any free port
	cfg.PeerListen = "127.0.0.1:0"
	node, err := meta.Start(ctx, cfg, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	store, err := meta.OpenStore(ctx, node.Client(), logger)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := store.StartCache(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	topic := meta.Topic{
		Name:       "orders",
		ID:         meta.NewTopicID(),
		Partitions: [][]int32{{1}, {1}, {1}},
		Configs:    map[string]string{"retention.ms": "604800000"},
	}
	parts := make([]meta.PartitionState, len(topic.Partitions))
	for p := range parts {
		parts[p] = meta.PartitionState{Leader: 1, ISR: []int32{1}}
	}
	rev, err := store.CreateTopic(ctx, topic, parts)
	if err != nil {
		log.Fatal(err)
	}
	if err := cache.WaitRevision(ctx, rev); err != nil {
		log.Fatal(err)
	}

	got, _ := cache.Topic("orders")
	p0, _ := cache.Partition(got.ID, 0)
	fmt.Println("member:", node.IsMember(), "cluster id length:", len(store.ClusterID()))
	fmt.Println(got.Name, "partitions:", len(got.Partitions), "retention.ms:", got.Configs["retention.ms"])
	fmt.Println("partition 0 leader:", p0.Leader, "isr:", p0.ISR)
	// Output:
	// member: true cluster id length: 22
	// orders partitions: 3 retention.ms: 604800000
	// partition 0 leader: 1 isr: [1]
}
