package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// printGroupsHeader says what the groups phase runs.
func printGroupsHeader(out io.Writer, cfg groupsConfig, records, valueSize int) {
	fmt.Fprintf(out, "%s: one broker with %s; rebalance: a third member joins 2 consuming a fresh group on a %d-partition topic fed steadily, %d joins per protocol, classic (cooperative-sticky, kgo HeartbeatInterval %s) and KIP-848 (server-side uniform assignor, heartbeat interval %s); final = nothing changes for %s\n",
		groupsTargetName, strings.Join(cfg.groupFlags(), " "), groupsRebalancePartitions, cfg.joins, cfg.heartbeat, cfg.heartbeat, rebalanceQuiet(cfg.heartbeat))
	fmt.Fprintf(out, "%s: offset commits: %d committers, each on its own connection committing for a group of its own %d offset(s) per OffsetCommit (generation -1), one request at a time, for %s; consumption: %d records x %d B (%.1f MiB), %d partitions, read without a group, in a one-member classic and a one-member KIP-848 group (autocommit), each twice\n",
		groupsTargetName, cfg.committers, cfg.commitPartitions, cfg.commitTime, records, valueSize, float64(records)*float64(valueSize)/(1<<20), cfg.partitions)
}

// joinStats is the median and the largest of joins' rebalance times.
func joinStats(joins []joinResult) (median, largest time.Duration) {
	if len(joins) == 0 {
		return 0, 0
	}
	vs := make([]time.Duration, len(joins))
	for i, j := range joins {
		vs[i] = j.elapsed
	}
	median = medianSorted(vs) // sorts vs
	return median, vs[len(vs)-1]
}

// joinLine is the rebalance figure of one protocol over joins.
func joinLine(proto groupProtocol, heartbeat time.Duration, joins []joinResult) string {
	how := fmt.Sprintf("cooperative-sticky, members' heartbeat interval %s", heartbeat)
	if proto == protoConsumer {
		how = fmt.Sprintf("server-side uniform assignor, broker's heartbeat interval %s", heartbeat)
	}
	med, top := joinStats(joins)
	var each strings.Builder
	for _, j := range joins {
		fmt.Fprintf(&each, " %.3f", j.elapsed.Seconds())
	}
	return fmt.Sprintf("rebalance %s (%s): median %.3fs (%.2f heartbeat intervals), max %.3fs over %d joins (target median < %s: %s); joins (s):%s",
		proto, how, med.Seconds(), float64(med)/float64(heartbeat), top.Seconds(), len(joins), groupsRebalanceTarget, verdict(med < groupsRebalanceTarget), each.String())
}

// printGroupsResults prints one run's figures, or the medians of runs
// (then every run's joins are pooled, and each run's consumption ratios
// follow).
func printGroupsResults(out io.Writer, title string, heartbeat time.Duration, r groupsResult, runs []groupsResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", groupsTargetName, title)
	classic, consumer, apis := r.classic, r.consumer, r.rebalanceAPIs
	if len(runs) > 0 {
		classic, consumer, apis = nil, nil, nil
		for _, run := range runs {
			classic = append(classic, run.classic...)
			consumer = append(consumer, run.consumer...)
			apis = sumAPITimes(apis, run.rebalanceAPIs)
		}
	}
	fmt.Fprintln(out, joinLine(protoClassic, heartbeat, classic))
	fmt.Fprintln(out, joinLine(protoConsumer, heartbeat, consumer))
	if len(apis) > 0 {
		fmt.Fprintf(out, "rebalance requests in the broker (every join, the members' start and leave included; JoinGroup and SyncGroup wait for the group):%s\n", apiTimesLine(apis))
	}

	c := r.commits
	cps := c.perSec()
	reqs := "= requests/s (1 offset per request, acks=all)"
	if c.perRequest > 1 {
		reqs = fmt.Sprintf("in %.0f requests/s (%d offsets per request, acks=all; not the reference setup)", float64(c.requests)/c.elapsed.Seconds(), c.perRequest)
	}
	fmt.Fprintf(out, "offset commits: %.0f commits/s %s, %d committers, p50 %.1f ms, p99 %.1f ms per request (target >= %d/s per broker: %s); produce on this broker: %.1f MiB/s, %.0f rec/s\n",
		cps, reqs, c.committers, ms(c.p50), ms(c.p99), groupsCommitTarget, verdict(cps >= groupsCommitTarget), r.produce.produce.mibPerSec(), r.produce.produce.recPerSec())
	fmt.Fprintf(out, "offset commits in the broker: %.0f offsets committed in %.0f OffsetCommit requests, %.2f ms each from decoding to the response written; cpu s: broker %.1f, bench %.1f over %.1fs\n",
		c.brokerCommits, c.brokerRequests, 1000*c.brokerSeconds/max(c.brokerRequests, 1), c.brokerCPU.Seconds(), c.clientCPU.Seconds(), c.elapsed.Seconds())

	ratio := func(r groupsResult, g phaseResult) float64 { return g.mibPerSec() / r.plain.mibPerSec() }
	rc, rk := ratio(r, r.classicRead), ratio(r, r.consumerRead)
	perRun := ""
	if len(runs) > 0 {
		var b strings.Builder
		b.WriteString("; per run (classic, KIP-848):")
		for _, run := range runs {
			fmt.Fprintf(&b, " %.2f/%.2f", ratio(run, run.classicRead), ratio(run, run.consumerRead))
		}
		perRun = b.String()
	}
	fmt.Fprintf(out, "consumption (%.1f MiB, every record verified, two reads each way): plain %.1f MiB/s, classic group %.1f MiB/s (%.2fx), KIP-848 group %.1f MiB/s (%.2fx) (target >= %.1fx plain: classic %s, KIP-848 %s)%s\n",
		mib(r.plain.bytes/2), r.plain.mibPerSec(), r.classicRead.mibPerSec(), rc, r.consumerRead.mibPerSec(), rk,
		groupsConsumeTarget, verdict(rc >= groupsConsumeTarget), verdict(rk >= groupsConsumeTarget), perRun)
	fmt.Fprintf(out, "broker: peak RSS %.1f MiB, cpu s %.1f over the phase\n", float64(r.brokerRSS)/(1<<20), r.brokerCPU.Seconds())
}

// groupsMedians takes each figure's median over the runs on its own; the
// joins stay per run (printGroupsResults pools them).
func groupsMedians(rs []groupsResult) groupsResult {
	dur := func(get func(groupsResult) time.Duration) time.Duration {
		vs := make([]time.Duration, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	f64 := func(get func(groupsResult) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	// A phase's median is that of its time: every run moves the same bytes.
	phase := func(get func(groupsResult) phaseResult) phaseResult {
		p := get(rs[0])
		p.elapsed = dur(func(r groupsResult) time.Duration { return get(r).elapsed })
		return p
	}
	m := groupsResult{
		plain:        phase(func(r groupsResult) phaseResult { return r.plain }),
		classicRead:  phase(func(r groupsResult) phaseResult { return r.classicRead }),
		consumerRead: phase(func(r groupsResult) phaseResult { return r.consumerRead }),
		brokerCPU:    dur(func(r groupsResult) time.Duration { return r.brokerCPU }),
		brokerRSS:    uint64(f64(func(r groupsResult) float64 { return float64(r.brokerRSS) })),
	}
	m.produce.produce = phase(func(r groupsResult) phaseResult { return r.produce.produce })
	// Commits: the median rate, as the first run's time at it.
	c := rs[0].commits
	rate := f64(func(r groupsResult) float64 { return r.commits.perSec() })
	c.commits = int64(rate * c.elapsed.Seconds())
	c.requests = c.commits / int64(max(c.perRequest, 1))
	c.p50 = dur(func(r groupsResult) time.Duration { return r.commits.p50 })
	c.p99 = dur(func(r groupsResult) time.Duration { return r.commits.p99 })
	c.brokerCPU = dur(func(r groupsResult) time.Duration { return r.commits.brokerCPU })
	c.clientCPU = dur(func(r groupsResult) time.Duration { return r.commits.clientCPU })
	c.brokerCommits = f64(func(r groupsResult) float64 { return r.commits.brokerCommits })
	c.brokerRequests = f64(func(r groupsResult) float64 { return r.commits.brokerRequests })
	c.brokerSeconds = f64(func(r groupsResult) float64 { return r.commits.brokerSeconds })
	m.commits = c
	return m
}

// apiTimesLine is " API N x M ms mean (K over 100 ms)," for each API.
func apiTimesLine(ts []apiTime) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %.0f x %.1f ms mean (%.0f over 102.4 ms)", t.api, t.count, 1000*t.seconds/t.count, t.slow)
	}
	return b.String()
}

// sumAPITimes adds the times of add to those of sum, API by API.
func sumAPITimes(sum, add []apiTime) []apiTime {
	for _, t := range add {
		i := slices.IndexFunc(sum, func(s apiTime) bool { return s.api == t.api })
		if i < 0 {
			sum = append(sum, t)
			continue
		}
		sum[i].count += t.count
		sum[i].seconds += t.seconds
		sum[i].slow += t.slow
	}
	return sum
}
