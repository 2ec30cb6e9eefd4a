package repl_test

import (
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/segment"
)

var _ repl.Log = (*segment.Log)(nil)

// A broker follows the partitions whose leader is another broker, and stops following one
// before it becomes its leader or deletes it.
func Example() {
	cfg := repl.DefaultConfig()
	cfg.NodeID = 2
	listeners := map[int32]string{1: "10.0.0.1:9093", 3: "10.0.0.3:9093"} // from the cluster metadata
	m, err := repl.NewManager(cfg, func(id int32) (string, bool) {
		addr, ok := listeners[id]
		return addr, ok
	}, slog.Default(), prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	defer m.Close()

	log, err := segment.Open(os.TempDir()+"/orders-0", segment.DefaultConfig(), segment.Options{})
	if err != nil {
		panic(err)
	}
	defer log.Close()
	var topicID [16]byte // from the cluster metadata
	m.Follow(repl.Replica{
		Topic: "orders", TopicID: topicID, Partition: 0,
		Leader: 1, LeaderEpoch: 7,
		Log:              log,
		SetHighWatermark: func(hw int64) { /* publish to consumers of this replica */ },
	})

	// Leadership moves here: stop fetching, then take the log over.
	m.Unfollow(topicID, 0)
}
