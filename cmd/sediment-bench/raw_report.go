package main

import (
	"fmt"
	"io"
	"time"
)

// Targets of the sediment target against the physical-limit baselines.
const (
	rawProduceTarget = 0.85
	rawConsumeTarget = 0.7
)

// printRawResults prints the baselines and, when results hold the sediment
// target, its ratios to them.
func printRawResults(out io.Writer, r rawResult, cfg rawConfig, results []runResult) {
	fmt.Fprintf(out, "raw durable writer: %.1f MiB/s (%d files, %d-byte appends, one fdatasync per dirty file per %s window: %d fdatasyncs, %.0f/s)\n",
		r.write.mibPerSec(), cfg.files, cfg.chunk, cfg.window, r.syncs, float64(r.syncs)/r.write.elapsed.Seconds())
	fmt.Fprintf(out, "loopback reader: %.1f MiB/s (sendfile from the same files to %d connection(s) on 127.0.0.1)\n",
		r.read.mibPerSec(), cfg.conns)
	for _, s := range results {
		if s.target != "sediment" {
			continue
		}
		pr := s.produce.mibPerSec() / r.write.mibPerSec()
		cr := s.consume.mibPerSec() / r.read.mibPerSec()
		fmt.Fprintf(out, "sediment produce / raw durable writer: %.2fx (target >= %.2gx %s)\n", pr, rawProduceTarget, verdict(pr >= rawProduceTarget))
		fmt.Fprintf(out, "sediment consume / loopback reader: %.2fx (target >= %.2gx %s)\n", cr, rawConsumeTarget, verdict(cr >= rawConsumeTarget))
	}
}

// rawMedians is the median of each baseline's time over runs (the bytes are
// the same in every run), and of the fdatasyncs.
func rawMedians(runs []rawResult) rawResult {
	m := runs[0]
	var writes, reads []time.Duration
	var syncs []uint64
	for _, r := range runs {
		writes, reads, syncs = append(writes, r.write.elapsed), append(reads, r.read.elapsed), append(syncs, uint64(r.syncs))
	}
	m.write.elapsed, m.read.elapsed, m.syncs = medianSorted(writes), medianSorted(reads), int64(medianSorted(syncs))
	return m
}
