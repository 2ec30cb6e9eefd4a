package main

// The offset-commit measurement of the groups phase: --groups-committers
// committers, each on a connection of its own to its group's coordinator
// (as each consumer has one; a wireConn, the cheapest client there is, so
// that the bench leaves the shared cores to the broker), commit for a group
// of their own: one partition per
// OffsetCommit request (--groups-commit-partitions, for experiments: more
// per request), generation -1 and no member id (what a consumer assigning
// itself partitions, or an admin tool, sends; a group without members takes
// it), the next offset every time, one request at a time and the next as
// soon as the answer is in. So every commit is one request and waits for
// its acknowledgement: with the coordinator's acks=all semantics,
// until the record is committed in __consumer_offsets, which on one broker
// means covered by an fdatasync (group commit). Before the clock starts each
// committer commits once, which finds the coordinator and opens the
// connection; afterwards every group must fetch back the last offset its
// committer had acknowledged.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// commitResult is one commit measurement.
type commitResult struct {
	committers int   // each with its own connection
	perRequest int   // offsets per OffsetCommit request
	commits    int64 // offsets committed and acknowledged
	requests   int64 // OffsetCommit requests acknowledged
	elapsed    time.Duration
	p50, p99   time.Duration // per request, from its send to its answer
	// CPU over the timed commits: the broker's and the bench's.
	brokerCPU, clientCPU time.Duration
	// The broker's own counters over the timed commits: offsets committed,
	// and OffsetCommit requests with the sum of their times in the broker.
	brokerCommits, brokerRequests, brokerSeconds float64
}

func (r commitResult) perSec() float64 { return float64(r.commits) / r.elapsed.Seconds() }

// The broker's metrics the commit line shows.
const (
	commitsMetric        = "sediment_group_offset_commits_total"
	commitCountMetric    = `sediment_broker_request_duration_seconds_count{api="OffsetCommit"}`
	commitDurationMetric = `sediment_broker_request_duration_seconds_sum{api="OffsetCommit"}`
)

// committer commits for its own group on its own connection.
type committer struct {
	wc         *wireConn
	group      string
	partitions []int32 // committed together, each request
	req        *kmsg.OffsetCommitRequest
	next       int64 // the next offset to commit; next-1 was acknowledged last
	lat        []time.Duration
}

func newCommitter(wc *wireConn, group string, partitions []int32) (*committer, error) {
	req := kmsg.NewPtrOffsetCommitRequest()
	if err := wc.version(req); err != nil {
		return nil, err
	}
	req.Group = group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = groupsRebalanceTopic
	for _, p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return &committer{wc: wc, group: group, partitions: partitions, req: req}, nil
}

// commit commits the next offset for every partition of c's and waits for
// the answer.
func (c *committer) commit() error {
	for i := range c.req.Topics[0].Partitions {
		c.req.Topics[0].Partitions[i].Offset = c.next
	}
	r, err := c.wc.do(c.req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(c.partitions) {
		return fmt.Errorf("OffsetCommit of %d partitions answered %d topics", len(c.partitions), len(resp.Topics))
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, err)
		}
	}
	c.next++
	return nil
}

// checkCommitted checks that the broker returns the last offset c had
// acknowledged for each of its partitions.
func (c *committer) checkCommitted(ctx context.Context, adm *kadm.Client) error {
	offsets, err := adm.FetchOffsets(ctx, c.group)
	if err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	for _, p := range c.partitions {
		o, ok := offsets.Lookup(groupsRebalanceTopic, p)
		switch {
		case !ok:
			return fmt.Errorf("partition %d: no committed offset", p)
		case o.Err != nil:
			return fmt.Errorf("partition %d: %w", p, o.Err)
		case o.At != c.next-1:
			return fmt.Errorf("partition %d: OffsetFetch gives offset %d, the last acknowledged commit was %d", p, o.At, c.next-1)
		}
	}
	return nil
}

// measureCommits runs the committers for cfg.commitTime.
func measureCommits(ctx context.Context, seeds []string, cfg groupsConfig, broker *harness.Process, httpAddr string, phase func(string)) (res commitResult, err error) {
	res = commitResult{committers: cfg.committers, perRequest: cfg.commitPartitions}
	cs := make([]*committer, cfg.committers)
	run := func(f func(c *committer) error) error {
		var wg sync.WaitGroup
		errs := make([]error, len(cs))
		for i, c := range cs {
			wg.Go(func() { errs[i] = f(c) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}

	// Each group's coordinator, and a connection to it per committer.
	adm, closeAdm, err := newAdmin(seeds)
	if err != nil {
		return res, err
	}
	defer closeAdm()
	groups := make([]string, len(cs))
	for i := range groups {
		groups[i] = fmt.Sprintf("sediment-bench-commit-%d", i)
	}
	coords := adm.FindGroupCoordinators(ctx, groups...)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.wc.close()
			}
		}
	}()
	for i, g := range groups {
		co, ok := coords[g]
		switch {
		case !ok:
			return res, fmt.Errorf("%s: FindCoordinator: not answered", g)
		case co.Err != nil:
			return res, fmt.Errorf("%s: FindCoordinator: %w", g, co.Err)
		}
		wc, err := dialWire(ctx, net.JoinHostPort(co.Host, strconv.Itoa(int(co.Port))))
		if err != nil {
			return res, fmt.Errorf("%s: connecting to its coordinator %d: %w", g, co.NodeID, err)
		}
		var parts []int32
		for k := range cfg.commitPartitions {
			parts = append(parts, int32((i*cfg.commitPartitions+k)%groupsRebalancePartitions))
		}
		if cs[i], err = newCommitter(wc, g, parts); err != nil {
			wc.close()
			return res, err
		}
	}
	if err := run(func(c *committer) error {
		if err := c.commit(); err != nil {
			return fmt.Errorf("%s: first commit: %w", c.group, err)
		}
		return nil
	}); err != nil {
		return res, err
	}

	before, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, err
	}
	var done atomic.Int64
	stopReport := reportEvery(5*time.Second, func() {
		phase(fmt.Sprintf("offset commits: %d requests acknowledged", done.Load()))
	})
	b0, c0 := broker.CPU(), selfCPU()
	start := time.Now()
	deadline := start.Add(cfg.commitTime)
	err = run(func(c *committer) error {
		for time.Now().Before(deadline) {
			t0 := time.Now()
			if err := c.commit(); err != nil {
				return fmt.Errorf("%s: committing offset %d: %w", c.group, c.next, err)
			}
			c.lat = append(c.lat, time.Since(t0))
			done.Add(1)
		}
		return nil
	})
	res.elapsed = time.Since(start)
	res.brokerCPU, res.clientCPU = broker.CPU()-b0, selfCPU()-c0
	stopReport()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return res, fmt.Errorf("%d requests acknowledged before the first failure: %w", done.Load(), err)
	}
	after, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, err
	}
	res.brokerCommits = after[commitsMetric] - before[commitsMetric]
	res.brokerRequests = after[commitCountMetric] - before[commitCountMetric]
	res.brokerSeconds = after[commitDurationMetric] - before[commitDurationMetric]

	var lat []time.Duration
	for _, c := range cs {
		lat = append(lat, c.lat...)
	}
	slices.Sort(lat)
	res.requests = int64(len(lat))
	res.commits = res.requests * int64(cfg.commitPartitions)
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)

	phase("offset commits: fetching every group's offsets back")
	err = run(func(c *committer) error {
		if err := c.checkCommitted(ctx, adm); err != nil {
			return fmt.Errorf("%s: %w", c.group, err)
		}
		return nil
	})
	return res, err
}
