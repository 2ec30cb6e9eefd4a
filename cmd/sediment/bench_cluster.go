package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
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
// instance.procs, and returns once Metadata lists all of them and a
// controller.
func (t *clusterTarget) start(ctx context.Context, dir string) (*instance, error) {
	// Four listeners per broker: Kafka, HTTP, etcd client, etcd peer.
	addrs, err := freeAddrs(4 * t.brokers)
	if err != nil {
		return nil, err
	}
	kafka := func(i int) string { return addrs[4*i] }
	peer := func(i int) string { return addrs[4*i+3] }
	var members []string
	for i := range t.brokers {
		members = append(members, fmt.Sprintf("%d=http://%s", i+1, peer(i)))
	}
	initial := strings.Join(members, ",")

	in := &instance{brokers: t.brokers, replication: int16(t.brokers)}
	for i := range t.brokers {
		id := strconv.Itoa(i + 1)
		args := []string{
			"serve",
			"--node-id", id,
			"--data-dir", filepath.Join(dir, "broker-"+id),
			"--listen", kafka(i),
			"--http", addrs[4*i+1],
			"--meta-client-listen", addrs[4*i+2],
			"--meta-peer-listen", peer(i),
			"--meta-initial-cluster", initial,
			"--default-replication-factor", strconv.Itoa(t.brokers),
			"--min-insync-replicas", strconv.Itoa(min(2, t.brokers)),
			"--num-partitions", strconv.Itoa(t.partitions),
		}
		c, err := startChild("broker "+id, t.bin, append(args, t.extra...), filepath.Join(dir, "broker-"+id+".log"))
		if err != nil {
			return nil, errors.Join(err, in.stop())
		}
		in.bootstrap = append(in.bootstrap, kafka(i))
		in.procs = append(in.procs, c)
	}
	if err := waitKafka(ctx, in, startLimit); err != nil {
		return nil, errors.Join(err, in.logTails(), in.stop())
	}
	return in, nil
}

// logTails is the end of every child's log, as one error to join to a
// failure of the whole instance: in a cluster, the broker that explains a
// failure is often not the one that reported it. Nil when no child has
// written anything.
func (in *instance) logTails() error {
	var b strings.Builder
	for _, c := range in.procs {
		b.WriteString(c.logTail())
	}
	if b.Len() == 0 {
		return nil
	}
	return errors.New(strings.TrimPrefix(b.String(), "\n"))
}
