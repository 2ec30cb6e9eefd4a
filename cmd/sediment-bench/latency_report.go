package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// printLatencyHeader says what the latency phase runs.
func printLatencyHeader(out io.Writer, cfg latencyConfig, valueSize int) {
	rate := fmt.Sprintf("%.0f%% of sediment's maximum produce rate (measured first in each run: %d records with the workload's producer, as fast as it goes)", 100*latencyLoad, cfg.maxRecords)
	if cfg.rate > 0 {
		rate = fmt.Sprintf("%.0f records/s (--latency-rate; the maximum is not measured)", cfg.rate)
	}
	fmt.Fprintf(out, "%s: one broker per target, %d partitions RF 1; %s for %s, on a %s schedule: %d B values, acks=all, idempotent, linger 0, no compression, <= %d records buffered; a consumer (no group, kgo's fetch defaults: max wait 5s, min bytes 1) reads meanwhile; latencies from each record's intended send time\n",
		latencyTargetName, cfg.partitions, rate, cfg.duration, latencyTick, valueSize, cfg.maxInflight)
	if cfg.kliteBin != "" {
		fmt.Fprintf(out, "%s: klite (%s) at the same rate for as long, with its defaults (WAL synced every 2ms) but --wal-max-disk-size above what the run writes\n", latencyTargetName, cfg.kliteBin)
	} else {
		fmt.Fprintf(out, "%s: klite not run: %s\n", latencyTargetName, cfg.kliteWhy)
	}
}

// printLatencyResults prints one run's figures, or the medians of runs
// (then each run's p99 and ratio follow).
func printLatencyResults(out io.Writer, title string, r latencyResult, runs []latencyResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", latencyTargetName, title)
	if r.max.records > 0 {
		fmt.Fprintf(out, "latency sediment maximum produce: %.0f rec/s (%.1f MiB/s), %d records with the workload's producer\n",
			r.max.recPerSec(), r.max.mibPerSec(), r.max.records)
	}
	fmt.Fprintln(out, latencyLine(r.sediment))
	if r.klite != nil {
		fmt.Fprintln(out, latencyLine(*r.klite))
	}
	perRun := func(get func(latencyResult) string) string {
		if len(runs) == 0 {
			return ""
		}
		var b strings.Builder
		b.WriteString("; per run:")
		for _, run := range runs {
			b.WriteString(" " + get(run))
		}
		return b.String()
	}
	p99 := r.sediment.e2e.p99
	fmt.Fprintf(out, "sediment e2e p99: %.2f ms (target <= %.0f ms %s)%s\n", ms(p99), ms(latencyP99Target), verdict(p99 <= latencyP99Target),
		perRun(func(r latencyResult) string { return fmt.Sprintf("%.2f", ms(r.sediment.e2e.p99)) }))
	if r.klite == nil {
		fmt.Fprintln(out, "sediment e2e p99 / klite e2e p99: no klite")
		return
	}
	ratio := latencyRatio(r)
	fmt.Fprintf(out, "sediment e2e p99 / klite e2e p99: %.2f (target <= %.0f %s)%s\n", ratio, latencyKliteTarget, verdict(ratio <= latencyKliteTarget),
		perRun(func(r latencyResult) string { return fmt.Sprintf("%.2f", latencyRatio(r)) }))
}

// latencyRatio is sediment's end-to-end p99 over klite's.
func latencyRatio(r latencyResult) float64 {
	return float64(r.sediment.e2e.p99) / float64(max(r.klite.e2e.p99, 1))
}

// latencyLine is the line of one target's fixed-rate run.
func latencyLine(r latencyRun) string {
	l := func(s latencySummary) string {
		return fmt.Sprintf("p50 %.2f p99 %.2f p99.9 %.2f max %.1f ms", ms(s.p50), ms(s.p99), ms(s.p999), ms(s.max))
	}
	apis := ""
	if len(r.apis) > 0 {
		apis = ";" + apiTimesLine(r.apis)
	}
	return fmt.Sprintf("latency %s @ %.0f rec/s: e2e %s; produce %s; sent at %.0f rec/s (a tick's sends at most %.1f ms late), %d records, each read back once; %s cpu %.1f s (%.2f cores), peak RSS %.1f MiB%s; bench cpu %.1f s; runnable but waiting for a CPU: %s %.1f, bench %.1f thread-seconds; load average %s -> %s",
		r.target, r.rate, l(r.e2e), l(r.produce), r.achieved(), ms(r.senderLate), r.records,
		r.target, r.cpu.Seconds(), r.cpu.Seconds()/r.sendTime.Seconds(), float64(r.rss)/(1<<20), apis, r.clientCPU.Seconds(), r.target, r.runqueue.Seconds(), r.clientRunqueue.Seconds(), r.loadBefore, r.loadAfter)
}

// latencyMedians takes each figure's median over the runs on its own; klite
// counts when it ran in every run.
func latencyMedians(rs []latencyResult) latencyResult {
	m := rs[0]
	m.max.elapsed = medianSorted(collect(rs, func(r latencyResult) time.Duration { return r.max.elapsed }))
	m.sediment = latencyRunMedians(collect(rs, func(r latencyResult) latencyRun { return r.sediment }))
	m.klite = nil
	if kl := collect(rs, func(r latencyResult) *latencyRun { return r.klite }); !slices.Contains(kl, nil) {
		k := latencyRunMedians(collect(kl, func(r *latencyRun) latencyRun { return *r }))
		m.klite = &k
	}
	return m
}

func latencyRunMedians(rs []latencyRun) latencyRun {
	dur := func(get func(latencyRun) time.Duration) time.Duration { return medianSorted(collect(rs, get)) }
	sum := func(get func(latencyRun) latencySummary) latencySummary {
		return latencySummary{
			p50:  dur(func(r latencyRun) time.Duration { return get(r).p50 }),
			p99:  dur(func(r latencyRun) time.Duration { return get(r).p99 }),
			p999: dur(func(r latencyRun) time.Duration { return get(r).p999 }),
			max:  dur(func(r latencyRun) time.Duration { return get(r).max }),
		}
	}
	m := rs[len(rs)-1] // the last run's load average
	m.rate = medianSorted(collect(rs, func(r latencyRun) float64 { return r.rate }))
	m.records = int(medianSorted(collect(rs, func(r latencyRun) float64 { return float64(r.records) })))
	m.sendTime = dur(func(r latencyRun) time.Duration { return r.sendTime })
	m.senderLate = dur(func(r latencyRun) time.Duration { return r.senderLate })
	m.e2e = sum(func(r latencyRun) latencySummary { return r.e2e })
	m.produce = sum(func(r latencyRun) latencySummary { return r.produce })
	m.cpu = dur(func(r latencyRun) time.Duration { return r.cpu })
	m.clientCPU = dur(func(r latencyRun) time.Duration { return r.clientCPU })
	m.runqueue = dur(func(r latencyRun) time.Duration { return r.runqueue })
	m.clientRunqueue = dur(func(r latencyRun) time.Duration { return r.clientRunqueue })
	m.rss = medianSorted(collect(rs, func(r latencyRun) uint64 { return r.rss }))
	m.loadBefore = rs[0].loadBefore
	m.apis = nil
	for _, r := range rs {
		m.apis = sumAPITimes(m.apis, r.apis)
	}
	return m
}

// collect is get of each of rs.
func collect[R, T any](rs []R, get func(R) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = get(r)
	}
	return out
}
