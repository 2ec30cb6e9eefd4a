// Command sediment-bench is the project's benchmark (`make bench`). It
// starts every target as a child process, drives each with the same
// franz-go workload from this process, one target after the other, and
// prints one table per run plus the medians. BENCH.md at the repository
// root describes the method.
//
//	sediment-bench --sediment-bin bin/sediment [flags]
//	sediment-bench --help
//
// The children are started and measured by it/harness: Sediment brokers
// (`<--sediment-bin> serve ...`), a MinIO server, and kfake, which is this
// binary again in its hidden --kfake-serve mode, so that kfake runs in a
// process of its own and is linked into the benchmark, never into the
// broker.
//
// Layout:
//
//	main.go          flags and their validation
//	run.go           orchestration: targets, runs, progress, errors
//	report.go        the results tables, ratios and medians
//	target.go        the benchTarget interface, the sediment target
//	cluster.go       the 3-broker replicated Sediment cluster (sediment-3)
//	kfake.go         the kfake target and its child mode
//	failover.go      the failover phase on a fresh 3-broker cluster
//	workload.go      the workload every target runs (produce, verify, consume)
//	raw.go           the physical-limit baselines run before the sediment
//	                 target (--raw): a raw durable writer with perfect group
//	                 commit and a loopback sendfile reader; raw_report.go
//	                 their lines and sediment's ratios to them (raw_linux.go,
//	                 raw_other.go: fdatasync)
//	tier.go          the tiered-storage phase (sediment-tier): produce with
//	                 tiering on and off, catch-up read from MinIO vs local read
//	tier_broker.go   its brokers, produce, seal-and-wait and metrics
//	tier_s3.go       its raw S3 client: the bucket's objects, ranged GETs
//	tier_report.go   its header, results and medians
//	groups.go        the consumer-group phase (groups): rebalance time,
//	                 offset commit throughput, group vs plain consumption
//	groups_rebalance.go, groups_commit.go, groups_consume.go
//	                 its three measurements; groups_report.go its output
//	cleaner.go       the log cleaner phase (cleaner): MiB/s of a compacted
//	                 log cleaned and the broker's peak RSS meanwhile
//	txn.go           the transactions phase (txn): transactional produce
//	                 against idempotent, and commit to read_committed
//	                 visibility; txn_produce.go, txn_verify.go and
//	                 txn_latency.go its parts, txn_report.go its output
//	security.go      the security phase (security): produce and consume over
//	                 SASL_SSL against PLAINTEXT, and TLS + SCRAM handshakes
//	                 per second; security_handshake.go, security_certs.go
//	                 its parts, security_report.go its output
//	latency.go       the latency phase (latency): end-to-end and produce
//	                 latency at half the maximum produce rate, sediment
//	                 against klite; latency_rate.go the fixed-rate run,
//	                 latency_klite.go klite (also the klite target of
//	                 --only klite), latency_hist.go its histogram,
//	                 latency_report.go its output, latency_sched_linux.go
//	                 the time waited for a CPU (latency_sched_other.go)
//	scale.go         the partition scale phase (scale): idle RSS, fds,
//	                 throughput and per-request latency by partition count;
//	                 scale_probe.go its timed requests, scale_report.go
//	                 its output
//	image.go         the image phase (image): the container image's start
//	                 to ready, and sedimenttc.Run's time
//	bytesize.go      the byteSize flag value
//	machine_linux.go machine facts and this process's CPU time (elsewhere:
//	                 machine_other.go)
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := benchMain(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sediment-bench: %v\n", err)
		os.Exit(1)
	}
}

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
	raw         bool // the physical-limit baselines before the sediment target (raw.go)
	quick       bool // every phase at a small size (applyQuick)

	profileDir     string // --profile: the sediment target's pprof profiles (profile.go)
	profileSeconds int

	// The tiered-storage phase (tier.go).
	minioBin        string
	tierBytes       byteSize
	tierSegment     byteSize
	tierWait        time.Duration
	tierRawChunk    byteSize
	tierRawParallel int

	groups   groupsFlags   // the consumer-group phase (groups.go)
	cleaner  cleanerFlags  // the log cleaner phase (cleaner.go)
	image    imageFlags    // the image start phase (image.go)
	txn      txnFlags      // the transactions phase (txn.go)
	security securityFlags // the security phase (security.go)
	scale    scaleFlags    // the partition scale phase (scale.go)
	latency  latencyFlags  // the latency phase (latency.go)

	kfakeServe string // internal: run the kfake child instead of the bench
}

const benchUsage = `Usage: sediment-bench [flags]

Runs one franz-go workload against each target, one after the other, and
prints throughput, produce latency, peak RSS and CPU time of each, the ratios
sediment/kfake and sediment-3/sediment and, with --repeat, the medians.
Targets, each started as child processes (Sediment brokers from
--sediment-bin, kfake from this binary):

  sediment    one Sediment broker (embedded etcd), replication factor 1
  kfake       franz-go's in-memory fake cluster, one broker
  klite       klite, a Kafka-compatible Go broker with a group-committed WAL
              (--klite-bin; only when --only names it)
  sediment-3  three Sediment brokers forming one cluster (an etcd quorum of
              three), the topic replicated 3 times, min.insync.replicas 2
  sediment-tier
              tiered storage: --tier-bytes produced to one broker without
              tiering and to one tiering to a MinIO server (--minio-bin),
              then read back from offset 0 once it is all in MinIO only,
              against the same read from the tier-off broker's local disk
              (and ranged GETs of the same objects straight from MinIO)
  groups      consumer groups on one broker: rebalance time when a third
              member joins (classic and KIP-848), offset commits per
              second, and group against plain consumption of the same data
  cleaner     log compaction on one broker: --cleaner-bytes of keyed records
              produced to a compacted topic with the cleaner off, then
              cleaned after a restart with it on: MiB/s cleaned and the
              broker's peak RSS (bounded by the offset map's size)
  txn         transactions on one broker: --txn-records produced
              idempotently, then in transactions of 100 records by
              parallel transactional producers (the ratio of the two), each
              read back and verified; then small transactions committed at
              a fixed rate, timed from the commit to a read_committed
              consumer seeing them
  security    TLS and SASL on one broker: --security-records produced and
              read back over PLAINTEXT, then over SASL_SSL with
              SCRAM-SHA-512 (the ratios of the two), then connections with a
              full TLS handshake and a SCRAM exchange per second
  latency     end-to-end and produce latency on one broker: its maximum
              produce rate measured, then half of it produced steadily for
              --latency-duration while a consumer reads; klite (--klite-bin)
              at the same rate for comparison
  scale       partitions: for each --scale-partitions count a fresh broker
              (and a 3-broker cluster with --scale-cluster-partitions)
              creates one topic of that many partitions: creation time,
              idle RSS per partition, open fds, then Produce, Fetch and
              Metadata latency of a 1-partition topic beside them, and
              produce throughput over all of them
  image       the container image (--image, from make image): --image-starts
              docker runs timed to /readyz and to ApiVersions, and as many
              sedimenttc.Run calls timed to their return (needs Docker)

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
	fs := flag.NewFlagSet("sediment-bench", flag.ContinueOnError)
	fs.StringVar(&f.sedimentBin, "sediment-bin", "", "`PATH` of the sediment binary to benchmark, run as PATH serve ... (default: sediment next to this binary)")
	fs.StringVar(&f.only, "only", "all", "targets to run: a comma-separated list of sediment, kfake, sediment-3, sediment-tier, groups, cleaner, txn, security, latency, scale and image, or all (both: sediment,kfake); klite (after kfake, with --klite-bin) runs only when named; they run in the order sediment, kfake, sediment-3, (failover), sediment-tier, groups, cleaner, txn, security, latency, scale, image")
	fs.IntVar(&f.records, "records", 1000000, "`N` records produced and consumed per target and run; the default makes each produce phase take ~10 s on 2 cores (kfake then peaks near 2.5 GiB RSS)")
	fs.IntVar(&f.valueSize, "value-size", 1024, "bytes per record value (at least 16); values are random, so incompressible")
	fs.IntVar(&f.partitions, "partitions", 16, "partitions of the benchmark topic (also the broker's --num-partitions)")
	fs.IntVar(&f.maxInflight, "max-inflight", 10000, "most records produced but not yet acknowledged (also kgo's MaxBufferedRecords)")
	fs.IntVar(&f.repeat, "repeat", 1, "runs; each run starts fresh target processes, and the medians of all runs are printed")
	fs.DurationVar(&f.timeout, "timeout", 20*time.Minute, "fail the bench if it has not finished after this long per run (--repeat N allows N times as long)")
	fs.StringVar(&f.workDir, "work-dir", "", "parent `DIR` of the temporary directory holding the broker's data and the children's logs (default: $TMPDIR or /tmp); fsync costs depend on its file system")
	fs.BoolVar(&f.failover, "failover", true, "after the targets of each run, measure a leader failover on a fresh 3-broker cluster (only when sediment-3 runs; --failover=false skips it)")
	fs.DurationVar(&f.failoverMax, "failover-timeout", time.Minute, "fail the failover phase when no record produced after the kill is acknowledged within this long")
	fs.BoolVar(&f.raw, "raw", true, "with the sediment target, first measure its physical limits on the same file system: a raw durable writer (the workload's bytes appended to --partitions files, one fdatasync per dirty file per 2ms window) and a loopback reader (the same files sent with sendfile over 127.0.0.1), and print sediment's ratios to them (--raw=false skips them)")
	fs.BoolVar(&f.quick, "quick", false, "every phase at a small size, for checking that the bench works (seconds per phase, not figures to quote): --records 20000, --tier-bytes 16MiB, --tier-segment-bytes 1MiB, --groups-bytes 16MiB, --groups-joins 1, --groups-commit-time 1s, --cleaner-bytes 8MiB, --cleaner-segment-bytes 1MiB, --cleaner-keys 1000, --txn-records 20000, --txn-latency-time 1s, --security-records 20000, --security-handshake-time 1s, --image-starts 1, --latency-duration 2s, --latency-max-records 20000, --scale-partitions 1,16,1000, --scale-cluster-partitions 0, --scale-records 5000, --scale-requests 200, --scale-settle 500ms; flags given explicitly win")
	fs.StringVar(&f.profileDir, "profile", "", profileFlagHelp)
	fs.IntVar(&f.profileSeconds, "profile-seconds", 5, profileSecondsHelp)
	fs.StringVar(&f.minioBin, "minio-bin", "", "`PATH` of the MinIO server sediment-tier runs (default: minio next to --sediment-bin, else ./bin/minio; `make minio` builds it)")
	f.tierBytes = 2 << 30
	fs.Var(&f.tierBytes, "tier-bytes", "sediment-tier: `SIZE` of the record values produced with tiering off, then on, and read back from the tier (bytes, or with a KiB, MiB or GiB suffix); records = SIZE / --value-size")
	f.tierSegment = 32 << 20
	fs.Var(&f.tierSegment, "tier-segment-bytes", "sediment-tier: segment.bytes of its topic, tiering on and off alike (`SIZE` as for --tier-bytes): small enough that segments are sealed, and uploaded, during the produce")
	fs.DurationVar(&f.tierWait, "tier-wait", 3*time.Minute, "sediment-tier: fail if the records are not all tiered, and gone from local disk, this long after the produce")
	f.tierRawChunk = byteSize(readerDefaults().ChunkSize)
	fs.Var(&f.tierRawChunk, "tier-raw-chunk", "sediment-tier: `SIZE` of each ranged GET of the raw baseline, for experiments; the default is the broker's remote reader chunk size")
	fs.IntVar(&f.tierRawParallel, "tier-raw-parallel", readerDefaults().MaxParallel, "sediment-tier: ranged GETs in flight in the raw baseline, for experiments; the default is the most the broker's remote reader runs")
	addGroupsFlags(fs, &f.groups)
	addCleanerFlags(fs, &f.cleaner)
	addImageFlags(fs, &f.image)
	addTxnFlags(fs, &f.txn)
	addSecurityFlags(fs, &f.security)
	addScaleFlags(fs, &f.scale)
	addLatencyFlags(fs, &f.latency)
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary directory (data and child logs) instead of removing it")
	fs.Func("sediment-flag", "`FLAG` added to the serve command line of every Sediment broker (sediment, sediment-3, failover), e.g. --sediment-flag=--flush-policy=os; repeatable; for experiments only: the reference figures use none", func(v string) error {
		if !strings.HasPrefix(v, "-") {
			return fmt.Errorf("%q is not a flag", v)
		}
		f.serveFlags = append(f.serveFlags, v)
		return nil
	})
	fs.StringVar(&f.kfakeServe, "kfake-serve", "", "internal: run one kfake broker on 127.0.0.1:PORT until SIGTERM (how the bench starts its kfake child: this binary again)")
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

// benchTargetNames are the targets --only chooses from, in the order they run.
var benchTargetNames = []string{"sediment", "kfake", "sediment-3", tierTargetName, groupsTargetName, cleanerTargetName, txnTargetName, securityTargetName, latencyTargetName, scaleTargetName, imageTargetName}

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
		case kliteTargetName: // never in all: make bench cannot fetch klite
			only[name] = true
		default:
			if !slices.Contains(benchTargetNames, name) {
				return nil, fmt.Errorf("--only %q: unknown target %q; want a comma-separated list of %s, %s, or all", v, name, strings.Join(benchTargetNames, ", "), kliteTargetName)
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
	if err := validProfileSeconds(f.profileSeconds); err != nil {
		return err
	}
	if err := f.cleaner.validate(f.valueSize); err != nil {
		return err
	}
	if err := f.image.validate(); err != nil {
		return err
	}
	if err := f.txn.validate(f.partitions); err != nil {
		return err
	}
	if err := f.security.validate(f.partitions); err != nil {
		return err
	}
	if err := f.latency.validate(f.partitions); err != nil {
		return err
	}
	if err := f.scale.validate(); err != nil {
		return err
	}
	return f.groups.validate(f.valueSize, f.partitions)
}

// applyQuick sets the small sizes --quick promises on every flag of fs that
// the command line did not set.
func applyQuick(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, kv := range [][2]string{
		{"records", "20000"},
		{"tier-bytes", "16MiB"}, {"tier-segment-bytes", "1MiB"},
		{"groups-bytes", "16MiB"}, {"groups-joins", "1"}, {"groups-commit-time", "1s"},
		{"cleaner-bytes", "8MiB"}, {"cleaner-segment-bytes", "1MiB"}, {"cleaner-keys", "1000"},
		{"txn-records", "20000"}, {"txn-latency-time", "1s"},
		{"security-records", "20000"}, {"security-handshake-time", "1s"},
		{"image-starts", "1"},
		{"scale-partitions", "1,16,1000"}, {"scale-cluster-partitions", "0"}, {"scale-records", "5000"}, {"scale-requests", "200"}, {"scale-settle", "500ms"},
		{"latency-duration", "2s"}, {"latency-max-records", "20000"},
	} {
		if set[kv[0]] {
			continue
		}
		if err := fs.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("--quick: --%s %s: %w", kv[0], kv[1], err)
		}
	}
	return nil
}
