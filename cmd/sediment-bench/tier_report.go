package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sedimentio/sediment/tier"
)

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// minioVersion is what `make minio` recorded next to the binary (the
// module version it built), else the first line of `minio --version`.
func minioVersion(bin string) string {
	if filepath.Base(bin) == "minio" {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "minio.version")); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// defaultMinIOBin is bin/minio next to the sediment binary (where `make
// minio` installs it beside bin/sediment), else ./bin/minio.
func defaultMinIOBin(sedimentBin string) string {
	next := filepath.Join(filepath.Dir(sedimentBin), "minio")
	if _, err := os.Stat(next); err == nil {
		return next
	}
	abs, err := filepath.Abs(filepath.Join("bin", "minio"))
	if err != nil {
		return filepath.Join("bin", "minio")
	}
	return abs
}

func printTierHeader(out io.Writer, cfg tierConfig, records, valueSize int) {
	fmt.Fprintf(out, "%s: %d records x %d B (%.1f MiB) produced to one broker without tiering and one tiering to MinIO %s (local.retention.bytes 0), segment.bytes %s, --log-retention-check-interval %s and --tier-upload-interval %s on both; then read back from offset 0 once all of it is in MinIO only\n",
		tierTargetName, records, valueSize, float64(records)*float64(valueSize)/(1<<20), minioVersion(cfg.minioBin),
		(*byteSize)(&cfg.segmentBytes), tierRetentionCheck, tierUploadInterval)
	rd := readerDefaults()
	fmt.Fprintf(out, "%s raw baseline: aws-sdk-go-v2 ranged GETs of %s, %d in flight, of the topic's .log objects (the broker's remote reader: %s chunks, at most %d GETs in flight, read-ahead %d chunks)\n",
		tierTargetName, (*byteSize)(&cfg.rawChunk), cfg.rawParallel, (*byteSize)(&rd.ChunkSize), rd.MaxParallel, rd.ReadAhead)
}

// readerDefaults is the remote reader configuration the broker runs with
// (broker.New uses tier.DefaultReaderConfig; serve has no flag for it).
func readerDefaults() tier.ReaderConfig { return tier.DefaultReaderConfig("unused") }

const tierFormat = "%-10s %13s %14s %8s %8s %13s %14s %13s %6s\n"

// printTierResults prints one run's figures, or the medians of runs (then
// the ratios of the medians, followed by each run's own ratio: a run's two
// figures were taken a minute apart, on a machine whose load may change
// more between runs).
func printTierResults(out io.Writer, title string, r tierResult, runs []tierResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", tierTargetName, title)
	fmt.Fprintf(out, tierFormat, "tier", "produce MiB/s", "produce rec/s", "p50 ms", "p99 ms", "read MiB/s", "read rec/s", "peak RSS MiB", "cpu s")
	f1 := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	f0 := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	fmt.Fprintf(out, tierFormat, "off", f1(r.off.mibPerSec()), f0(r.off.recPerSec()), f1(ms(r.offP50)), f1(ms(r.offP99)),
		f1(r.local.mibPerSec()), f0(r.local.recPerSec()), f1(float64(r.offRSS)/(1<<20)), f1(r.offCPU.Seconds()))
	fmt.Fprintf(out, tierFormat, "on", f1(r.on.mibPerSec()), f0(r.on.recPerSec()), f1(ms(r.onP50)), f1(ms(r.onP99)),
		f1(r.catchUp.mibPerSec()), f0(r.catchUp.recPerSec()), f1(float64(r.onRSS)/(1<<20)), f1(r.onCPU.Seconds()))
	fmt.Fprintf(out, tierFormat, "raw GETs", "-", "-", "-", "-", f1(r.raw.mibPerSec()), "-", "-", "-")
	fmt.Fprintf(out, tierFormat, "minio", "-", "-", "-", "-", "-", "-", f1(float64(r.minioRSS)/(1<<20)), f1(r.minioCPU.Seconds()))
	fmt.Fprintf(out, "tier: %d .log objects (%d of them zstd frames), %.1f MiB stored, %.1f MiB of record batches; all tiered and no local data %.1fs after the produce\n",
		r.objects, r.compressed, mib(r.catchUp.bytes), mib(r.batchBytes), r.tiered.Seconds())
	timeouts := ""
	if r.remoteTimeouts >= 0 {
		timeouts = fmt.Sprintf(", %.0f partition reads timed out (remote fetch max wait)", r.remoteTimeouts)
	}
	fmt.Fprintf(out, "catch-up: %.1fs, %.1f MiB/s of batches (%.1f MiB of values, every record verified); the broker's remote reads: %.1f MiB in %.0f requests (%.2f MiB each), chunk cache %.0f hits / %.0f misses%s\n",
		r.catchUp.elapsed.Seconds(), mib(r.batchBytes)/r.catchUp.elapsed.Seconds(), mib(r.catchUpValues), r.tierGetBytes/(1<<20), r.tierGets,
		r.tierGetBytes/(1<<20)/max(r.tierGets, 1), r.cacheHits, r.cacheMisses, timeouts)
	fmt.Fprintf(out, "catch-up fetches: %.0f Fetch requests of %.1f MiB, %.1f ms each in the broker (%.1fs of the %.1fs)\n",
		r.fetches, mib(r.batchBytes)/max(r.fetches, 1), 1000*r.fetchSeconds/max(r.fetches, 1), r.fetchSeconds, r.catchUp.elapsed.Seconds())
	fmt.Fprintf(out, "cpu s during the produces: tier off: broker %.1f over %.1fs; tier on: broker %.1f, MinIO %.1f over %.1fs\n",
		r.offProduceCPU.Seconds(), r.off.elapsed.Seconds(), r.onProduceCPU.Seconds(), r.onProduceMinioCPU.Seconds(), r.on.elapsed.Seconds())
	fmt.Fprintf(out, "cpu s during the reads: local: broker %.1f, consumer %.1f over %.1fs; catch-up: broker %.1f, MinIO %.1f, consumer %.1f over %.1fs; raw: MinIO %.1f, client %.1f over %.1fs (%d GETs)\n",
		r.localBrokerCPU.Seconds(), r.localClientCPU.Seconds(), r.local.elapsed.Seconds(),
		r.catchUpBrokerCPU.Seconds(), r.catchUpMinioCPU.Seconds(), r.catchUpClientCPU.Seconds(), r.catchUp.elapsed.Seconds(),
		r.rawMinioCPU.Seconds(), r.rawClientCPU.Seconds(), r.raw.elapsed.Seconds(), r.raw.records)
	perRun := func(ratio func(tierResult) float64) string {
		if len(runs) == 0 {
			return ""
		}
		var b strings.Builder
		b.WriteString("; per run:")
		for _, run := range runs {
			fmt.Fprintf(&b, " %.2f", ratio(run))
		}
		return b.String()
	}
	// The catch-up's rate in batch bytes, as the local read's (.log files).
	catchUpBatches := func(r tierResult) float64 { return mib(r.batchBytes) / r.catchUp.elapsed.Seconds() }
	catchUpRatio := func(r tierResult) float64 { return catchUpBatches(r) / r.local.mibPerSec() }
	getRatio := func(r tierResult) float64 { return r.tierGetBytes / float64(r.catchUp.bytes) }
	rawRatio := func(r tierResult) float64 { return r.catchUp.mibPerSec() / r.raw.mibPerSec() }
	produceRatio := func(r tierResult) float64 { return r.on.mibPerSec() / r.off.mibPerSec() }
	cr := catchUpRatio(r)
	fmt.Fprintf(out, "catch-up from tier: %.1f MiB/s of batches; local read of the same data: %.1f MiB/s; ratio tier/local = %.2f (target >= %.1f: %s)%s\n",
		catchUpBatches(r), r.local.mibPerSec(), cr, tierCatchUpTarget, verdict(cr >= tierCatchUpTarget), perRun(catchUpRatio))
	gr := getRatio(r)
	fmt.Fprintf(out, "object bytes GET per byte needed: %.1f MiB GET for %.1f MiB of .log objects = %.2f (target <= %.1f: %s)%s\n",
		r.tierGetBytes/(1<<20), mib(r.catchUp.bytes), gr, tierGetTarget, verdict(gr <= tierGetTarget), perRun(getRatio))
	fmt.Fprintf(out, "information: catch-up %.1f MiB/s of objects; raw ranged GETs: %.1f MiB/s; ratio catch-up/raw = %.2f%s\n",
		r.catchUp.mibPerSec(), r.raw.mibPerSec(), rawRatio(r), perRun(rawRatio))
	// When the machine's cores are the limit, a read's rate goes as the
	// inverse of the CPU it costs (same bytes): the ratio of the two reads'
	// CPU is what tier/local can reach here, with MinIO on the same cores
	// and without it (as in a deployment, where it runs elsewhere).
	local := (r.localBrokerCPU + r.localClientCPU).Seconds()
	tierCPU := (r.catchUpBrokerCPU + r.catchUpClientCPU).Seconds()
	fmt.Fprintf(out, "information: cpu s of the reads: local %.1f (broker, consumer), catch-up %.1f (broker, consumer) + MinIO %.1f; where the cores are the limit, tier/local <= %.2f with MinIO on this machine, %.2f without\n",
		local, tierCPU, r.catchUpMinioCPU.Seconds(), local/(tierCPU+r.catchUpMinioCPU.Seconds()), local/tierCPU)
	pr := produceRatio(r)
	fmt.Fprintf(out, "produce tier on: %.1f MiB/s, off: %.1f MiB/s, ratio on/off = %.2f (target >= %.1f: %s)%s\n",
		r.on.mibPerSec(), r.off.mibPerSec(), pr, tierProduceTarget, verdict(pr >= tierProduceTarget), perRun(produceRatio))
}

// tierMedians takes each figure's median over the runs on its own, as
// medians does for the targets.
func tierMedians(rs []tierResult) tierResult {
	dur := func(get func(tierResult) time.Duration) time.Duration {
		vs := make([]time.Duration, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	u64 := func(get func(tierResult) uint64) uint64 {
		vs := make([]uint64, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	f64 := func(get func(tierResult) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	// The bytes of a phase differ a little between runs (segment
	// boundaries, compression), so its median is that of the rate, as the
	// time the first run's bytes would take at it.
	phase := func(get func(tierResult) phaseResult) phaseResult {
		p := get(rs[0])
		rate := f64(func(r tierResult) float64 { return float64(get(r).bytes) / get(r).elapsed.Seconds() })
		p.elapsed = time.Duration(float64(p.bytes) / rate * float64(time.Second))
		return p
	}
	return tierResult{
		off:               phase(func(r tierResult) phaseResult { return r.off }),
		on:                phase(func(r tierResult) phaseResult { return r.on }),
		local:             phase(func(r tierResult) phaseResult { return r.local }),
		catchUp:           phase(func(r tierResult) phaseResult { return r.catchUp }),
		raw:               phase(func(r tierResult) phaseResult { return r.raw }),
		offP50:            dur(func(r tierResult) time.Duration { return r.offP50 }),
		offP99:            dur(func(r tierResult) time.Duration { return r.offP99 }),
		onP50:             dur(func(r tierResult) time.Duration { return r.onP50 }),
		onP99:             dur(func(r tierResult) time.Duration { return r.onP99 }),
		catchUpValues:     rs[0].catchUpValues,
		batchBytes:        rs[0].batchBytes,
		objects:           rs[0].objects,
		compressed:        rs[0].compressed,
		tiered:            dur(func(r tierResult) time.Duration { return r.tiered }),
		offRSS:            u64(func(r tierResult) uint64 { return r.offRSS }),
		onRSS:             u64(func(r tierResult) uint64 { return r.onRSS }),
		minioRSS:          u64(func(r tierResult) uint64 { return r.minioRSS }),
		offCPU:            dur(func(r tierResult) time.Duration { return r.offCPU }),
		onCPU:             dur(func(r tierResult) time.Duration { return r.onCPU }),
		minioCPU:          dur(func(r tierResult) time.Duration { return r.minioCPU }),
		localBrokerCPU:    dur(func(r tierResult) time.Duration { return r.localBrokerCPU }),
		localClientCPU:    dur(func(r tierResult) time.Duration { return r.localClientCPU }),
		offProduceCPU:     dur(func(r tierResult) time.Duration { return r.offProduceCPU }),
		onProduceCPU:      dur(func(r tierResult) time.Duration { return r.onProduceCPU }),
		onProduceMinioCPU: dur(func(r tierResult) time.Duration { return r.onProduceMinioCPU }),
		catchUpBrokerCPU:  dur(func(r tierResult) time.Duration { return r.catchUpBrokerCPU }),
		catchUpMinioCPU:   dur(func(r tierResult) time.Duration { return r.catchUpMinioCPU }),
		catchUpClientCPU:  dur(func(r tierResult) time.Duration { return r.catchUpClientCPU }),
		rawMinioCPU:       dur(func(r tierResult) time.Duration { return r.rawMinioCPU }),
		rawClientCPU:      dur(func(r tierResult) time.Duration { return r.rawClientCPU }),
		tierGetBytes:      f64(func(r tierResult) float64 { return r.tierGetBytes }),
		tierGets:          f64(func(r tierResult) float64 { return r.tierGets }),
		cacheHits:         f64(func(r tierResult) float64 { return r.cacheHits }),
		cacheMisses:       f64(func(r tierResult) float64 { return r.cacheMisses }),
		remoteTimeouts:    f64(func(r tierResult) float64 { return r.remoteTimeouts }),
		fetches:           f64(func(r tierResult) float64 { return r.fetches }),
		fetchSeconds:      f64(func(r tierResult) float64 { return r.fetchSeconds }),
	}
}

// medianSorted sorts vs and returns the middle value, or the mean of the
// two middle values.
func medianSorted[T time.Duration | uint64 | float64](vs []T) T {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
