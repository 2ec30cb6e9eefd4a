package main

import (
	"fmt"
	"io"
	"time"
)

// Targets of the scale phase (issue 14).
const (
	scaleRSSTarget        = 20 << 10 // idle RSS per partition, bytes
	scaleThroughputTarget = 0.7      // produce MiB/s at 1000 partitions over at 16
	scaleRequestTarget    = 1.2      // request p50 beside N idle partitions over alone, same broker
)

// printScaleHeader says what the scale phase runs.
func printScaleHeader(out io.Writer, cfg scaleConfig) {
	cluster := "no cluster"
	if cfg.cluster > 0 {
		cluster = fmt.Sprintf("then %d partitions on a fresh 3-broker cluster (RF=3, min.insync.replicas 2; RSS, fds and goroutines are the largest broker's)", cfg.cluster)
	}
	fmt.Fprintf(out, "%s: one topic of each of %v partitions on a fresh broker (RF=1), %s; idle RSS read %s after a forced GC, per partition against the same process with only a 1-partition probe topic; %d Produce (acks=all, 1 record), Fetch and Metadata requests timed one at a time on the probe topic, alone and beside the N partitions; %d records x %d B produced over all partitions\n",
		scaleTargetName, cfg.counts, cluster, cfg.settle, cfg.requests, cfg.records, cfg.valueSize)
}

const scaleFormat = "%10s %3s %8s %6s %10s %7s %12s %8s %6s %6s %8s %11s %11s %11s\n"

// printScaleResults prints one run's table, or the medians of runs, and the
// verdicts.
func printScaleResults(out io.Writer, title string, r scaleResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", scaleTargetName, title)
	fmt.Fprintf(out, scaleFormat, "partitions", "RF", "create s", "stop s", "prod MiB/s", "p99 ms", "idle RSS MiB", "KiB/part", "fds", "gorout",
		"heap MiB", "produce µs", "fetch µs", "metadata µs")
	for _, row := range r.rows {
		perPart := "-"
		if row.partitions >= 100 {
			perPart = fmt.Sprintf("%.1f", row.rssPerPartition()/(1<<10))
		}
		fmt.Fprintf(out, scaleFormat, fmt.Sprint(row.partitions), fmt.Sprint(row.rf), fmt.Sprintf("%.2f", row.create.Seconds()), fmt.Sprintf("%.1f", row.stop.Seconds()),
			fmt.Sprintf("%.1f", row.produce.mibPerSec()), fmt.Sprintf("%.1f", ms(row.p99)),
			fmt.Sprintf("%.1f", float64(row.idleRSS)/(1<<20)), perPart, fmt.Sprint(row.fds), fmt.Sprint(row.goroutines),
			fmt.Sprintf("%.1f", float64(row.heapInuse)/(1<<20)),
			latCell(row.probe.produce), latCell(row.probe.fetch), latCell(row.probe.metadata))
	}
	fmt.Fprintf(out, "(create: CreateTopics to a leader everywhere; stop: SIGTERM to exit; µs: p50/p99 of requests touching only the 1-partition probe topic; fd limit %s)\n", fdLimits(r))
	for _, row := range r.rows {
		if row.stopErr != nil {
			fmt.Fprintf(out, "stop at %d partitions RF=%d: %v\n", row.partitions, row.rf, row.stopErr)
		}
	}

	for _, row := range r.rows {
		if row.partitions < 1000 {
			continue
		}
		per := row.rssPerPartition()
		fmt.Fprintf(out, "idle RSS per partition at %d partitions RF=%d: %.1f KiB (target: <= %d KiB %s)\n",
			row.partitions, row.rf, per/(1<<10), scaleRSSTarget>>10, verdict(per <= scaleRSSTarget))
	}
	if at16, ok := r.row(16, 1); ok {
		if at1000, ok := r.row(1000, 1); ok {
			x := at1000.produce.mibPerSec() / at16.produce.mibPerSec()
			fmt.Fprintf(out, "produce at 1000 partitions / at 16: %.2fx (target: >= %.1fx %s)\n", x, scaleThroughputTarget, verdict(x >= scaleThroughputTarget))
		}
	}
	for _, row := range r.rows {
		if row.partitions < 1000 {
			continue
		}
		for _, k := range []struct {
			name        string
			alone, with latStats
		}{
			{"Produce", row.probeAlone.produce, row.probe.produce},
			{"Fetch", row.probeAlone.fetch, row.probe.fetch},
			{"Metadata", row.probeAlone.metadata, row.probe.metadata},
		} {
			x := float64(k.with.p50) / float64(k.alone.p50)
			fmt.Fprintf(out, "%s of 1 partition beside %d idle ones RF=%d / alone (same %s): p50 %d/%d µs %.2fx, p99 %.2fx (target: p50 <= %.1fx %s)\n",
				k.name, row.partitions, row.rf, map[bool]string{true: "broker", false: "cluster"}[row.rf == 1],
				k.with.p50.Microseconds(), k.alone.p50.Microseconds(), x, float64(k.with.p99)/float64(k.alone.p99), scaleRequestTarget, verdict(x <= scaleRequestTarget))
		}
	}
}

func latCell(s latStats) string {
	return fmt.Sprintf("%d/%d", s.p50.Microseconds(), s.p99.Microseconds())
}

// fdLimits lists the distinct soft fd limits of the rows' brokers.
func fdLimits(r scaleResult) string {
	var s string
	seen := map[uint64]bool{}
	for _, row := range r.rows {
		if !seen[row.fdLimit] {
			seen[row.fdLimit] = true
			if s != "" {
				s += ", "
			}
			s += fmt.Sprint(row.fdLimit)
		}
	}
	return s
}

// row is the row of n partitions with replication factor rf.
func (r scaleResult) row(n int, rf int16) (scaleRow, bool) {
	for _, row := range r.rows {
		if row.partitions == n && row.rf == rf {
			return row, true
		}
	}
	return scaleRow{}, false
}

// scaleMedians is, row by row, the median of every figure over runs (every
// run has the same rows).
func scaleMedians(rs []scaleResult) scaleResult {
	var out scaleResult
	for i := range rs[0].rows {
		d := func(f func(scaleRow) time.Duration) time.Duration {
			vs := make([]time.Duration, len(rs))
			for j, r := range rs {
				vs[j] = f(r.rows[i])
			}
			return medianSorted(vs)
		}
		u := func(f func(scaleRow) uint64) uint64 {
			vs := make([]uint64, len(rs))
			for j, r := range rs {
				vs[j] = f(r.rows[i])
			}
			return medianSorted(vs)
		}
		l := func(f func(scaleRow) latStats) latStats {
			return latStats{d(func(r scaleRow) time.Duration { return f(r).p50 }), d(func(r scaleRow) time.Duration { return f(r).p99 })}
		}
		first := rs[0].rows[i]
		out.rows = append(out.rows, scaleRow{
			partitions: first.partitions, rf: first.rf, brokers: first.brokers, fdLimit: first.fdLimit,
			create:     d(func(r scaleRow) time.Duration { return r.create }),
			stop:       d(func(r scaleRow) time.Duration { return r.stop }),
			baseRSS:    u(func(r scaleRow) uint64 { return r.baseRSS }),
			idleRSS:    u(func(r scaleRow) uint64 { return r.idleRSS }),
			fds:        int(u(func(r scaleRow) uint64 { return uint64(r.fds) })),
			goroutines: int(u(func(r scaleRow) uint64 { return uint64(r.goroutines) })),
			heapInuse:  u(func(r scaleRow) uint64 { return r.heapInuse }),
			produce:    phaseResult{records: first.produce.records, bytes: first.produce.bytes, elapsed: d(func(r scaleRow) time.Duration { return r.produce.elapsed })},
			p99:        d(func(r scaleRow) time.Duration { return r.p99 }),
			probe: probeResult{
				produce:  l(func(r scaleRow) latStats { return r.probe.produce }),
				fetch:    l(func(r scaleRow) latStats { return r.probe.fetch }),
				metadata: l(func(r scaleRow) latStats { return r.probe.metadata }),
			},
			probeAlone: probeResult{
				produce:  l(func(r scaleRow) latStats { return r.probeAlone.produce }),
				fetch:    l(func(r scaleRow) latStats { return r.probeAlone.fetch }),
				metadata: l(func(r scaleRow) latStats { return r.probeAlone.metadata }),
			},
		})
	}
	return out
}
