package main

// The partition scale phase (scale): what a partition costs a broker when it
// exists and when it is used. BENCH.md describes the method; in short, for
// each count of --scale-partitions a fresh single broker (RF=1, the default
// flush policy, like the sediment target) and, with
// --scale-cluster-partitions, a fresh 3-broker cluster (RF=3, like
// sediment-3), each run:
//
//  1. creates a one-partition probe topic, times --scale-requests Produce
//     (acks=all, one small batch), Fetch and Metadata requests on it, one
//     at a time on one connection, and, once the broker is idle, reads its
//     RSS (the baseline: the same process with one partition);
//  2. creates one topic of N partitions with one CreateTopics request and
//     times it until Metadata shows a leader for every partition;
//  3. reads the idle RSS again (after a forced GC and a settle), the open
//     file descriptors and the goroutines: (RSS - baseline) / N is the
//     idle RSS per partition;
//  4. times the probe topic's requests again: with N idle partitions beside
//     it, none should cost more than in step 1 (the same broker, its
//     partition alone);
//  5. runs the workload's producer (--scale-records records, kgo's sticky
//     partitioner) over the N partitions: throughput and p99.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
)

const (
	scaleTargetName = "scale"
	scaleTopic      = "sediment-bench-scale"
	scaleProbeTopic = "sediment-bench-probe"
)

// scaleFlags are the phase's part of the bench flags.
type scaleFlags struct {
	partitions string // --scale-partitions as given
	counts     []int  // parsed by validate
	cluster    int
	records    int
	requests   int
	settle     time.Duration
	wait       time.Duration
}

// addScaleFlags registers the phase's flags on fs.
func addScaleFlags(fs *flag.FlagSet, s *scaleFlags) {
	fs.StringVar(&s.partitions, "scale-partitions", "1,16,100,1000,10000", "scale: comma-separated partition `COUNTS`, each measured on a fresh single broker (RF=1) with one topic of that many partitions; 16 is the reference of the throughput at 1000")
	fs.IntVar(&s.cluster, "scale-cluster-partitions", 1000, "scale: partitions of the topic measured on a fresh 3-broker cluster with replication factor 3 (0 skips the cluster)")
	fs.IntVar(&s.records, "scale-records", 200_000, "scale: records (of --value-size) produced over all partitions of each count's topic")
	fs.IntVar(&s.requests, "scale-requests", 2000, "scale: Produce, Fetch and Metadata requests each timed one after the other on the 1-partition probe topic, alone and then beside the count's partitions, in the same broker")
	fs.DurationVar(&s.settle, "scale-settle", 3*time.Second, "scale: how long a broker idles, after a forced GC, before its RSS is read")
	fs.DurationVar(&s.wait, "scale-wait", 5*time.Minute, "scale: fail when a topic's partitions do not all have a leader this long after CreateTopics")
}

func (s *scaleFlags) validate() error {
	s.counts = nil
	for f := range strings.SplitSeq(s.partitions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100_000 {
			return fmt.Errorf("--scale-partitions %q: %q is not a count from 1 to 100000", s.partitions, f)
		}
		s.counts = append(s.counts, n)
	}
	slices.Sort(s.counts)
	s.counts = slices.Compact(s.counts)
	switch {
	case s.cluster < 0 || s.cluster > 100_000:
		return fmt.Errorf("--scale-cluster-partitions %d: want 0 to 100000", s.cluster)
	case s.records < 1:
		return fmt.Errorf("--scale-records %d: want at least 1", s.records)
	case s.requests < 10:
		return fmt.Errorf("--scale-requests %d: want at least 10", s.requests)
	case s.settle < 0:
		return fmt.Errorf("--scale-settle %s: want a duration >= 0", s.settle)
	case s.wait <= 0:
		return fmt.Errorf("--scale-wait %s: want a positive duration", s.wait)
	}
	return nil
}

// scaleConfig is what the phase runs with.
type scaleConfig struct {
	scaleFlags
	sedimentBin string
	valueSize   int
	maxInflight int
	serveFlags  []string // --sediment-flag
}

// scaleRow is one partition count on one fresh target.
type scaleRow struct {
	partitions int
	rf         int16
	brokers    int
	create     time.Duration // CreateTopics to a leader everywhere in Metadata
	baseRSS    uint64        // bytes, with the probe topic only (cluster: the largest broker's)
	idleRSS    uint64        // bytes, with the N partitions idle too
	fds        int           // open file descriptors (cluster: the largest count)
	fdLimit    uint64        // the broker's soft RLIMIT_NOFILE
	goroutines int           // the broker's (cluster: the largest count)
	heapInuse  uint64        // bytes of Go heap in use (cluster: the largest)
	produce    phaseResult
	p99        time.Duration // produce latency of the workload
	probe      probeResult   // with the N partitions idle beside the probe topic
	probeAlone probeResult   // the same broker before the N partitions existed
	stop       time.Duration // SIGTERM to every broker's exit
	stopErr    error         // a broker that ignored SIGTERM for childStopGrace and was killed
}

// rssPerPartition is the idle RSS a partition adds, in bytes.
func (r scaleRow) rssPerPartition() float64 {
	return (float64(r.idleRSS) - float64(r.baseRSS)) / float64(r.partitions)
}

// scaleResult is one run of the phase.
type scaleResult struct{ rows []scaleRow }

// scaleNode is what the phase reads from one broker process.
type scaleNode struct {
	proc *harness.Process
	http string
}

// runScale runs one scale phase in dir (removed by the caller).
func runScale(ctx context.Context, cfg scaleConfig, dir string, pool *valuePool, p *progress) (scaleResult, error) {
	var res scaleResult
	for _, n := range cfg.counts {
		row, err := scaleOne(ctx, cfg, filepath.Join(dir, fmt.Sprintf("p%d", n)), n, 1, pool, p)
		if err != nil {
			return res, err
		}
		res.rows = append(res.rows, row)
	}
	if cfg.cluster > 0 {
		row, err := scaleOne(ctx, cfg, filepath.Join(dir, fmt.Sprintf("p%d-rf3", cfg.cluster)), cfg.cluster, 3, pool, p)
		if err != nil {
			return res, err
		}
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// scaleOne measures n partitions of replication factor rf on a fresh target:
// one broker for rf 1, else a cluster of rf brokers.
func scaleOne(ctx context.Context, cfg scaleConfig, dir string, n int, rf int16, pool *valuePool, p *progress) (row scaleRow, err error) {
	name := fmt.Sprintf("%s %d partitions RF=%d", scaleTargetName, n, rf)
	phase := func(s string) { p.set(name, s) }
	row = scaleRow{partitions: n, rf: rf, brokers: int(rf)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row, err
	}
	phase("starting")
	var (
		in    *instance
		nodes []scaleNode
	)
	if rf == 1 {
		var httpAddr string
		in, httpAddr, err = startSingleBroker(ctx, cfg.sedimentBin, dir, 1, cfg.serveFlags, nil)
		if err == nil {
			nodes = []scaleNode{{in.procs[0], httpAddr}}
		}
	} else {
		var c *harness.Cluster
		c, err = harness.StartCluster(ctx, harness.ClusterConfig{
			Bin: cfg.sedimentBin, Members: int(rf), Dir: dir, StartTimeout: startLimit,
			Flags: append([]string{"--default-replication-factor", strconv.Itoa(int(rf)), "--min-insync-replicas", "2", "--num-partitions", "1"}, cfg.serveFlags...),
		})
		if err == nil {
			in = &instance{bootstrap: c.Addrs(), procs: c.Processes(), replication: rf, stopAll: func() error { return c.Stop(childStopGrace) }}
			for _, b := range c.Brokers {
				nodes = append(nodes, scaleNode{b.Process(), b.HTTP})
			}
		}
	}
	if err != nil {
		return row, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		// A broker that takes long to stop, or must be killed, is a figure
		// of the row, not a failure of the phase.
		p.note(name, "stopping")
		t0 := time.Now()
		row.stopErr = in.stop()
		row.stop = time.Since(t0)
	}()
	fail := func(err error) (scaleRow, error) {
		return row, fmt.Errorf("%s: %w%s\n%s", name, err, in.exitNote(), in.logTails())
	}

	seeds := in.bootstrap
	probeW := workloadConfig{topic: scaleProbeTopic, partitions: 1, replication: rf}
	phase("creating the probe topic")
	if _, err := createScaleTopic(ctx, seeds, probeW, cfg.wait); err != nil {
		return fail(fmt.Errorf("creating %s: %w", probeW.topic, err))
	}
	// Requests right after the start would also time the broker's start-up
	// work (its etcd member, the controller's first passes).
	if err := sleepCtx(ctx, cfg.settle); err != nil {
		return row, err
	}
	phase(fmt.Sprintf("timing %d Produce, Fetch and Metadata requests on the probe topic alone", cfg.requests))
	if row.probeAlone, err = probeRequests(ctx, seeds, cfg.requests); err != nil {
		return fail(fmt.Errorf("probe requests: %w", err))
	}
	phase("reading the RSS with the probe topic only")
	base, err := idleFigures(ctx, nodes, cfg.settle)
	if err != nil {
		return fail(err)
	}
	row.baseRSS = base.rss

	w := workloadConfig{topic: scaleTopic, partitions: n, replication: rf, records: cfg.records, valueSize: cfg.valueSize, maxInflight: cfg.maxInflight}
	phase(fmt.Sprintf("creating %d partitions", n))
	if row.create, err = createScaleTopic(ctx, seeds, w, cfg.wait); err != nil {
		return fail(fmt.Errorf("creating %s: %w", w.topic, err))
	}
	phase(fmt.Sprintf("reading the RSS with %d idle partitions", n))
	idle, err := idleFigures(ctx, nodes, cfg.settle)
	if err != nil {
		return fail(err)
	}
	row.idleRSS, row.fds, row.fdLimit, row.goroutines, row.heapInuse = idle.rss, idle.fds, idle.fdLimit, idle.goroutines, idle.heapInuse

	phase(fmt.Sprintf("timing %d Produce, Fetch and Metadata requests on the probe topic", cfg.requests))
	if row.probe, err = probeRequests(ctx, seeds, cfg.requests); err != nil {
		return fail(fmt.Errorf("probe requests: %w", err))
	}

	prod, err := produceChecked(ctx, seeds, w, pool, phase)
	if err != nil {
		return fail(err)
	}
	row.produce, row.p99 = prod.produce, prod.p99
	if err := in.alive(); err != nil {
		return fail(err)
	}
	return row, nil
}

// createScaleTopic creates w's topic with one CreateTopics request and
// waits until Metadata shows a leader for every partition, at most limit;
// it returns the time from the request to that.
func createScaleTopic(ctx context.Context, seeds []string, w workloadConfig, limit time.Duration) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(limit))
	if err != nil {
		return 0, err
	}
	defer closeClient(cl)
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(limit.Milliseconds()))
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	resp, err := adm.CreateTopic(ctx, int32(w.partitions), w.replication, nil, w.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return 0, err
	}
	err = harness.WaitFor(ctx, 100*time.Millisecond, nil, func() error { return topicReady(ctx, adm, w) },
		func(last error) error {
			return fmt.Errorf("partitions without a leader %s after CreateTopics: %w (last: %v)", limit, ctx.Err(), last)
		})
	return time.Since(start), err
}

// idle is what an idle target holds: the largest figure of its brokers.
type idle struct {
	rss        uint64
	fds        int
	fdLimit    uint64
	goroutines int
	heapInuse  uint64
}

// idleFigures forces a GC in every broker (pprof's heap profile with gc=1),
// lets them idle for settle, and reads each broker's VmRSS twice, a second
// apart, keeping the lower (a background flush or a metadata watch may
// allocate at the moment of one reading). It returns the largest broker's
// figures.
func idleFigures(ctx context.Context, nodes []scaleNode, settle time.Duration) (idle, error) {
	var out idle
	for _, n := range nodes {
		if err := httpGet(ctx, "http://"+n.http+"/debug/pprof/heap?gc=1", 30*time.Second, io.Discard); err != nil {
			return out, fmt.Errorf("forcing a GC: %w", err)
		}
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return out, err
	}
	rss := make([]uint64, len(nodes))
	for i := range 2 {
		if i > 0 {
			if err := sleepCtx(ctx, time.Second); err != nil {
				return out, err
			}
		}
		for j, n := range nodes {
			m, err := n.proc.Memory()
			if err != nil {
				return out, err
			}
			if i == 0 || m.RSS < rss[j] {
				rss[j] = m.RSS
			}
		}
	}
	for j, n := range nodes {
		out.rss = max(out.rss, rss[j])
		fds, limit, err := openFDs(n.proc.PID())
		if err != nil {
			return out, err
		}
		out.fds, out.fdLimit = max(out.fds, fds), max(out.fdLimit, limit)
		m, err := scrapeMetrics(ctx, n.http)
		if err != nil {
			return out, err
		}
		out.goroutines = max(out.goroutines, int(m["go_goroutines"]))
		out.heapInuse = max(out.heapInuse, uint64(m["go_memstats_heap_inuse_bytes"]))
	}
	return out, nil
}

// openFDs counts the open file descriptors of process pid and reads its
// soft limit on them (RLIMIT_NOFILE) from /proc.
func openFDs(pid int) (n int, limit uint64, err error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("open file descriptors: %w", err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				limit, _ = strconv.ParseUint(f[0], 10, 64) // "unlimited" reads as 0
			}
		}
	}
	return len(ents), limit, nil
}
