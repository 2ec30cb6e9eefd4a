package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printSecurityHeader says what the security phase runs.
func printSecurityHeader(out io.Writer, cfg securityConfig, valueSize int) {
	fmt.Fprintf(out, "%s: one broker with a PLAINTEXT and a SASL_SSL listener (TLS 1.2+ with an ECDSA P-256 certificate made at run time, %s, a user with %d iterations made with AlterUserScramCredentials); %d records x %d B (%.1f MiB), %d partitions, the workload's produce and verified consume over PLAINTEXT, then over SASL_SSL; then %d connectors for %s each dialing over and over: TCP, a full TLS handshake, ApiVersions, SaslHandshake, SaslAuthenticate x2\n",
		securityTargetName, scramMechanism, securityIterations, cfg.records, valueSize, float64(cfg.records)*float64(valueSize)/(1<<20), cfg.partitions, cfg.handshakeConns, cfg.handshakeTime)
}

// printSecurityResults prints one run's figures, or the medians of runs
// (then each run's ratios follow).
func printSecurityResults(out io.Writer, title string, r securityResult, runs []securityResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", securityTargetName, title)
	for _, leg := range []struct {
		label string
		l     securityLeg
	}{{"PLAINTEXT", r.plain}, {"SASL_SSL (" + scramMechanism + ")", r.sasl}} {
		fmt.Fprintf(out, "%s: produce %.1f MiB/s, %.0f rec/s, p50 %.1f ms, p99 %.1f ms per record; consume (verified) %.1f MiB/s, %.0f rec/s\n",
			leg.label, leg.l.prod.produce.mibPerSec(), leg.l.prod.produce.recPerSec(), ms(leg.l.prod.p50), ms(leg.l.prod.p99), leg.l.consume.mibPerSec(), leg.l.consume.recPerSec())
	}
	pr, cr := r.produceRatio(), r.consumeRatio()
	perRun := ""
	if len(runs) > 0 {
		var b strings.Builder
		b.WriteString("; per run (produce/consume):")
		for _, run := range runs {
			fmt.Fprintf(&b, " %.2f/%.2f", run.produceRatio(), run.consumeRatio())
		}
		perRun = b.String()
	}
	fmt.Fprintf(out, "ratio SASL_SSL/PLAINTEXT: produce %.2fx (target >= %.1fx %s), consume %.2fx (target >= %.1fx %s)%s\n",
		pr, securityRatioTarget, verdict(pr >= securityRatioTarget), cr, securityRatioTarget, verdict(cr >= securityRatioTarget), perRun)

	h := r.handshakes
	perHS := r.brokerCPUPerHandshake()
	ceiling := 0.0
	if perHS > 0 {
		ceiling = 2 / perHS.Seconds()
	}
	fmt.Fprintf(out, "handshakes (TCP + full TLS (%s) + ApiVersions + SaslHandshake + SaslAuthenticate x2, %s, %d iterations): %.0f/s (target >= %.0f/s %s), %d by %d connectors in %.1f s, p50 %.1f ms, p99 %.1f ms each; broker cpu %.2f ms per handshake (a broker-bound ceiling of %.0f/s on 2 cores), bench cpu %.2f ms per handshake\n",
		h.tls, scramMechanism, r.iterations, h.perSec(), securityHandshakeTarget, verdict(h.perSec() >= securityHandshakeTarget), h.handshakes, h.conns, h.elapsed.Seconds(),
		ms(percentile(h.latencies, 0.5)), ms(percentile(h.latencies, 0.99)), ms(perHS), ceiling, ms(r.handshakeCl/time.Duration(max(h.handshakes, 1))))
	perMiB := func(cpu time.Duration, p phaseResult) float64 { return 1000 * cpu.Seconds() / mib(p.bytes) }
	fmt.Fprintf(out, "broker: cpu s %.1f PLAINTEXT produce (%.1f ms/MiB), %.1f PLAINTEXT consume (%.1f ms/MiB), %.1f SASL_SSL produce (%.1f ms/MiB), %.1f SASL_SSL consume (%.1f ms/MiB), %.1f handshakes, %.1f over the phase; peak RSS %.1f MiB; bench cpu s %.1f/%.1f PLAINTEXT produce/consume, %.1f/%.1f SASL_SSL produce/consume, %.1f handshakes; load average %s\n",
		r.plain.produceCPU.Seconds(), perMiB(r.plain.produceCPU, r.plain.prod.produce),
		r.plain.consumeCPU.Seconds(), perMiB(r.plain.consumeCPU, r.plain.consume),
		r.sasl.produceCPU.Seconds(), perMiB(r.sasl.produceCPU, r.sasl.prod.produce),
		r.sasl.consumeCPU.Seconds(), perMiB(r.sasl.consumeCPU, r.sasl.consume),
		r.handshakeCPU.Seconds(), r.brokerCPU.Seconds(), float64(r.brokerRSS)/(1<<20),
		r.plain.produceClient.Seconds(), r.plain.consumeClient.Seconds(), r.sasl.produceClient.Seconds(), r.sasl.consumeClient.Seconds(), r.handshakeCl.Seconds(), r.load)
}

// securityMedians takes each figure's median over the runs on its own. A
// phase's median is that of its time (every run moves the same bytes); the
// handshake rate's is the median count over the median time (every run
// dials for the same time), and the handshake latencies are pooled.
func securityMedians(rs []securityResult) securityResult {
	dur := func(get func(securityResult) time.Duration) time.Duration {
		vs := make([]time.Duration, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	leg := func(get func(securityResult) securityLeg) securityLeg {
		l := get(rs[0])
		l.prod.produce.elapsed = dur(func(r securityResult) time.Duration { return get(r).prod.produce.elapsed })
		l.consume.elapsed = dur(func(r securityResult) time.Duration { return get(r).consume.elapsed })
		l.prod.p50 = dur(func(r securityResult) time.Duration { return get(r).prod.p50 })
		l.prod.p99 = dur(func(r securityResult) time.Duration { return get(r).prod.p99 })
		l.produceCPU = dur(func(r securityResult) time.Duration { return get(r).produceCPU })
		l.consumeCPU = dur(func(r securityResult) time.Duration { return get(r).consumeCPU })
		l.produceClient = dur(func(r securityResult) time.Duration { return get(r).produceClient })
		l.consumeClient = dur(func(r securityResult) time.Duration { return get(r).consumeClient })
		return l
	}
	m := rs[0]
	m.plain = leg(func(r securityResult) securityLeg { return r.plain })
	m.sasl = leg(func(r securityResult) securityLeg { return r.sasl })
	m.handshakes.handshakes = int(dur(func(r securityResult) time.Duration { return time.Duration(r.handshakes.handshakes) }))
	m.handshakes.elapsed = dur(func(r securityResult) time.Duration { return r.handshakes.elapsed })
	var lats []time.Duration
	for _, r := range rs {
		lats = append(lats, r.handshakes.latencies...)
	}
	m.handshakes.latencies = sortedCopy(lats)
	m.handshakeCPU = dur(func(r securityResult) time.Duration { return r.handshakeCPU })
	m.handshakeCl = dur(func(r securityResult) time.Duration { return r.handshakeCl })
	m.brokerCPU = dur(func(r securityResult) time.Duration { return r.brokerCPU })
	m.brokerRSS = uint64(dur(func(r securityResult) time.Duration { return time.Duration(r.brokerRSS) }))
	m.load = rs[len(rs)-1].load
	return m
}
