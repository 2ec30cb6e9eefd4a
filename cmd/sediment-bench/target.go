package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sedimentio/sediment/it/harness"
)

// benchTarget is one system under test. start launches it, as child
// processes so their memory is measured apart from the bench's, and returns
// once it answers Kafka requests; the bench then runs the workload against
// instance.bootstrap and stops it.
//
// A multi-process target (the 3-broker cluster, cluster.go) is an instance
// holding several children; a tiered catch-up read would be a target plus a
// read-only workload.
type benchTarget interface {
	name() string
	start(ctx context.Context, dir string) (*instance, error)
}

// instance is a started target. Not safe for concurrent use.
type instance struct {
	bootstrap   []string           // Kafka seed addresses
	procs       []*harness.Process // processes whose peak RSS and CPU time are the target's
	replication int16              // replication factor of the benchmark topic (0: 1)
	stopAll     func() error       // ends every process (see stop)
	http        string             // the broker's --http address, for --profile (single-broker targets)
}

// alive reports the first child that has exited, except children the bench
// killed on purpose.
func (in *instance) alive() error {
	for _, p := range in.procs {
		if err := p.Alive(); err != nil {
			return fmt.Errorf("during the run: %w", err)
		}
	}
	return nil
}

// exitNote is empty when every child still runs, else why one stopped: the
// likeliest cause of a workload error.
func (in *instance) exitNote() string {
	if err := in.alive(); err != nil {
		return "; " + err.Error()
	}
	return ""
}

// peakRSS is the largest and the sum of VmHWM, the peak resident set, of
// the running children.
func (in *instance) peakRSS() (largest, sum uint64, err error) {
	for _, p := range in.procs {
		m, err := p.Memory()
		if err != nil {
			return 0, 0, err
		}
		largest = max(largest, m.HWM)
		sum += m.HWM
	}
	return largest, sum, nil
}

// cpuTime sums the user and system time of the stopped children.
func (in *instance) cpuTime() time.Duration {
	var sum time.Duration
	for _, p := range in.procs {
		if !p.Running() {
			sum += p.CPU()
		}
	}
	return sum
}

// stop ends every child, gracefully if it lets itself be (SIGTERM, then
// SIGKILL after childStopGrace). The children of a cluster are stopped
// together: one after the other, the last brokers would wait for an etcd
// quorum and for peers to take their leaderships that are already gone.
func (in *instance) stop() error { return in.stopAll() }

// logTails is the end of every child's output, to follow a failure of the
// whole instance: in a cluster, the broker that explains a failure is often
// not the one that reported it.
func (in *instance) logTails() string {
	var b strings.Builder
	for _, p := range in.procs {
		b.WriteString(p.LogTail())
	}
	return strings.TrimPrefix(b.String(), "\n")
}

// childStopGrace is how long a child may take to exit after SIGTERM. A
// broker of sediment-3 stopped with its peers may need most of it: its
// controlled shutdown, up to --shutdown-timeout of in-flight requests, the
// final sync of its logs, and its etcd member's attempt to hand over the
// etcd leadership (about 7 s when the peers are stopping too).
const childStopGrace = 30 * time.Second

// startLimit bounds how long a Sediment target may take to answer.
const startLimit = 60 * time.Second

// sedimentTarget is one `sediment serve` with its own embedded etcd and the
// default flush policy (group-commit fsync).
type sedimentTarget struct {
	bin        string
	partitions int
	extra      []string // more serve flags (--sediment-flag), for experiments
}

func (t *sedimentTarget) name() string { return "sediment" }

func (t *sedimentTarget) start(ctx context.Context, dir string) (*instance, error) {
	in, http, err := startSingleBroker(ctx, t.bin, dir, t.partitions, t.extra, nil)
	if in != nil {
		in.http = http
	}
	return in, err
}

// startSingleBroker starts `serve` of bin as node 1 with its own etcd member on
// loopback ports, data in dir/data, log in dir/sediment.log, with
// --num-partitions partitions, then extra flags, and env as its environment
// (nil: harness.Environ, the bench's without SEDIMENT_*). It returns once
// the broker answers Kafka requests, with its HTTP address.
func startSingleBroker(ctx context.Context, bin, dir string, partitions int, extra, env []string) (*instance, string, error) {
	b, err := harness.StartBroker(ctx, harness.BrokerConfig{
		Bin:          bin,
		NodeID:       1,
		DataDir:      filepath.Join(dir, "data"),
		LogPath:      filepath.Join(dir, "sediment.log"),
		Flags:        append([]string{"--num-partitions", strconv.Itoa(partitions)}, extra...),
		Env:          env,
		StartTimeout: startLimit,
	})
	if err != nil {
		return nil, "", err
	}
	in := &instance{
		bootstrap: []string{b.Addr},
		procs:     []*harness.Process{b.Process()},
		stopAll:   func() error { return b.Stop(childStopGrace) },
	}
	return in, b.HTTP, nil
}
