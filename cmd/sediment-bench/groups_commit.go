package main

// The offset-commit measurement of the groups phase: --groups-committers
// committers, each with a kgo client of its own (its own connection, as each
// consumer has; --groups-commit-clients makes them share fewer, for
// experiments), commit for a group of their own: one partition per
// OffsetCommit request, generation -1 and no member id (what a consumer
// assigning itself partitions, or an admin tool, sends; a group without
// members takes it), the next offset every time, one request at a time and
// the next as soon as the answer is in. So every commit is one request and
// waits for its acknowledgement: with the coordinator's acks=all semantics,
// until the record is committed in __consumer_offsets, which on one broker
// means covered by an fdatasync (group commit). Before the clock starts each
// committer commits once, which finds the coordinator and opens the
// connection; afterwards every group must fetch back the last offset its
// committer had acknowledged.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// commitResult is one commit measurement.
type commitResult struct {
	committers int
	conns      int   // clients (connections) they share
	commits    int64 // offsets committed and acknowledged (one per request)
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

// committer is one client committing for its own group.
type committer struct {
	cl        *kgo.Client
	group     string
	partition int32
	next      int64 // the next offset to commit; next-1 was acknowledged last
	lat       []time.Duration
}

func (c *committer) commit(ctx context.Context) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = c.group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = groupsRebalanceTopic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = c.partition, c.next
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("OffsetCommit answered %d topics for 1", len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		return err
	}
	c.next++
	return nil
}

// committed is the offset the broker returns for c's partition.
func (c *committer) committed(ctx context.Context) (int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = c.group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = groupsRebalanceTopic, []int32{c.partition}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == groupsRebalanceTopic && p.Partition == c.partition {
				return p.Offset, kerr.ErrorForCode(p.ErrorCode)
			}
		}
	}
	return 0, errors.New("OffsetFetch: partition not answered")
}

// measureCommits runs the committers for cfg.commitTime.
func measureCommits(ctx context.Context, seeds []string, cfg groupsConfig, broker *harness.Process, httpAddr string, phase func(string)) (commitResult, error) {
	res := commitResult{committers: cfg.committers}
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
	clients := make([]*kgo.Client, cfg.commitConns())
	res.conns = len(clients)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				closeClient(cl)
			}
		}
	}()
	for i := range clients {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
		if err != nil {
			return res, err
		}
		clients[i] = cl
	}
	for i := range cs {
		cs[i] = &committer{cl: clients[i%len(clients)], group: fmt.Sprintf("sediment-bench-commit-%d", i), partition: int32(i % groupsRebalancePartitions)}
	}
	if err := run(func(c *committer) error {
		if err := c.commit(ctx); err != nil {
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
		phase(fmt.Sprintf("offset commits: %d acknowledged", done.Load()))
	})
	b0, c0 := broker.CPU(), selfCPU()
	start := time.Now()
	deadline := start.Add(cfg.commitTime)
	err = run(func(c *committer) error {
		for time.Now().Before(deadline) {
			t0 := time.Now()
			if err := c.commit(ctx); err != nil {
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
		return res, fmt.Errorf("%d acknowledged before the first failure: %w", done.Load(), err)
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
	res.commits = int64(len(lat))
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)

	phase("offset commits: fetching every group's offset back")
	err = run(func(c *committer) error {
		got, err := c.committed(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("%s: OffsetFetch: %w", c.group, err)
		case got != c.next-1:
			return fmt.Errorf("%s: OffsetFetch gives offset %d, the last acknowledged commit was %d", c.group, got, c.next-1)
		}
		return nil
	})
	return res, err
}
