package main

// The consumer-group phase (groups): what consumer groups cost on one
// broker. BENCH.md describes the method; in short, each run starts one
// broker with --group-initial-rebalance-delay=0 and a short
// --group-consumer-heartbeat-interval, then:
//
//  1. rebalance (groups_rebalance.go): on a topic of 64 partitions fed
//     steadily by a producer, two franz-go members of a fresh group consume
//     until the group is stable; a third member starts, and the time from
//     its start until the members' own callbacks say every one of the three
//     has its final partitions, each of the 64 owned exactly once, is the
//     rebalance time (checked against the broker's DescribeGroups or
//     ConsumerGroupDescribe). --groups-joins times per protocol: classic
//     (cooperative-sticky) and KIP-848 (kgo.ServerSideBalancer), alternately.
//  2. offset commits (groups_commit.go): --groups-committers committers,
//     each on its own connection (groups_wire.go), committing one offset
//     per OffsetCommit request for its own group (generation -1), one
//     request at a time, as fast as the broker answers, for
//     --groups-commit-time.
//  3. consumption (groups_consume.go): --groups-bytes produced with the
//     workload's producer, then read with the workload's verifying consumer
//     without a group, in a one-member classic group and in a one-member
//     KIP-848 group (autocommit on), each twice in the order plain, classic,
//     KIP-848, KIP-848, classic, plain.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sedimentio/sediment/it/harness"
)

const (
	groupsTargetName = "groups"
	// groupsRebalancePartitions is the partition count of the rebalance
	// topic (the figure: 64 partitions, 3 members).
	groupsRebalancePartitions = 64
	groupsRebalanceTopic      = "sediment-bench-rebalance"
	groupsConsumeTopic        = "sediment-bench-groups"
	// The project's goals.
	groupsRebalanceTarget = time.Second
	groupsCommitTarget    = 20000 // commits/s per broker
	groupsConsumeTarget   = 0.9   // group consumption / plain
)

// groupsFlags are the phase's part of the bench flags.
type groupsFlags struct {
	joins            int
	heartbeat        time.Duration
	committers       int
	commitPartitions int
	clientLogs       bool
	commitTime       time.Duration
	bytes            byteSize
}

// addGroupsFlags registers the phase's flags on fs.
func addGroupsFlags(fs *flag.FlagSet, g *groupsFlags) {
	fs.IntVar(&g.joins, "groups-joins", 5, "groups: joins of a third member measured per protocol (classic, KIP-848) and run")
	fs.DurationVar(&g.heartbeat, "groups-heartbeat", 500*time.Millisecond, "groups: heartbeat interval of the rebalance members: the broker's --group-consumer-heartbeat-interval (KIP-848) and the classic members' own (kgo HeartbeatInterval); members learn of a rebalance at their next heartbeat")
	fs.IntVar(&g.committers, "groups-committers", 512, "groups: concurrent committers, each on its own connection committing one offset per request for a group of its own, one request at a time")
	fs.IntVar(&g.commitPartitions, "groups-commit-partitions", 1, "groups: offsets each OffsetCommit request commits, for experiments (the figure the target speaks of is 1)")
	fs.BoolVar(&g.clientLogs, "groups-client-logs", false, "groups: write each rebalance member's kgo debug log to a file in the phase's directory, to follow a failed or slow join (keep it with --keep); the logging costs CPU, so such figures are not the reference ones")
	fs.DurationVar(&g.commitTime, "groups-commit-time", 10*time.Second, "groups: how long the committers commit")
	g.bytes = 1 << 30
	fs.Var(&g.bytes, "groups-bytes", "groups: `SIZE` of the record values produced, then consumed without a group and in one-member groups (bytes, or with a KiB, MiB or GiB suffix); records = SIZE / --value-size")
}

func (g *groupsFlags) validate(valueSize, partitions int) error {
	switch {
	case g.joins < 1:
		return fmt.Errorf("--groups-joins %d: want at least 1", g.joins)
	case g.heartbeat < 10*time.Millisecond || g.heartbeat >= 45*time.Second:
		// The members' session timeout (the broker's default for KIP-848,
		// kgo's for classic) is 45s.
		return fmt.Errorf("--groups-heartbeat %s: want 10ms to 45s", g.heartbeat)
	case g.committers < 1:
		return fmt.Errorf("--groups-committers %d: want at least 1", g.committers)
	case g.commitPartitions < 1 || g.commitPartitions > groupsRebalancePartitions:
		return fmt.Errorf("--groups-commit-partitions %d: want 1 to %d", g.commitPartitions, groupsRebalancePartitions)
	case g.commitTime <= 0:
		return fmt.Errorf("--groups-commit-time %s: want a positive duration", g.commitTime)
	case int64(g.bytes) < int64(valueSize)*int64(partitions):
		return fmt.Errorf("--groups-bytes %s: want at least --value-size x --partitions", &g.bytes)
	}
	return nil
}

// groupsConfig is what the phase runs with.
type groupsConfig struct {
	groupsFlags
	sedimentBin string
	partitions  int      // of the consumption topic: the workload's
	serveFlags  []string // --sediment-flag, before the phase's own
}

// groupFlags are the broker's group flags: no delay of a first rebalance
// (the setting), and the heartbeat interval KIP-848 members are
// told to use. They come after --sediment-flag, so the figures printed
// stay true to them.
func (c groupsConfig) groupFlags() []string {
	return []string{"--group-initial-rebalance-delay=0", "--group-consumer-heartbeat-interval=" + c.heartbeat.String()}
}

// groupsResult is one run of the phase.
type groupsResult struct {
	classic, consumer []joinResult // rebalance after a third member joins
	commits           commitResult
	produce           produced    // the data consumed below, on this broker
	plain             phaseResult // consumption without a group (two reads)
	classicRead       phaseResult // in a one-member classic group (two reads)
	consumerRead      phaseResult // in a one-member KIP-848 group (two reads)
	brokerCPU         time.Duration
	brokerRSS         uint64
	// The broker's time answering the group requests of the rebalance
	// measurements (all joins, the members' start and close included).
	rebalanceAPIs []apiTime
}

// rebalanceAPIs are the requests whose times in the broker the rebalance
// line shows: the group protocols' own, and the commits members make when
// they give partitions up.
var rebalanceAPIs = []string{"JoinGroup", "SyncGroup", "Heartbeat", "ConsumerGroupHeartbeat", "OffsetCommit", "OffsetFetch"}

// apiTime is how long the broker took over the requests of one API in a
// stretch of the phase, from its request duration histogram.
type apiTime struct {
	api     string
	count   float64
	seconds float64 // summed
	slow    float64 // requests over slowRequest
}

// slowRequest is a bucket bound of the broker's request histogram
// (sediment_broker_request_duration_seconds: 0.1 ms x 4^k).
const slowRequest = "0.1024"

// apiTimes is the change of the broker's request histogram for apis from
// before to after (two scrapes of its /metrics); APIs without requests are
// left out.
func apiTimes(before, after map[string]float64, apis []string) []apiTime {
	var out []apiTime
	for _, api := range apis {
		d := func(metric string) float64 { return after[metric] - before[metric] }
		t := apiTime{
			api:     api,
			count:   d(fmt.Sprintf(`sediment_broker_request_duration_seconds_count{api=%q}`, api)),
			seconds: d(fmt.Sprintf(`sediment_broker_request_duration_seconds_sum{api=%q}`, api)),
		}
		t.slow = t.count - d(fmt.Sprintf(`sediment_broker_request_duration_seconds_bucket{api=%q,le=%q}`, api, slowRequest))
		if t.count > 0 {
			out = append(out, t)
		}
	}
	return out
}

// runGroups runs one groups phase in dir (removed by the caller).
func runGroups(ctx context.Context, cfg groupsConfig, dir string, w workloadConfig, pool *valuePool, p *progress) (res groupsResult, err error) {
	name := groupsTargetName
	phase := func(s string) { p.set(name, s) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	phase("starting the broker " + fmt.Sprint(cfg.groupFlags()))
	extra := append(append([]string{}, cfg.serveFlags...), cfg.groupFlags()...)
	in, httpAddr, err := startSingleBroker(ctx, cfg.sedimentBin, dir, cfg.partitions, extra, nil)
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping the broker")
		if stopErr := in.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
		res.brokerCPU = in.cpuTime()
	}()
	broker := in.procs[0]
	fail := func(err error) error {
		return fmt.Errorf("%s: %w%s%s", name, err, in.exitNote(), broker.LogTail())
	}

	// 1. Rebalances.
	rw := workloadConfig{topic: groupsRebalanceTopic, partitions: groupsRebalancePartitions, replication: 1}
	phase(fmt.Sprintf("creating topic %s (%d partitions)", rw.topic, rw.partitions))
	if err := createTopic(ctx, in.bootstrap, rw); err != nil {
		return res, fail(fmt.Errorf("creating topic: %w", err))
	}
	logDir := ""
	if cfg.clientLogs {
		logDir = filepath.Join(dir, "clients")
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return res, err
		}
	}
	before, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	res.classic, res.consumer, err = measureRebalances(ctx, in.bootstrap, cfg, []*harness.Process{broker}, logDir, phase)
	if err != nil {
		return res, fail(fmt.Errorf("rebalance: %w", err))
	}
	after, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	res.rebalanceAPIs = apiTimes(before, after, rebalanceAPIs)

	// 2. Offset commits.
	phase(fmt.Sprintf("offset commits: %d committers for %s", cfg.committers, cfg.commitTime))
	res.commits, err = measureCommits(ctx, in.bootstrap, cfg, broker, httpAddr, phase)
	if err != nil {
		return res, fail(fmt.Errorf("offset commits: %w", err))
	}

	// 3. Consumption with and without a group.
	w.topic, w.replication = groupsConsumeTopic, 1
	res.produce, res.plain, res.classicRead, res.consumerRead, err = compareConsumption(ctx, in.bootstrap, w, pool, phase)
	if err != nil {
		return res, fail(err)
	}

	if err := in.alive(); err != nil {
		return res, fail(err)
	}
	if res.brokerRSS, _, err = in.peakRSS(); err != nil {
		return res, fail(err)
	}
	return res, nil
}

// errGroupsWait is wrapped by the waits of the phase that ran out of time.
var errGroupsWait = errors.New("timed out")

// groupsWait calls try every interval until it returns nil, the broker
// exits, or limit passes (then the error says what, from try's last error).
func groupsWait(ctx context.Context, limit, interval time.Duration, procs []*harness.Process, what string, try func() error) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return harness.WaitFor(wctx, interval, procs, try, func(last error) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w (last: %v)", what, err, last)
		}
		return fmt.Errorf("%s: %w after %s: %v", what, errGroupsWait, limit, last)
	})
}
