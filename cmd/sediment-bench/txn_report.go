package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// printTxnHeader says what the txn phase runs.
func printTxnHeader(out io.Writer, cfg txnConfig, valueSize int) {
	producers := txnProducers(cfg.producers, cfg.maxInflight, cfg.size)
	fmt.Fprintf(out, "%s: one broker; %d records x %d B (%.1f MiB), %d partitions, acks=all, no compression: idempotent (one client, at most %d records unacknowledged), then in transactions of %d records by %d transactional producers in parallel (one transaction open each: at most %d records outstanding), each topic read back and verified; then %.0f transactions/s of %d records for %s, latency to a read_committed consumer\n",
		txnTargetName, cfg.records, valueSize, float64(cfg.records)*float64(valueSize)/(1<<20), cfg.partitions, cfg.maxInflight, cfg.size, producers, producers*cfg.size, cfg.latencyRate, txnLatencyRecords, cfg.latencyTime)
	if cfg.backoff > 0 {
		fmt.Fprintf(out, "%s: the transactional producers retry a CONCURRENT_TRANSACTIONS refusal after %s (--txn-backoff; kgo's default is 20ms): not the reference setup\n", txnTargetName, cfg.backoff)
	}
}

// printTxnResults prints one run's figures, or the medians of runs (then
// each run's ratio follows).
func printTxnResults(out io.Writer, title string, r txnResult, runs []txnResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", txnTargetName, title)
	fmt.Fprintf(out, "idempotent produce: %.1f MiB/s, %.0f rec/s, p50 %.1f ms, p99 %.1f ms per record; read back and verified at %.1f MiB/s\n",
		r.idem.produce.mibPerSec(), r.idem.produce.recPerSec(), ms(r.idem.p50), ms(r.idem.p99), r.idemRead.mibPerSec())
	fmt.Fprintf(out, "transactional produce: %.1f MiB/s, %.0f rec/s, %d transactions of %d records by %d producers, %.2f partitions per transaction, p50 %.1f ms, p99 %.1f ms per transaction (begin to commit acknowledged); read back (read_committed) and verified at %.1f MiB/s\n",
		r.txn.produce.mibPerSec(), r.txn.produce.recPerSec(), r.txn.transactions, r.txn.produce.records/max(r.txn.transactions, 1), r.producers, r.txn.partitionsPerTxn(), ms(r.txn.p50), ms(r.txn.p99), r.txnRead.mibPerSec())
	if len(r.txnAPIs) > 0 {
		fmt.Fprintf(out, "transactional produce requests in the broker:%s\n", apiTimesLine(r.txnAPIs))
	}
	perRun := ""
	if len(runs) > 0 {
		var b strings.Builder
		b.WriteString("; per run:")
		for _, run := range runs {
			fmt.Fprintf(&b, " %.2f", run.ratio())
		}
		perRun = b.String()
	}
	ratio := r.ratio()
	fmt.Fprintf(out, "ratio transactional/idempotent: %.2fx (target >= %.1fx %s)%s\n", ratio, txnRatioTarget, verdict(ratio >= txnRatioTarget), perRun)
	l := r.latency
	fmt.Fprintf(out, "commit to read_committed visibility (%d transactions of %d records at %.1f/s): from EndTransaction's return p50 %.1f ms, p99 %.1f ms; from its call p50 %.1f ms, p99 %.1f ms; EndTransaction itself p50 %.1f ms, p99 %.1f ms\n",
		l.transactions, txnLatencyRecords, l.rate, ms(percentile(l.fromReturn, 0.5)), ms(percentile(l.fromReturn, 0.99)),
		ms(percentile(l.fromCall, 0.5)), ms(percentile(l.fromCall, 0.99)), ms(percentile(l.endTxn, 0.5)), ms(percentile(l.endTxn, 0.99)))
	perMiB := func(cpu time.Duration, p phaseResult) float64 { return 1000 * cpu.Seconds() / mib(p.bytes) }
	fmt.Fprintf(out, "broker: cpu s %.1f idempotent produce (%.1f ms/MiB), %.1f transactional produce (%.1f ms/MiB), %.1f latency part, %.1f over the phase; peak RSS %.1f MiB; bench cpu s %.1f idempotent produce, %.1f transactional produce; load average %s\n",
		r.idemCPU.Seconds(), perMiB(r.idemCPU, r.idem.produce), r.txnCPU.Seconds(), perMiB(r.txnCPU, r.txn.produce), r.latencyCPU.Seconds(), r.brokerCPU.Seconds(), float64(r.brokerRSS)/(1<<20),
		r.idemClientCPU.Seconds(), r.txnClientCPU.Seconds(), r.load)
}

// txnMedians takes each figure's median over the runs on its own; the
// latency samples and the request times of every run are pooled.
func txnMedians(rs []txnResult) txnResult {
	dur := func(get func(txnResult) time.Duration) time.Duration {
		vs := make([]time.Duration, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	// A phase's median is that of its time: every run moves the same bytes.
	phase := func(get func(txnResult) phaseResult) phaseResult {
		p := get(rs[0])
		p.elapsed = dur(func(r txnResult) time.Duration { return get(r).elapsed })
		return p
	}
	m := rs[0]
	m.idem.produce = phase(func(r txnResult) phaseResult { return r.idem.produce })
	m.idemRead = phase(func(r txnResult) phaseResult { return r.idemRead })
	m.txn.produce = phase(func(r txnResult) phaseResult { return r.txn.produce })
	m.txnRead = phase(func(r txnResult) phaseResult { return r.txnRead })
	m.idem.p50 = dur(func(r txnResult) time.Duration { return r.idem.p50 })
	m.idem.p99 = dur(func(r txnResult) time.Duration { return r.idem.p99 })
	m.txn.p50 = dur(func(r txnResult) time.Duration { return r.txn.p50 })
	m.txn.p99 = dur(func(r txnResult) time.Duration { return r.txn.p99 })
	m.idemCPU = dur(func(r txnResult) time.Duration { return r.idemCPU })
	m.txnCPU = dur(func(r txnResult) time.Duration { return r.txnCPU })
	m.latencyCPU = dur(func(r txnResult) time.Duration { return r.latencyCPU })
	m.brokerCPU = dur(func(r txnResult) time.Duration { return r.brokerCPU })
	m.idemClientCPU = dur(func(r txnResult) time.Duration { return r.idemClientCPU })
	m.txnClientCPU = dur(func(r txnResult) time.Duration { return r.txnClientCPU })
	m.brokerRSS = uint64(medianSorted(func() []float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = float64(r.brokerRSS)
		}
		return vs
	}()))
	m.load = rs[len(rs)-1].load
	m.txnAPIs = nil
	for _, r := range rs {
		m.txnAPIs = sumAPITimes(m.txnAPIs, r.txnAPIs)
	}
	var l txnLatency
	for _, r := range rs {
		l.transactions += r.latency.transactions
		l.rate += r.latency.rate / float64(len(rs))
		l.fromReturn = append(l.fromReturn, r.latency.fromReturn...)
		l.fromCall = append(l.fromCall, r.latency.fromCall...)
		l.endTxn = append(l.endTxn, r.latency.endTxn...)
	}
	l.fromReturn, l.fromCall, l.endTxn = sortedCopy(l.fromReturn), sortedCopy(l.fromCall), sortedCopy(l.endTxn)
	m.latency = l
	return m
}

// sortedCopy is vs sorted, in a new slice.
func sortedCopy(vs []time.Duration) []time.Duration {
	out := slices.Clone(vs)
	slices.Sort(out)
	return out
}

// loadFields is the three load averages of a /proc/loadavg line.
func loadFields(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
