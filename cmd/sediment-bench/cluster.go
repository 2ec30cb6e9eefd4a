package main

import (
	"context"
	"strconv"

	"github.com/sedimentio/sediment/it/harness"
)

// clusterTarget is a Sediment cluster of brokers `sediment serve` children:
// every broker runs a member of one etcd quorum (--meta-initial-cluster),
// topics default to replication factor brokers with min.insync.replicas 2,
// and every broker keeps the default flush policy (group-commit fsync). The
// benchmark topic is created with replication factor brokers, so every
// record is written, and synced, brokers times.
type clusterTarget struct {
	bin        string
	brokers    int
	partitions int
	extra      []string // more serve flags (--sediment-flag), for experiments
}

func (t *clusterTarget) name() string { return "sediment-" + strconv.Itoa(t.brokers) }

// start launches the brokers, node ids 1..brokers in that order in
// instance.procs, data in dir/broker-N and logs in dir/broker-N.log, and
// returns once every broker's Metadata lists all of them and a controller.
func (t *clusterTarget) start(ctx context.Context, dir string) (*instance, error) {
	c, err := harness.StartCluster(ctx, harness.ClusterConfig{
		Bin:     t.bin,
		Members: t.brokers,
		Dir:     dir,
		Flags: append([]string{
			"--default-replication-factor", strconv.Itoa(t.brokers),
			"--min-insync-replicas", strconv.Itoa(min(2, t.brokers)),
			"--num-partitions", strconv.Itoa(t.partitions),
		}, t.extra...),
		StartTimeout: startLimit,
	})
	if err != nil {
		return nil, err
	}
	return &instance{
		bootstrap:   c.Addrs(),
		procs:       c.Processes(),
		replication: int16(t.brokers),
		stopAll:     func() error { return c.Stop(childStopGrace) },
	}, nil
}
