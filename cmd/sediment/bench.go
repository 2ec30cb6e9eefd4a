package main

// sediment bench: the project's own benchmark. It starts every target as a
// child process of this binary, drives each with the same franz-go workload
// from this process, one target after the other, and prints one table per
// run plus the medians. BENCH.md at the repository root describes the method.
//
// Layout of the bench files:
//
//	bench.go           flags, orchestration, report
//	bench_target.go    the benchTarget interface, the targets, child processes
//	bench_cluster.go   the 3-broker replicated Sediment cluster (sediment-3)
//	bench_failover.go  the failover phase on a fresh 3-broker cluster
//	bench_tier.go      the tiered-storage phase (sediment-tier): produce with
//	                   tiering on and off, catch-up read from MinIO vs raw GETs
//	bench_workload.go  the workload every target runs (produce, verify, consume)
//	bench_linux.go     process attributes, peak RSS and machine facts from /proc
//	bench_other.go     the same for other systems (no RSS)

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func bench(args []string) error { return benchMain(args) }

type benchFlags struct {
	sedimentBin string
	only        string
	records     int
	valueSize   int
	partitions  int
	maxInflight int
	repeat      int
	timeout     time.Duration
	workDir     string
	keep        bool
	serveFlags  []string
	failover    bool
	failoverMax time.Duration

	// The tiered-storage phase (bench_tier.go).
	minioBin        string
	tierBytes       byteSize
	tierSegment     byteSize
	tierWait        time.Duration
	tierRawChunk    byteSize
	tierRawParallel int

	kfakeServe string // internal: run the kfake child instead of the bench
}

const benchUsage = `Usage: sediment bench [flags]

Runs one franz-go workload against each target, one after the other, and
prints throughput, produce latency, peak RSS and CPU time of each, the ratios
sediment/kfake and sediment-3/sediment and, with --repeat, the medians.
Targets, each started as child processes of this binary:

  sediment    one Sediment broker (embedded etcd), replication factor 1
  kfake       franz-go's in-memory fake cluster, one broker
  sediment-3  three Sediment brokers forming one cluster (an etcd quorum of
              three), the topic replicated 3 times, min.insync.replicas 2
  sediment-tier
              tiered storage: --tier-bytes produced to one broker without
              tiering and to one tiering to a MinIO server (--minio-bin),
              then read back from offset 0 once it is all in MinIO only,
              against ranged GETs of the same objects straight from MinIO

With --failover (the default, when sediment-3 runs), each run then starts a
fresh 3-broker cluster, produces steadily to a one-partition topic replicated
3 times, kills the partition's leader with SIGKILL and prints the time from
the kill to the first acknowledgement of a record produced after it, with
the brokers' default session timeout.

The workload, identical for every target: create a topic with --partitions
partitions; produce --records records of --value-size incompressible bytes with
acks=all, the idempotent producer, no compression and kgo's default batching,
keeping at most --max-inflight records outstanding; check the end offsets; then
read everything back from the start without a consumer group and verify every
record (count, offsets, and content). See BENCH.md for the method.

Flags (bench reads no SEDIMENT_* environment, and strips it from its children):
`

func benchFlagSet(f *benchFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&f.sedimentBin, "sediment-bin", "", "`PATH` of the sediment binary to benchmark, run as PATH serve ... (default: this binary)")
	fs.StringVar(&f.only, "only", "all", "targets to run: a comma-separated list of sediment, kfake, sediment-3 and sediment-tier, or all (both: sediment,kfake); they run in the order sediment, kfake, sediment-3, (failover), sediment-tier")
	fs.IntVar(&f.records, "records", 1000000, "`N` records produced and consumed per target and run; the default makes each produce phase take ~10 s on 2 cores (kfake then peaks near 2.5 GiB RSS)")
	fs.IntVar(&f.valueSize, "value-size", 1024, "bytes per record value (at least 16); values are random, so incompressible")
	fs.IntVar(&f.partitions, "partitions", 16, "partitions of the benchmark topic (also the broker's --num-partitions)")
	fs.IntVar(&f.maxInflight, "max-inflight", 10000, "most records produced but not yet acknowledged (also kgo's MaxBufferedRecords)")
	fs.IntVar(&f.repeat, "repeat", 1, "runs; each run starts fresh target processes, and the medians of all runs are printed")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "fail the whole bench if it has not finished after this long")
	fs.StringVar(&f.workDir, "work-dir", "", "parent `DIR` of the temporary directory holding the broker's data and the children's logs (default: $TMPDIR or /tmp); fsync costs depend on its file system")
	fs.BoolVar(&f.failover, "failover", true, "after the targets of each run, measure a leader failover on a fresh 3-broker cluster (only when sediment-3 runs; --failover=false skips it)")
	fs.DurationVar(&f.failoverMax, "failover-timeout", time.Minute, "fail the failover phase when no record produced after the kill is acknowledged within this long")
	fs.StringVar(&f.minioBin, "minio-bin", "", "`PATH` of the MinIO server sediment-tier runs (default: minio next to --sediment-bin, else ./bin/minio; `make minio` builds it)")
	f.tierBytes = 2 << 30
	fs.Var(&f.tierBytes, "tier-bytes", "sediment-tier: `SIZE` of the record values produced with tiering off, then on, and read back from the tier (bytes, or with a KiB, MiB or GiB suffix); records = SIZE / --value-size")
	f.tierSegment = 32 << 20
	fs.Var(&f.tierSegment, "tier-segment-bytes", "sediment-tier: segment.bytes of its topic, tiering on and off alike (`SIZE` as for --tier-bytes): small enough that segments are sealed, and uploaded, during the produce")
	fs.DurationVar(&f.tierWait, "tier-wait", 3*time.Minute, "sediment-tier: fail if the records are not all tiered, and gone from local disk, this long after the produce")
	f.tierRawChunk = byteSize(readerDefaults().ChunkSize)
	fs.Var(&f.tierRawChunk, "tier-raw-chunk", "sediment-tier: `SIZE` of each ranged GET of the raw baseline, for experiments; the default is the broker's remote reader chunk size")
	fs.IntVar(&f.tierRawParallel, "tier-raw-parallel", readerDefaults().MaxParallel, "sediment-tier: ranged GETs in flight in the raw baseline, for experiments; the default is the most the broker's remote reader runs")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary directory (data and child logs) instead of removing it")
	fs.Func("sediment-flag", "`FLAG` added to the serve command line of every Sediment broker (sediment, sediment-3, failover), e.g. --sediment-flag=--flush-policy=os; repeatable; for experiments only: the reference figures use none", func(v string) error {
		if !strings.HasPrefix(v, "-") {
			return fmt.Errorf("%q is not a flag", v)
		}
		f.serveFlags = append(f.serveFlags, v)
		return nil
	})
	fs.StringVar(&f.kfakeServe, "kfake-serve", "", "internal: run one kfake broker on 127.0.0.1:PORT until SIGTERM (how bench starts its kfake child)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, benchUsage)
		fs.VisitAll(func(fl *flag.Flag) {
			if fl.Name == "kfake-serve" {
				return // internal, documented in BENCH.md
			}
			name, usage := flag.UnquoteUsage(fl)
			fmt.Fprintf(out, "  --%s", fl.Name)
			if name != "" {
				fmt.Fprintf(out, " %s", name)
			}
			fmt.Fprintf(out, "\n    \t%s", usage)
			if fl.DefValue != "" && fl.DefValue != "false" {
				fmt.Fprintf(out, " (default %s)", fl.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	return fs
}

func benchMain(args []string) error {
	var f benchFlags
	fs := benchFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if f.kfakeServe != "" {
		return kfakeServe(f.kfakeServe)
	}
	if err := f.validate(); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this binary: %w", err)
	}
	if f.sedimentBin == "" {
		f.sedimentBin = self
	}
	if f.sedimentBin, err = filepath.Abs(f.sedimentBin); err != nil {
		return err
	}
	only, _ := parseOnly(f.only) // validated
	if only["sediment"] || only["sediment-3"] || only[tierTargetName] {
		if _, err := os.Stat(f.sedimentBin); err != nil {
			return fmt.Errorf("--sediment-bin: %w", err)
		}
	}
	tierCfg := tierConfig{
		sedimentBin:  f.sedimentBin,
		minioBin:     f.minioBin,
		partitions:   f.partitions,
		serveFlags:   f.serveFlags,
		segmentBytes: int64(f.tierSegment),
		wait:         f.tierWait,
		rawChunk:     int64(f.tierRawChunk),
		rawParallel:  f.tierRawParallel,
	}
	if only[tierTargetName] {
		if tierCfg.minioBin == "" {
			tierCfg.minioBin = defaultMinIOBin(f.sedimentBin)
		}
		if _, err := os.Stat(tierCfg.minioBin); err != nil {
			return fmt.Errorf("%s needs a MinIO server binary: %w; build it with `make minio` (./bin/minio), pass --minio-bin, or leave %s out of --only", tierTargetName, err, tierTargetName)
		}
	}
	var targets []benchTarget
	if only["sediment"] {
		targets = append(targets, &sedimentTarget{bin: f.sedimentBin, partitions: f.partitions, extra: f.serveFlags})
	}
	if only["kfake"] {
		targets = append(targets, &kfakeTarget{bin: self})
	}
	cluster := &clusterTarget{bin: f.sedimentBin, brokers: 3, partitions: f.partitions, extra: f.serveFlags}
	if only["sediment-3"] {
		targets = append(targets, cluster)
	}
	doFailover := f.failover && only["sediment-3"]

	// Ctrl-C and SIGTERM cancel the bench, whose deferred stops then end the
	// children and remove the temporary directory. A second Ctrl-C kills the
	// bench at once; the children then die by their parent-death signal.
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-sigCtx.Done()
		stopSignals()
	}()
	ctx, cancel := context.WithTimeout(sigCtx, f.timeout)
	defer cancel()

	root, err := os.MkdirTemp(f.workDir, "sediment-bench-")
	if err != nil {
		return err
	}
	if f.keep {
		defer fmt.Fprintf(os.Stderr, "bench: kept %s\n", root)
	} else {
		defer os.RemoveAll(root)
	}

	w := workloadConfig{
		topic:       "sediment-bench",
		partitions:  f.partitions,
		records:     f.records,
		valueSize:   f.valueSize,
		maxInflight: f.maxInflight,
	}
	printBenchHeader(os.Stdout, &f, w, root)
	tierW := w
	tierW.records = int(int64(f.tierBytes) / int64(f.valueSize))
	if only[tierTargetName] {
		printTierHeader(os.Stdout, tierCfg, tierW.records, tierW.valueSize)
	}
	pool := newValuePool(w.valueSize)

	p := &progress{out: os.Stderr}
	var runs [][]runResult
	var failovers []time.Duration
	var tiers []tierResult
	for run := 1; run <= f.repeat; run++ {
		var results []runResult
		for _, t := range targets {
			dir := filepath.Join(root, fmt.Sprintf("run%d-%s", run, t.name()))
			res, err := benchOne(ctx, t, dir, w, pool, p)
			if !f.keep {
				os.RemoveAll(dir) // ~records*value-size of data per target: free it between runs
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			results = append(results, res)
		}
		runs = append(runs, results)
		title := "results"
		if f.repeat > 1 {
			title = fmt.Sprintf("run %d/%d", run, f.repeat)
		}
		if len(targets) > 0 {
			printResults(os.Stdout, title, results)
		}

		if doFailover {
			dir := filepath.Join(root, fmt.Sprintf("run%d-failover", run))
			fo, err := runFailover(ctx, cluster, dir, f.failoverMax, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				fmt.Fprintf(os.Stdout, "failover: FAILED (see the error below)\n")
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			failovers = append(failovers, fo.elapsed)
			fmt.Fprintln(os.Stdout, fo)
		}

		if only[tierTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-tier", run))
			tr, err := runTier(ctx, tierCfg, dir, tierW, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			tiers = append(tiers, tr)
			printTierResults(os.Stdout, title, tr, nil)
		}
	}
	if f.repeat > 1 {
		if len(targets) > 0 {
			printResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), medians(runs))
		}
		if len(failovers) > 0 {
			slices.Sort(failovers)
			m := failovers[len(failovers)/2]
			if len(failovers)%2 == 0 {
				m = (failovers[len(failovers)/2-1] + m) / 2
			}
			fmt.Fprintf(os.Stdout, "failover: %.1fs median of %d (target < %s %s)\n", m.Seconds(), len(failovers), failoverTarget, verdict(m < failoverTarget))
		}
		if len(tiers) > 0 {
			printTierResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), tierMedians(tiers), tiers)
		}
	}
	return nil
}

// benchTargetNames are the targets --only chooses from, in the order they run.
var benchTargetNames = []string{"sediment", "kfake", "sediment-3", tierTargetName}

// parseOnly reads --only: a comma-separated list of target names, "all", or
// "both" (sediment and kfake, what --only meant before sediment-3).
func parseOnly(v string) (map[string]bool, error) {
	only := map[string]bool{}
	for name := range strings.SplitSeq(v, ",") {
		switch name = strings.TrimSpace(name); name {
		case "all":
			for _, n := range benchTargetNames {
				only[n] = true
			}
		case "both":
			only["sediment"], only["kfake"] = true, true
		default:
			if !slices.Contains(benchTargetNames, name) {
				return nil, fmt.Errorf("--only %q: unknown target %q; want a comma-separated list of %s, or all", v, name, strings.Join(benchTargetNames, ", "))
			}
			only[name] = true
		}
	}
	return only, nil
}

func (f *benchFlags) validate() error {
	if _, err := parseOnly(f.only); err != nil {
		return err
	}
	switch {
	case f.records < 1:
		return fmt.Errorf("--records %d: want at least 1", f.records)
	case f.valueSize < minValueSize:
		return fmt.Errorf("--value-size %d: want at least %d", f.valueSize, minValueSize)
	case f.partitions < 1:
		return fmt.Errorf("--partitions %d: want at least 1", f.partitions)
	case f.maxInflight < 1:
		return fmt.Errorf("--max-inflight %d: want at least 1", f.maxInflight)
	case f.repeat < 1:
		return fmt.Errorf("--repeat %d: want at least 1", f.repeat)
	case f.timeout <= 0:
		return fmt.Errorf("--timeout %s: want a positive duration", f.timeout)
	case f.failoverMax <= 0:
		return fmt.Errorf("--failover-timeout %s: want a positive duration", f.failoverMax)
	case int64(f.tierBytes) < int64(f.valueSize)*int64(f.partitions):
		return fmt.Errorf("--tier-bytes %s: want at least --value-size x --partitions", &f.tierBytes)
	case f.tierSegment < 1<<20 || f.tierSegment > 1<<31-1:
		return fmt.Errorf("--tier-segment-bytes %s: want 1MiB to 2GiB-1 (segment.bytes is an int32)", &f.tierSegment)
	case f.tierWait <= 0:
		return fmt.Errorf("--tier-wait %s: want a positive duration", f.tierWait)
	case f.tierRawChunk < 1<<10 || f.tierRawChunk > 256<<20:
		return fmt.Errorf("--tier-raw-chunk %s: want 1KiB to 256MiB", &f.tierRawChunk)
	case f.tierRawParallel < 1:
		return fmt.Errorf("--tier-raw-parallel %d: want at least 1", f.tierRawParallel)
	}
	return nil
}

// benchError names the phase a timeout or an interrupt hit, which the bare
// context error would not.
func benchError(ctx, sigCtx context.Context, timeout time.Duration, p *progress, err error) error {
	switch {
	case sigCtx.Err() != nil:
		return fmt.Errorf("interrupted while %s", p.current())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("timed out after --timeout %s while %s (last error: %w)", timeout, p.current(), err)
	}
	return err
}

// benchOne starts t, runs the workload against it and stops it, reading
// its processes' peak RSS while they still run.
func benchOne(ctx context.Context, t benchTarget, dir string, w workloadConfig, pool *valuePool, p *progress) (res runResult, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	p.set(t.name(), "starting")
	inst, err := t.start(ctx, dir)
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", t.name(), err)
	}
	defer func() {
		p.note(t.name(), "stopping") // keeps the phase a failure happened in
		if stopErr := inst.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", t.name(), stopErr)
		}
		res.cpu = inst.cpuTime()
	}()

	w.replication = max(inst.replication, 1)
	cpu0 := selfCPU()
	wr, err := runWorkload(ctx, inst.bootstrap, w, pool, func(phase string) { p.set(t.name(), phase) })
	clientCPU := selfCPU() - cpu0
	if err != nil {
		err = fmt.Errorf("%s: %w%s", t.name(), err, inst.exitNote())
		if len(inst.procs) > 1 {
			// Which broker explains a cluster's failure is rarely obvious.
			err = fmt.Errorf("%w\n%v", err, inst.logTails())
		}
		return res, err
	}
	if err := inst.alive(); err != nil {
		return res, fmt.Errorf("%s: %w", t.name(), err)
	}
	rss, rssSum, err := inst.peakRSS()
	if err != nil {
		return res, fmt.Errorf("%s: peak RSS: %w", t.name(), err)
	}
	return runResult{target: t.name(), workloadResult: wr, peakRSS: rss, rssSum: rssSum, procs: len(inst.procs), clientCPU: clientCPU}, nil
}

// progress reports phases on stderr, keeping stdout for the results, and
// remembers the current phase for timeout messages. Safe for concurrent use.
type progress struct {
	mu     sync.Mutex // set is also called from workload reporters
	out    io.Writer
	target string
	phase  string
	start  time.Time
}

func (p *progress) set(target, phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target, p.phase = target, phase
	if p.start.IsZero() {
		p.start = time.Now()
	}
	fmt.Fprintf(p.out, "bench: %6.1fs %s: %s\n", time.Since(p.start).Seconds(), target, phase)
}

// note prints like set but keeps the current phase.
func (p *progress) note(target, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "bench: %6.1fs %s: %s\n", time.Since(p.start).Seconds(), target, msg)
}

func (p *progress) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.target == "" {
		return "starting"
	}
	return p.target + ": " + p.phase
}

// runResult is one target's figures from one run.
type runResult struct {
	target string
	workloadResult
	peakRSS   uint64        // bytes: the largest VmHWM of the target's processes
	rssSum    uint64        // bytes: VmHWM summed over the target's processes
	procs     int           // the target's processes
	cpu       time.Duration // user+system time of the target's processes
	clientCPU time.Duration // user+system time of the bench process while driving the target
}

func printBenchHeader(out io.Writer, f *benchFlags, w workloadConfig, root string) {
	total := float64(w.records) * float64(w.valueSize)
	fmt.Fprintf(out, "sediment bench: %d records x %d B values (%.1f MiB) per target and run, %d partitions, acks=all, idempotent, no compression, <= %d records in flight\n",
		w.records, w.valueSize, total/(1<<20), w.partitions, w.maxInflight)
	model := cpuModel()
	if model != "" {
		model = " (" + model + ")"
	}
	fmt.Fprintf(out, "machine: %s/%s, %d cores%s, GOMAXPROCS %d, kernel %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, runtime.GOMAXPROCS(0), kernelRelease())
	sedGo := "?"
	if bi, err := buildinfo.ReadFile(f.sedimentBin); err == nil {
		sedGo = bi.GoVersion
	}
	fmt.Fprintf(out, "go: bench and kfake %s, sediment %s (%s)\n", runtime.Version(), sedGo, f.sedimentBin)
	fmt.Fprintf(out, "work dir: %s (%s)\n", root, fsType(root))
	if only, _ := parseOnly(f.only); only["sediment-3"] {
		fo := "off"
		if f.failover {
			fo = fmt.Sprintf("on: a fresh cluster per run, leader killed with SIGKILL, broker session timeout 9s (default), <= %s", f.failoverMax)
		}
		fmt.Fprintf(out, "sediment-3: 3 brokers, one etcd quorum of 3, topic replication factor 3, min.insync.replicas 2, all three as bootstrap; failover %s\n", fo)
	}
	if only, _ := parseOnly(f.only); len(f.serveFlags) > 0 && (only["sediment"] || only["sediment-3"]) {
		fmt.Fprintf(out, "sediment serve flags added (not the reference setup): %s\n", strings.Join(f.serveFlags, " "))
	}
}

const resultFormat = "%-10s %13s %14s %8s %8s %13s %14s %13s %12s %6s %13s\n"

func printResults(out io.Writer, title string, results []runResult) {
	fmt.Fprintf(out, "\n%s:\n", title)
	fmt.Fprintf(out, resultFormat, "target", "produce MiB/s", "produce rec/s", "p50 ms", "p99 ms",
		"consume MiB/s", "consume rec/s", "peak RSS MiB", "RSS sum MiB", "cpu s", "client cpu s")
	byName := map[string]runResult{}
	for _, r := range results {
		byName[r.target] = r
		sum := "-" // one process: the same as peak RSS
		if r.procs > 1 {
			sum = fmt.Sprintf("%.1f", float64(r.rssSum)/(1<<20))
		}
		fmt.Fprintf(out, resultFormat, r.target,
			fmt.Sprintf("%.1f", r.produce.mibPerSec()), fmt.Sprintf("%.0f", r.produce.recPerSec()),
			fmt.Sprintf("%.1f", ms(r.p50)), fmt.Sprintf("%.1f", ms(r.p99)),
			fmt.Sprintf("%.1f", r.consume.mibPerSec()), fmt.Sprintf("%.0f", r.consume.recPerSec()),
			fmt.Sprintf("%.1f", float64(r.peakRSS)/(1<<20)), sum, fmt.Sprintf("%.1f", r.cpu.Seconds()),
			fmt.Sprintf("%.1f", r.clientCPU.Seconds()))
	}
	s, okS := byName["sediment"]
	if k, okK := byName["kfake"]; okS && okK {
		pr := s.produce.mibPerSec() / k.produce.mibPerSec()
		cr := s.consume.mibPerSec() / k.consume.mibPerSec()
		rss := float64(s.peakRSS) / (1 << 20)
		fmt.Fprintf(out, "ratio sediment/kfake: produce %.2fx  consume %.2fx   (targets: >= 2.0x produce %s, >= 2.5x consume %s, sediment RSS < 512 MiB %s)\n",
			pr, cr, verdict(pr >= 2.0), verdict(cr >= 2.5), verdict(rss < 512))
	}
	if c, okC := byName["sediment-3"]; okS && okC {
		pr := c.produce.mibPerSec() / s.produce.mibPerSec()
		cr := c.consume.mibPerSec() / s.consume.mibPerSec()
		fmt.Fprintf(out, "ratio sediment-3/sediment (3-broker RF=3 / single broker): produce %.2fx  consume %.2fx   (target: >= 0.5x produce %s)\n",
			pr, cr, verdict(pr >= 0.5))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medians takes, per target, the median of each metric over all runs on its
// own, so one slow phase of one run moves no other column.
func medians(runs [][]runResult) []runResult {
	var out []runResult
	for i := range runs[0] {
		col := make([]runResult, len(runs))
		for j, run := range runs {
			col[j] = run[i]
		}
		m := runResult{target: col[0].target, procs: col[0].procs}
		m.produce = phaseResult{records: col[0].produce.records, bytes: col[0].produce.bytes,
			elapsed: medianOf(col, func(r runResult) time.Duration { return r.produce.elapsed })}
		m.consume = phaseResult{records: col[0].consume.records, bytes: col[0].consume.bytes,
			elapsed: medianOf(col, func(r runResult) time.Duration { return r.consume.elapsed })}
		m.p50 = medianOf(col, func(r runResult) time.Duration { return r.p50 })
		m.p99 = medianOf(col, func(r runResult) time.Duration { return r.p99 })
		m.cpu = medianOf(col, func(r runResult) time.Duration { return r.cpu })
		m.clientCPU = medianOf(col, func(r runResult) time.Duration { return r.clientCPU })
		m.peakRSS = medianOf(col, func(r runResult) uint64 { return r.peakRSS })
		m.rssSum = medianOf(col, func(r runResult) uint64 { return r.rssSum })
		out = append(out, m)
	}
	return out
}

// medianOf is the middle value, or the mean of the two middle values.
func medianOf[T time.Duration | uint64](rs []runResult, get func(runResult) T) T {
	vs := make([]T, len(rs))
	for i, r := range rs {
		vs[i] = get(r)
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return T(math.Round((float64(vs[n/2-1]) + float64(vs[n/2])) / 2))
}

// childEnv is this process's environment without SEDIMENT_* variables, so
// that a setting meant for someone's `sediment serve` cannot change the
// benchmarked broker.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEDIMENT_") {
			env = append(env, kv)
		}
	}
	return env
}
