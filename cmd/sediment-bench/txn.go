package main

// The transactions phase (txn): what transactions cost on one broker
// (issue 11). BENCH.md describes the method; in short, each run starts one
// broker like the sediment target's, then:
//
//  1. throughput (txn_produce.go): --txn-records records produced with the
//     workload's idempotent producer to one 16-partition topic, then the
//     same records produced to another in transactions of --txn-size
//     records by --txn-producers transactional producers in parallel (by
//     default as many as keep the workload's --max-inflight records
//     outstanding: one open transaction each); both topics are read back
//     and every record verified (txn_verify.go), the second with
//     read_committed, and the ratio of the two rates is the figure.
//  2. latency (txn_latency.go): one transactional producer commits a small
//     transaction --txn-latency-rate times a second for --txn-latency-time
//     while a read_committed consumer notes when it has seen each one
//     whole; the figure is the time from EndTransaction to then.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

const (
	txnTargetName   = "txn"
	txnIdemTopic    = "sediment-bench-idempotent"
	txnTopic        = "sediment-bench-txn"
	txnLatencyTopic = "sediment-bench-txn-latency"
	// txnRatioTarget is the project's goal: transactional produce at least
	// 0.7x idempotent produce in the same run.
	txnRatioTarget = 0.7
	// txnLatencyRecords are the records of each small transaction of the
	// latency measurement.
	txnLatencyRecords = 10
	// txnLatencyWarmup transactions start the latency measurement untimed
	// (coordinator lookup, InitProducerId, the consumer's first fetches).
	txnLatencyWarmup = 5
)

// txnFlags are the phase's part of the bench flags.
type txnFlags struct {
	records     int
	size        int
	producers   int // 0: --max-inflight / size
	latencyRate float64
	latencyTime time.Duration
	backoff     time.Duration // 0: kgo's ConcurrentTransactionsBackoff (20ms)
}

// addTxnFlags registers the phase's flags on fs.
func addTxnFlags(fs *flag.FlagSet, t *txnFlags) {
	fs.IntVar(&t.records, "txn-records", 1_000_000, "txn: `N` records produced idempotently, then in transactions, each read back and verified")
	fs.IntVar(&t.size, "txn-size", 100, "txn: records per transaction of the throughput measurement (the issue's figure is 100)")
	fs.IntVar(&t.producers, "txn-producers", 0, "txn: transactional producers in parallel, each with a transactional id of its own and one transaction open at a time (default: --max-inflight / --txn-size, so that as many records are outstanding as the idempotent producer may have)")
	fs.Float64Var(&t.latencyRate, "txn-latency-rate", 20, "txn: small transactions (10 records) committed per second while commit-to-visibility latency is measured")
	fs.DurationVar(&t.backoff, "txn-backoff", 0, "txn: for experiments: the transactional producers' kgo ConcurrentTransactionsBackoff, how long they wait before retrying an AddPartitionsToTxn refused with CONCURRENT_TRANSACTIONS (the previous transaction still completing); 0 keeps kgo's default, 20ms, which the reference figures use")
	fs.DurationVar(&t.latencyTime, "txn-latency-time", 10*time.Second, "txn: how long the latency measurement commits")
}

func (t *txnFlags) validate(partitions int) error {
	switch {
	case t.size < 1:
		return fmt.Errorf("--txn-size %d: want at least 1", t.size)
	case t.records < t.size || t.records < partitions:
		return fmt.Errorf("--txn-records %d: want at least --txn-size and --partitions", t.records)
	case t.backoff < 0:
		return fmt.Errorf("--txn-backoff %s: want 0 (kgo's default) or more", t.backoff)
	case t.producers < 0:
		return fmt.Errorf("--txn-producers %d: want 0 (the default) or more", t.producers)
	case t.latencyRate <= 0 || t.latencyRate > 1000:
		return fmt.Errorf("--txn-latency-rate %v: want more than 0 and at most 1000 per second", t.latencyRate)
	case t.latencyTime <= 0 || float64(t.latencyTime)*t.latencyRate < float64(time.Second):
		return fmt.Errorf("--txn-latency-time %s: want at least one transaction at --txn-latency-rate", t.latencyTime)
	}
	return nil
}

// txnProducers is the number of transactional producers: the flag, or as
// many transactions of size as make maxInflight records, at least 1.
func txnProducers(flagged, maxInflight, size int) int {
	if flagged > 0 {
		return flagged
	}
	return max(maxInflight/size, 1)
}

// txnConfig is what the phase runs with.
type txnConfig struct {
	txnFlags
	sedimentBin string
	partitions  int
	maxInflight int
	serveFlags  []string // --sediment-flag
}

// txnResult is one run of the phase.
type txnResult struct {
	producers int
	idem      produced    // the idempotent produce
	idemRead  phaseResult // its verifying read
	txn       txnProduced // the transactional produce
	txnRead   phaseResult // its verifying read (read_committed)
	latency   txnLatency
	// The broker's CPU time over each part, and over the whole phase.
	idemCPU, txnCPU, latencyCPU, brokerCPU time.Duration
	// The broker's time answering the requests of the transactional produce.
	txnAPIs []apiTime
	// The bench's own CPU time over each produce.
	idemClientCPU, txnClientCPU time.Duration
	brokerRSS                   uint64
	load                        string // /proc/loadavg at the end of the phase
}

// txnAPIs are the requests whose times in the broker the transactional
// produce line shows.
var txnAPIs = []string{"FindCoordinator", "InitProducerID", "AddPartitionsToTxn", "Produce", "EndTxn", "WriteTxnMarkers"}

// ratio is the phase's figure: transactional over idempotent produce.
func (r txnResult) ratio() float64 { return r.txn.produce.mibPerSec() / r.idem.produce.mibPerSec() }

// runTxn runs one transactions phase in dir (removed by the caller).
func runTxn(ctx context.Context, cfg txnConfig, dir string, pool *valuePool, p *progress) (res txnResult, err error) {
	name := txnTargetName
	phase := func(s string) { p.set(name, s) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	phase("starting the broker")
	in, httpAddr, err := startSingleBroker(ctx, cfg.sedimentBin, dir, cfg.partitions, cfg.serveFlags, nil)
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping the broker")
		if stopErr := in.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
		res.brokerCPU = in.cpuTime()
		res.load = loadAverage()
	}()
	broker := in.procs[0]
	fail := func(err error) error {
		return fmt.Errorf("%s: %w%s%s", name, err, in.exitNote(), broker.LogTail())
	}
	res.producers = txnProducers(cfg.producers, cfg.maxInflight, cfg.size)
	w := workloadConfig{topic: txnIdemTopic, partitions: cfg.partitions, replication: 1, records: cfg.records, valueSize: pool.size, maxInflight: cfg.maxInflight}

	// 1. Idempotent produce, the reference.
	phase(fmt.Sprintf("idempotent: creating topic %s", w.topic))
	if err := createTopic(ctx, in.bootstrap, w); err != nil {
		return res, fail(fmt.Errorf("creating topic: %w", err))
	}
	cpu0, self0 := broker.CPU(), selfCPU()
	res.idem, err = produceChecked(ctx, in.bootstrap, w, pool, func(s string) { phase("idempotent: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("idempotent: %w", err))
	}
	res.idemCPU, res.idemClientCPU = broker.CPU()-cpu0, selfCPU()-self0
	phase(fmt.Sprintf("idempotent: %.1f MiB/s; reading %d records back", res.idem.produce.mibPerSec(), w.records))
	res.idemRead, err = consume(ctx, in.bootstrap, w, pool, res.idem.ends, func(s string) { phase("idempotent: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("idempotent: reading back: %w", err))
	}

	// 2. The same records in transactions.
	w.topic = txnTopic
	phase(fmt.Sprintf("transactional: creating topic %s", w.topic))
	if err := createTopic(ctx, in.bootstrap, w); err != nil {
		return res, fail(fmt.Errorf("creating topic: %w", err))
	}
	before, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	cpu0, self0 = broker.CPU(), selfCPU()
	phase(fmt.Sprintf("transactional: producing %d records in transactions of %d, %d producers", w.records, cfg.size, res.producers))
	res.txn, err = produceTransactional(ctx, in.bootstrap, w, cfg.size, res.producers, cfg.backoff, pool, func(s string) { phase("transactional: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("transactional: %w", err))
	}
	res.txnCPU, res.txnClientCPU = broker.CPU()-cpu0, selfCPU()-self0
	after, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	res.txnAPIs = apiTimes(before, after, txnAPIs)
	phase(fmt.Sprintf("transactional: %.1f MiB/s; checking end offsets", res.txn.produce.mibPerSec()))
	if err := checkTxnEnds(ctx, in.bootstrap, w, res.txn); err != nil {
		return res, fail(fmt.Errorf("transactional: after produce: %w", err))
	}
	phase(fmt.Sprintf("transactional: reading %d records back (read_committed)", w.records))
	res.txnRead, err = consumeCommitted(ctx, in.bootstrap, w, pool, res.txn.perPartition, func(s string) { phase("transactional: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("transactional: reading back: %w", err))
	}

	// 3. Commit to visibility.
	lw := workloadConfig{topic: txnLatencyTopic, partitions: cfg.partitions, replication: 1, valueSize: pool.size}
	phase(fmt.Sprintf("latency: creating topic %s", lw.topic))
	if err := createTopic(ctx, in.bootstrap, lw); err != nil {
		return res, fail(fmt.Errorf("creating topic: %w", err))
	}
	cpu0 = broker.CPU()
	res.latency, err = measureTxnLatency(ctx, in.bootstrap, lw, cfg.latencyRate, cfg.latencyTime, pool, func(s string) { phase("latency: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("latency: %w", err))
	}
	res.latencyCPU = broker.CPU() - cpu0

	if err := in.alive(); err != nil {
		return res, fail(err)
	}
	if res.brokerRSS, _, err = in.peakRSS(); err != nil {
		return res, fail(err)
	}
	return res, nil
}

// loadAverage is the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return loadFields(string(b))
}
