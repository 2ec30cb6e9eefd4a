package main

// The latency phase (latency): end-to-end and produce latency at a fixed
// rate, the way the OpenMessaging Benchmark measures it (issue 14). BENCH.md
// describes the method; in short, each run:
//
//  1. starts one broker like the sediment target's and measures its maximum
//     produce rate: --latency-max-records records produced with the
//     workload's producer (as fast as it goes) to a topic of their own;
//  2. produces at half that rate (--latency-rate overrides it) for
//     --latency-duration to a fresh 16-partition topic, on a steady
//     schedule, while a consumer reads the topic (latency_rate.go); every
//     record is checked to arrive exactly once;
//  3. runs step 2 at the same rate, for as long, against klite
//     (latency_klite.go), a Kafka-compatible Go broker with a
//     group-committed WAL, when its binary is at hand.
//
// latency_hist.go holds the latencies, latency_report.go prints them.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	latencyTargetName = "latency"
	latencyMaxTopic   = "sediment-bench-latency-max"
	latencyTopic      = "sediment-bench-latency"
	// latencyLoad is the fraction of the measured maximum produced at.
	latencyLoad = 0.5
	// The project's goals: end-to-end p99 at most 10 ms at that rate, and
	// at most klite's at the same rate.
	latencyP99Target   = 10 * time.Millisecond
	latencyKliteTarget = 1.0
)

// latencyFlags are the phase's part of the bench flags.
type latencyFlags struct {
	duration   time.Duration
	maxRecords int
	rate       float64 // records/s; 0: latencyLoad x the measured maximum
	kliteBin   string
}

// addLatencyFlags registers the phase's flags on fs.
func addLatencyFlags(fs *flag.FlagSet, l *latencyFlags) {
	fs.DurationVar(&l.duration, "latency-duration", time.Minute, "latency: how long records are produced at the fixed rate, to each broker")
	fs.IntVar(&l.maxRecords, "latency-max-records", 500_000, "latency: `N` records produced as fast as the workload's producer goes, to measure the broker's maximum produce rate (the fixed rate is half of it)")
	fs.Float64Var(&l.rate, "latency-rate", 0, "latency: for experiments: produce at this many records a second instead of half the measured maximum (the maximum is then not measured)")
	fs.StringVar(&l.kliteBin, "klite-bin", "", "latency: `PATH` of a klite binary run at the same rate for comparison (default: klite next to --sediment-bin; klite is not fetched by make bench: without it the phase says so and prints no ratio)")
}

func (l *latencyFlags) validate(partitions int) error {
	switch {
	case l.duration < 100*time.Millisecond:
		return fmt.Errorf("--latency-duration %s: want at least 100ms", l.duration)
	case l.maxRecords < partitions:
		return fmt.Errorf("--latency-max-records %d: want at least --partitions", l.maxRecords)
	case l.rate < 0 || l.rate > 10_000_000:
		return fmt.Errorf("--latency-rate %v: want 0 (half the measured maximum) up to 10000000 records a second", l.rate)
	case l.rate > 0 && l.rate*l.duration.Seconds() < 1:
		return fmt.Errorf("--latency-rate %v: want at least one record in --latency-duration", l.rate)
	}
	return nil
}

// latencyConfig is what the phase runs with.
type latencyConfig struct {
	latencyFlags
	sedimentBin string
	kliteWhy    string // why klite does not run, when kliteBin is empty
	partitions  int
	maxInflight int
	serveFlags  []string // --sediment-flag
	keep        bool     // --keep: leave the data directories
}

// resolveKlite finds the klite binary: --klite-bin, which must exist, or
// klite next to the sediment binary. Without either it returns why klite
// will not run.
func resolveKlite(flagged, sedimentBin string) (bin, why string, err error) {
	if flagged != "" {
		abs, err := filepath.Abs(flagged)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return "", "", fmt.Errorf("--klite-bin: %w", err)
		}
		return abs, "", nil
	}
	next := filepath.Join(filepath.Dir(sedimentBin), "klite")
	if st, err := os.Stat(next); err == nil && st.Mode().IsRegular() {
		return next, "", nil
	}
	return "", fmt.Sprintf("no --klite-bin and no %s (klite cannot be fetched from the Go module proxy, so make bench cannot install it; build it from its source and pass --klite-bin)", next), nil
}

// latencyResult is one run of the phase.
type latencyResult struct {
	max      phaseResult // sediment's maximum produce (zero with --latency-rate)
	sediment latencyRun
	klite    *latencyRun // nil: klite did not run
}

// runLatency runs one latency phase in dir (removed by the caller).
func runLatency(ctx context.Context, cfg latencyConfig, dir string, pool *valuePool, p *progress) (res latencyResult, err error) {
	res.max, res.sediment, err = latencySediment(ctx, cfg, filepath.Join(dir, "sediment"), pool, p)
	if err != nil {
		return res, err
	}
	if !cfg.keep {
		os.RemoveAll(filepath.Join(dir, "sediment")) // a minute of records: free the disk for klite's
	}
	if cfg.kliteBin == "" {
		return res, nil
	}
	kr, err := latencyKlite(ctx, cfg, filepath.Join(dir, "klite"), res.sediment.rate, pool, p)
	if err != nil {
		return res, err
	}
	res.klite = &kr
	return res, nil
}

// latencySediment starts the broker, measures its maximum produce rate
// unless the rate is given, and runs the fixed rate against it.
func latencySediment(ctx context.Context, cfg latencyConfig, dir string, pool *valuePool, p *progress) (maxProd phaseResult, run latencyRun, err error) {
	name := latencyTargetName + " sediment"
	phase := func(s string) { p.set(name, s) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return maxProd, run, err
	}
	phase("starting the broker")
	in, httpAddr, err := startSingleBroker(ctx, cfg.sedimentBin, dir, cfg.partitions, cfg.serveFlags, nil)
	if err != nil {
		return maxProd, run, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping the broker")
		if stopErr := in.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
	}()
	fail := func(err error) error {
		return fmt.Errorf("%s: %w%s%s", name, err, in.exitNote(), in.procs[0].LogTail())
	}
	// The HTTP address lets one take the broker's profiles meanwhile
	// (/debug/pprof/).
	p.note(name, fmt.Sprintf("broker on %s, http %s", in.bootstrap[0], httpAddr))

	rate := cfg.rate
	if rate == 0 {
		w := workloadConfig{topic: latencyMaxTopic, partitions: cfg.partitions, replication: 1, records: cfg.maxRecords, valueSize: pool.size, maxInflight: cfg.maxInflight}
		phase("maximum: creating topic " + w.topic)
		if err := createTopic(ctx, in.bootstrap, w); err != nil {
			return maxProd, run, fail(fmt.Errorf("creating topic: %w", err))
		}
		prod, err := produceChecked(ctx, in.bootstrap, w, pool, func(s string) { phase("maximum: " + s) })
		if err != nil {
			return maxProd, run, fail(fmt.Errorf("maximum: %w", err))
		}
		maxProd = prod.produce
		rate = latencyLoad * maxProd.recPerSec()
	}
	run, err = latencyAt(ctx, in, httpAddr, cfg, rate, pool, func(s string) { phase(fmt.Sprintf("%.0f rec/s: %s", rate, s)) })
	if err != nil {
		return maxProd, run, fail(err)
	}
	run.target = "sediment"
	return maxProd, run, nil
}

// latencyAt creates the latency topic on in and runs the fixed rate against
// it, with the target's CPU time, the bench's and the load average around,
// and, when httpAddr is a Sediment broker's, its time in Produce and Fetch.
func latencyAt(ctx context.Context, in *instance, httpAddr string, cfg latencyConfig, rate float64, pool *valuePool, phase func(string)) (latencyRun, error) {
	w := workloadConfig{topic: latencyTopic, partitions: cfg.partitions, replication: 1, valueSize: pool.size, maxInflight: cfg.maxInflight}
	phase("creating topic " + w.topic)
	if err := createTopic(ctx, in.bootstrap, w); err != nil {
		return latencyRun{}, fmt.Errorf("creating topic: %w", err)
	}
	var before map[string]float64
	if httpAddr != "" {
		var err error
		if before, err = scrapeMetrics(ctx, httpAddr); err != nil {
			return latencyRun{}, err
		}
	}
	load0 := loadAverage()
	cpu0, self0 := in.procs[0].CPU(), selfCPU()
	wait0, selfWait0 := runqueueWait(in.procs[0].PID()), runqueueWait(os.Getpid())
	run, err := runFixedRate(ctx, in.bootstrap, w, rate, cfg.duration, pool, phase)
	if err != nil {
		return run, err
	}
	run.runqueue, run.clientRunqueue = runqueueWait(in.procs[0].PID())-wait0, runqueueWait(os.Getpid())-selfWait0
	if httpAddr != "" {
		after, err := scrapeMetrics(ctx, httpAddr)
		if err != nil {
			return run, err
		}
		run.apis = apiTimes(before, after, []string{"Produce", "Fetch"})
	}
	run.cpu, run.clientCPU = in.procs[0].CPU()-cpu0, selfCPU()-self0
	run.loadBefore, run.loadAfter = load0, loadAverage()
	if err := in.alive(); err != nil {
		return run, err
	}
	if run.rss, _, err = in.peakRSS(); err != nil {
		return run, err
	}
	return run, nil
}
