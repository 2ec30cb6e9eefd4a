package main

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

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
	if l, okL := byName[kliteTargetName]; okS && okL {
		fmt.Fprintf(out, "ratio sediment/klite: produce %.2fx  consume %.2fx\n",
			s.produce.mibPerSec()/l.produce.mibPerSec(), s.consume.mibPerSec()/l.consume.mibPerSec())
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
