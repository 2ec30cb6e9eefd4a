package main

// The log cleaner phase (cleaner): how fast one broker compacts a log, and
// what memory that takes. BENCH.md describes the method; in short, each run
// starts one broker with its cleaner off, produces --cleaner-bytes of keyed
// records (--value-size random values over --cleaner-keys keys, in random
// order) to a one-partition topic with cleanup.policy=compact and segments of
// --cleaner-segment-bytes and min.cleanable.dirty.ratio 0, stops it, and starts it
// again with the cleaner on
// (offset map: --cleaner-dedupe-buffer, the broker's
// --log-cleaner-dedupe-buffer-size). From that start, the cleaner's own
// metrics say when every sealed segment is clean and how long cleaning took;
// the figures are the log bytes cleaned per second of cleaning and the
// restarted broker's peak RSS (VmHWM), which the offset map bounds whatever
// the log holds.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
)

const (
	cleanerTargetName = "cleaner"
	cleanerTopic      = "sediment-bench-compacted"
)

// cleanerFlags are the phase's part of the bench flags.
type cleanerFlags struct {
	bytes    byteSize
	segment  byteSize
	dedupe   byteSize
	keys     int
	wait     time.Duration
	inflight int
}

// addCleanerFlags registers the phase's flags on fs.
func addCleanerFlags(fs *flag.FlagSet, c *cleanerFlags) {
	c.bytes = 1 << 30
	fs.Var(&c.bytes, "cleaner-bytes", "cleaner: `SIZE` of the keyed record values produced to the compacted topic, then cleaned (bytes, or with a KiB, MiB or GiB suffix); records = SIZE / --value-size")
	c.segment = 64 << 20
	fs.Var(&c.segment, "cleaner-segment-bytes", "cleaner: segment.bytes of the compacted topic (`SIZE`); only sealed segments are cleaned")
	c.dedupe = 128 << 20
	fs.Var(&c.dedupe, "cleaner-dedupe-buffer", "cleaner: the broker's --log-cleaner-dedupe-buffer-size (`SIZE`, Kafka's default 128MiB): the offset map's memory, 24 bytes a key; a map smaller than the keys takes several cleans")
	fs.IntVar(&c.keys, "cleaner-keys", 100_000, "cleaner: distinct keys of the produced records (each record's key drawn at random); records / keys versions per key on average")
	fs.DurationVar(&c.wait, "cleaner-wait", 10*time.Minute, "cleaner: fail if the log is not clean this long after the broker restarts with its cleaner on")
}

func (c *cleanerFlags) validate(valueSize int) error {
	switch {
	case int64(c.bytes) < int64(valueSize):
		return fmt.Errorf("--cleaner-bytes %s: want at least --value-size", &c.bytes)
	case c.segment < 1<<20 || c.segment > 1<<31-1:
		return fmt.Errorf("--cleaner-segment-bytes %s: want 1MiB to 2GiB-1", &c.segment)
	case c.dedupe < 1<<10:
		return fmt.Errorf("--cleaner-dedupe-buffer %s: want at least 1KiB", &c.dedupe)
	case c.keys < 1:
		return fmt.Errorf("--cleaner-keys %d: want at least 1", c.keys)
	case c.wait <= 0:
		return fmt.Errorf("--cleaner-wait %s: want a positive duration", c.wait)
	}
	return nil
}

// cleanerConfig is what the phase runs with.
type cleanerConfig struct {
	cleanerFlags
	sedimentBin string
	valueSize   int
	maxInflight int
	serveFlags  []string // --sediment-flag, before the phase's own
}

func (c cleanerConfig) records() int { return int(int64(c.bytes) / int64(c.valueSize)) }

// cleanerResult is one run of the phase.
type cleanerResult struct {
	produce             phaseResult
	logBefore, logAfter int64 // bytes of the partition's segments before and after cleaning
	sealedBefore        int64 // of which sealed (what the cleaner could clean)
	cleaned             int64 // bytes the cleaner read (dirty section mapped, segments rewritten)
	written             int64 // bytes of cleaned segments it wrote
	cleans              float64
	cleanTime           time.Duration // the cleaner's own time (clean_seconds_total)
	untilClean          time.Duration // from the restart to the log being clean
	peakRSS, rssAtStart uint64        // the restarted broker's VmHWM once clean, and right after its start
	bufferUtilization   float64
	brokerCPU           time.Duration // of the run that cleaned
	segsAft             int
}

// mibPerSec is the phase's figure: sealed log bytes cleaned per second of cleaning.
func (r cleanerResult) mibPerSec() float64 {
	return float64(r.sealedBefore) / (1 << 20) / r.cleanTime.Seconds()
}

// runCleaner runs one cleaner phase in dir (removed by the caller).
func runCleaner(ctx context.Context, cfg cleanerConfig, dir string, pool *valuePool, p *progress) (res cleanerResult, err error) {
	name := cleanerTargetName
	phase := func(s string) { p.set(name, s) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	phase("starting the broker with its cleaner off")
	flags := append(append([]string{"--num-partitions", "1"}, cfg.serveFlags...),
		"--log-cleaner-dedupe-buffer-size", strconv.FormatInt(int64(cfg.dedupe), 10), "--log-cleaner-backoff", "100ms", "--log-cleaner-enable=false")
	b, err := harness.StartBroker(ctx, harness.BrokerConfig{
		Bin: cfg.sedimentBin, NodeID: 1, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "sediment.log"),
		Flags: flags, StartTimeout: startLimit,
	})
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping the broker")
		if stopErr := b.Stop(childStopGrace); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
		if proc := b.Process(); proc != nil && !proc.Running() {
			res.brokerCPU = proc.CPU() // of the run that cleaned
		}
	}()
	fail := func(err error) error {
		return fmt.Errorf("%s: %w%s", name, err, b.Process().LogTail())
	}

	w := workloadConfig{topic: cleanerTopic, partitions: 1, replication: 1, records: cfg.records(), valueSize: cfg.valueSize, maxInflight: cfg.maxInflight}
	phase("creating topic " + w.topic)
	// min.cleanable.dirty.ratio 0: a log is due while anything is dirty, so that an
	// offset map too small for the keys cleans on until the log is clean (with
	// Kafka's 0.5 it would stop once half the log is clean).
	compact, seg, ratio := "compact", strconv.FormatInt(int64(cfg.segment), 10), "0"
	if err := createTopicWith(ctx, []string{b.Addr}, w, map[string]*string{"cleanup.policy": &compact, "segment.bytes": &seg, "min.cleanable.dirty.ratio": &ratio}); err != nil {
		return res, fail(fmt.Errorf("creating topic: %w", err))
	}
	if res.produce, err = produceKeyed(ctx, []string{b.Addr}, w, cfg.keys, pool, phase); err != nil {
		return res, fail(fmt.Errorf("produce: %w", err))
	}
	partDir := filepath.Join(b.Dir, cleanerTopic+"-0")
	if res.logBefore, res.sealedBefore, _, err = logSize(partDir); err != nil {
		return res, fail(err)
	}

	phase("restarting the broker with its cleaner on")
	if err := b.Stop(childStopGrace); err != nil {
		return res, fail(fmt.Errorf("stopping to turn the cleaner on: %w", err))
	}
	b.AddFlags("--log-cleaner-enable=true")
	restarted := time.Now()
	if err := b.Start(ctx); err != nil {
		return res, fail(fmt.Errorf("restart: %w", err))
	}
	if m, err := b.Process().Memory(); err == nil {
		res.rssAtStart = m.HWM
	}
	var last map[string]float64
	err = harness.WaitFor(ctx, 200*time.Millisecond, []*harness.Process{b.Process()}, func() error {
		phase(fmt.Sprintf("cleaning %.0f MiB (%s)", float64(res.sealedBefore)/(1<<20), time.Since(restarted).Round(time.Second)))
		m, err := scrapeMetrics(ctx, b.HTTP)
		if err != nil {
			return err
		}
		last = m
		if time.Since(restarted) > cfg.wait {
			return fmt.Errorf("not clean after --cleaner-wait %s: %v MiB dirty", cfg.wait, m["sediment_log_cleaner_dirty_bytes"]/(1<<20))
		}
		if m[`sediment_log_cleaner_cleans_total{result="ok"}`] < 1 || m["sediment_log_cleaner_dirty_bytes"] > 0 || m["sediment_log_cleaner_partitions_dirty"] > 0 {
			return fmt.Errorf("%.0f MiB dirty", m["sediment_log_cleaner_dirty_bytes"]/(1<<20))
		}
		return nil
	}, func(lastErr error) error {
		return fmt.Errorf("waiting for the cleaner: %w (last: %v)", ctx.Err(), lastErr)
	})
	if err != nil {
		return res, fail(err)
	}
	res.untilClean = time.Since(restarted)
	res.cleaned = int64(last["sediment_log_cleaner_read_bytes_total"])
	res.written = int64(last["sediment_log_cleaner_written_bytes_total"])
	res.cleans = last[`sediment_log_cleaner_cleans_total{result="ok"}`]
	res.cleanTime = time.Duration(last["sediment_log_cleaner_clean_seconds_total"] * float64(time.Second))
	res.bufferUtilization = last["sediment_log_cleaner_buffer_utilization"]
	if m, err := b.Process().Memory(); err == nil {
		res.peakRSS = m.HWM
	}
	if res.logAfter, _, res.segsAft, err = logSize(partDir); err != nil {
		return res, fail(err)
	}
	if errs := last[`sediment_log_cleaner_cleans_total{result="error"}`]; errs > 0 {
		return res, fail(fmt.Errorf("%v cleans failed", errs))
	}
	return res, nil
}

// produceKeyed produces w.records records of w.valueSize random bytes (the
// workload's values) with keys drawn at random from keys, acks=all, no
// compression, at most w.maxInflight outstanding.
func produceKeyed(ctx context.Context, seeds []string, w workloadConfig, keys int, pool *valuePool, phase func(string)) (phaseResult, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(w.topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(w.maxInflight))
	if err != nil {
		return phaseResult{}, err
	}
	defer closeClient(cl)
	rng := rand.New(rand.NewPCG(1, 2)) // the same keys every run
	var (
		acked    atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	stop := reportEvery(5*time.Second, func() { phase(fmt.Sprintf("producing keyed records: %d/%d acknowledged", acked.Load(), w.records)) })
	defer stop()
	start := time.Now()
	for i := range w.records {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		r := &kgo.Record{Key: fmt.Appendf(nil, "key-%010d", rng.IntN(keys)), Value: pool.value(i)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("record %d: %w", i, err) })
			}
			acked.Add(1)
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return phaseResult{}, firstErr
	}
	return phaseResult{records: w.records, bytes: int64(w.records) * int64(w.valueSize), elapsed: time.Since(start)}, nil
}

// logSize sums the segment files of a partition directory: all of them, the
// sealed ones (every one but the newest), and how many there are.
func logSize(dir string) (all, sealed int64, n int, err error) {
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		return 0, 0, 0, fmt.Errorf("no segment in %s (%v)", dir, err)
	}
	for i, l := range logs { // %020d names: sorted by base offset
		st, err := os.Stat(l)
		if err != nil {
			return 0, 0, 0, err
		}
		all += st.Size()
		if i < len(logs)-1 {
			sealed += st.Size()
		}
	}
	return all, sealed, len(logs), nil
}

// printCleanerHeader says what the cleaner phase runs.
func printCleanerHeader(out io.Writer, cfg cleanerConfig) {
	fmt.Fprintf(out, "%s: one broker, one partition with cleanup.policy=compact and segment.bytes %s: %d records x %d B (%.1f MiB) over %d keys produced with the cleaner off, then cleaned after a restart with it on (offset map %s)\n",
		cleanerTargetName, &cfg.segment, cfg.records(), cfg.valueSize, float64(cfg.bytes)/(1<<20), cfg.keys, &cfg.dedupe)
}

// printCleanerResults prints one run's figures, or the medians of runs.
func printCleanerResults(out io.Writer, title string, r cleanerResult, runs []cleanerResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", cleanerTargetName, title)
	fmt.Fprintf(out, "cleaned %.1f MiB of sealed segments (log %.1f MiB) into %.1f MiB in %d segment(s), %.0f clean(s), %.1fs of cleaning: %.1f MiB/s; read %.1f MiB (offset map pass and rewrite), wrote %.1f MiB; offset map use %.1f%%\n",
		float64(r.sealedBefore)/(1<<20), float64(r.logBefore)/(1<<20), float64(r.logAfter)/(1<<20), r.segsAft, r.cleans, r.cleanTime.Seconds(), r.mibPerSec(),
		float64(r.cleaned)/(1<<20), float64(r.written)/(1<<20), 100*r.bufferUtilization)
	fmt.Fprintf(out, "peak RSS of the broker while cleaning: %d MiB (%d MiB when it had started); clean %.1fs after the restart; produce before: %.1f MiB/s; broker cpu while cleaning %.1fs\n",
		r.peakRSS>>20, r.rssAtStart>>20, r.untilClean.Seconds(), r.produce.mibPerSec(), r.brokerCPU.Seconds())
	if len(runs) > 1 {
		fmt.Fprint(out, "per run (MiB/s, peak RSS MiB):")
		for _, run := range runs {
			fmt.Fprintf(out, " %.1f/%d", run.mibPerSec(), run.peakRSS>>20)
		}
		fmt.Fprintln(out)
	}
}

// cleanerMedians is the median of every figure over runs.
func cleanerMedians(rs []cleanerResult) cleanerResult {
	med := func(f func(cleanerResult) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		return medianSorted(vs)
	}
	d := func(f func(cleanerResult) time.Duration) time.Duration {
		return time.Duration(med(func(r cleanerResult) float64 { return float64(f(r)) }))
	}
	return cleanerResult{
		produce:           phaseResult{records: rs[0].produce.records, bytes: rs[0].produce.bytes, elapsed: d(func(r cleanerResult) time.Duration { return r.produce.elapsed })},
		logBefore:         int64(med(func(r cleanerResult) float64 { return float64(r.logBefore) })),
		logAfter:          int64(med(func(r cleanerResult) float64 { return float64(r.logAfter) })),
		sealedBefore:      int64(med(func(r cleanerResult) float64 { return float64(r.sealedBefore) })),
		cleaned:           int64(med(func(r cleanerResult) float64 { return float64(r.cleaned) })),
		written:           int64(med(func(r cleanerResult) float64 { return float64(r.written) })),
		cleans:            med(func(r cleanerResult) float64 { return r.cleans }),
		cleanTime:         d(func(r cleanerResult) time.Duration { return r.cleanTime }),
		untilClean:        d(func(r cleanerResult) time.Duration { return r.untilClean }),
		peakRSS:           uint64(med(func(r cleanerResult) float64 { return float64(r.peakRSS) })),
		rssAtStart:        uint64(med(func(r cleanerResult) float64 { return float64(r.rssAtStart) })),
		bufferUtilization: med(func(r cleanerResult) float64 { return r.bufferUtilization }),
		brokerCPU:         d(func(r cleanerResult) time.Duration { return r.brokerCPU }),
		segsAft:           int(med(func(r cleanerResult) float64 { return float64(r.segsAft) })),
	}
}
