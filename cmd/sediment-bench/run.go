package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

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
	if f.quick {
		if err := applyQuick(fs); err != nil {
			return err
		}
	}
	if err := f.validate(); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this binary: %w", err)
	}
	if f.sedimentBin == "" {
		f.sedimentBin = filepath.Join(filepath.Dir(self), "sediment")
	}
	if f.sedimentBin, err = filepath.Abs(f.sedimentBin); err != nil {
		return err
	}
	only, _ := parseOnly(f.only) // validated
	if only["sediment"] || only["sediment-3"] || only[tierTargetName] || only[groupsTargetName] || only[cleanerTargetName] || only[txnTargetName] || only[securityTargetName] || only[latencyTargetName] || only[scaleTargetName] {
		if _, err := os.Stat(f.sedimentBin); err != nil {
			return fmt.Errorf("--sediment-bin: %w (`make build` builds bin/sediment)", err)
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
	if only[kliteTargetName] {
		kt, err := newKliteTarget(f.latency.kliteBin, f.sedimentBin, f.partitions, int64(f.records)*int64(f.valueSize))
		if err != nil {
			return err
		}
		targets = append(targets, kt)
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
	// --timeout bounds one run; --repeat runs get as many times as long.
	ctx, cancel := context.WithTimeout(sigCtx, f.timeout*time.Duration(f.repeat))
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
	if f.profileDir != "" {
		if err := os.MkdirAll(f.profileDir, 0o755); err != nil {
			return err
		}
		w.profile = &profiler{dir: f.profileDir, seconds: f.profileSeconds}
	}
	printBenchHeader(os.Stdout, &f, w, root)
	tierW := w
	tierW.records = int(int64(f.tierBytes) / int64(f.valueSize))
	if only[tierTargetName] {
		printTierHeader(os.Stdout, tierCfg, tierW.records, tierW.valueSize)
	}
	groupsCfg := groupsConfig{groupsFlags: f.groups, sedimentBin: f.sedimentBin, partitions: f.partitions, serveFlags: f.serveFlags}
	groupsW := w
	groupsW.records = int(int64(f.groups.bytes) / int64(f.valueSize))
	if only[groupsTargetName] {
		printGroupsHeader(os.Stdout, groupsCfg, groupsW.records, groupsW.valueSize)
	}
	cleanerCfg := cleanerConfig{cleanerFlags: f.cleaner, sedimentBin: f.sedimentBin, valueSize: f.valueSize, maxInflight: f.maxInflight, serveFlags: f.serveFlags}
	if only[cleanerTargetName] {
		printCleanerHeader(os.Stdout, cleanerCfg)
	}
	txnCfg := txnConfig{txnFlags: f.txn, sedimentBin: f.sedimentBin, partitions: f.partitions, maxInflight: f.maxInflight, serveFlags: f.serveFlags}
	if only[txnTargetName] {
		printTxnHeader(os.Stdout, txnCfg, f.valueSize)
	}
	securityCfg := securityConfig{securityFlags: f.security, sedimentBin: f.sedimentBin, partitions: f.partitions, maxInflight: f.maxInflight, serveFlags: f.serveFlags}
	if only[securityTargetName] {
		printSecurityHeader(os.Stdout, securityCfg, f.valueSize)
	}
	latencyCfg := latencyConfig{latencyFlags: f.latency, sedimentBin: f.sedimentBin, partitions: f.partitions, maxInflight: f.maxInflight, serveFlags: f.serveFlags, keep: f.keep}
	if only[latencyTargetName] {
		if latencyCfg.kliteBin, latencyCfg.kliteWhy, err = resolveKlite(f.latency.kliteBin, f.sedimentBin); err != nil {
			return err
		}
		printLatencyHeader(os.Stdout, latencyCfg, f.valueSize)
	}
	scaleCfg := scaleConfig{scaleFlags: f.scale, sedimentBin: f.sedimentBin, valueSize: f.valueSize, maxInflight: f.maxInflight, serveFlags: f.serveFlags}
	if only[scaleTargetName] {
		printScaleHeader(os.Stdout, scaleCfg)
	}
	if only[imageTargetName] {
		if _, err := checkImage(f.image.image); err != nil {
			return fmt.Errorf("%w, or leave %s out of --only", err, imageTargetName)
		}
		printImageHeader(os.Stdout, f.image)
	}
	pool := newValuePool(w.valueSize)

	p := &progress{out: os.Stderr}
	var runs [][]runResult
	var failovers []time.Duration
	var tiers []tierResult
	var groupRuns []groupsResult
	var cleanerRuns []cleanerResult
	var txnRuns []txnResult
	var securityRuns []securityResult
	var imageRuns []imageResult
	var rawRuns []rawResult
	var scaleRuns []scaleResult
	var latencyRuns []latencyResult
	rawCfg := rawConfigFor("", w)
	for run := 1; run <= f.repeat; run++ {
		var results []runResult
		if only["sediment"] && f.raw {
			// Right before the sediment target, on the same file system.
			rawCfg.dir = filepath.Join(root, fmt.Sprintf("run%d-raw", run))
			p.set("raw", fmt.Sprintf("appending and reading back %.1f MiB", float64(rawCfg.bytes)/(1<<20)))
			rr, err := runRaw(ctx, rawCfg)
			if !f.keep {
				os.RemoveAll(rawCfg.dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			rawRuns = append(rawRuns, rr)
		}
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
		if len(rawRuns) == run {
			printRawResults(os.Stdout, rawRuns[run-1], rawCfg, results)
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

		if only[groupsTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-groups", run))
			gr, err := runGroups(ctx, groupsCfg, dir, groupsW, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			groupRuns = append(groupRuns, gr)
			printGroupsResults(os.Stdout, title, f.groups.heartbeat, gr, nil)
		}

		if only[cleanerTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-cleaner", run))
			cr, err := runCleaner(ctx, cleanerCfg, dir, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			cleanerRuns = append(cleanerRuns, cr)
			printCleanerResults(os.Stdout, title, cr, nil)
		}

		if only[txnTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-txn", run))
			tr, err := runTxn(ctx, txnCfg, dir, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			txnRuns = append(txnRuns, tr)
			printTxnResults(os.Stdout, title, tr, nil)
		}

		if only[securityTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-security", run))
			sr, err := runSecurity(ctx, securityCfg, dir, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			securityRuns = append(securityRuns, sr)
			printSecurityResults(os.Stdout, title, sr, nil)
		}

		if only[latencyTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-latency", run))
			lr, err := runLatency(ctx, latencyCfg, dir, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			latencyRuns = append(latencyRuns, lr)
			printLatencyResults(os.Stdout, title, lr, nil)
		}

		if only[scaleTargetName] {
			dir := filepath.Join(root, fmt.Sprintf("run%d-scale", run))
			sr, err := runScale(ctx, scaleCfg, dir, pool, p)
			if !f.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			scaleRuns = append(scaleRuns, sr)
			printScaleResults(os.Stdout, title, sr)
		}

		if only[imageTargetName] {
			ir, err := runImage(ctx, f.image, p)
			if err != nil {
				return benchError(ctx, sigCtx, f.timeout, p, err)
			}
			imageRuns = append(imageRuns, ir)
			printImageResults(os.Stdout, title, ir)
		}
	}
	if f.repeat > 1 {
		if len(targets) > 0 {
			med := medians(runs)
			printResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), med)
			if len(rawRuns) > 0 {
				printRawResults(os.Stdout, rawMedians(rawRuns), rawCfg, med)
			}
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
		if len(groupRuns) > 0 {
			printGroupsResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), f.groups.heartbeat, groupsMedians(groupRuns), groupRuns)
		}
		if len(cleanerRuns) > 0 {
			printCleanerResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), cleanerMedians(cleanerRuns), cleanerRuns)
		}
		if len(txnRuns) > 0 {
			printTxnResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), txnMedians(txnRuns), txnRuns)
		}
		if len(securityRuns) > 0 {
			printSecurityResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), securityMedians(securityRuns), securityRuns)
		}
		if len(latencyRuns) > 0 {
			printLatencyResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), latencyMedians(latencyRuns), latencyRuns)
		}
		if len(scaleRuns) > 0 {
			printScaleResults(os.Stdout, fmt.Sprintf("median of %d runs", f.repeat), scaleMedians(scaleRuns))
		}
		if len(imageRuns) > 0 {
			all := imageResult{size: imageRuns[0].size}
			for _, r := range imageRuns {
				all.starts, all.runs = append(all.starts, r.starts...), append(all.runs, r.runs...)
			}
			printImageResults(os.Stdout, fmt.Sprintf("all %d runs", f.repeat), all)
		}
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
	if w.profile != nil {
		w.profile = &profiler{dir: w.profile.dir, seconds: w.profile.seconds, http: inst.http}
	}
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
