package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// latStats are the median and 99th percentile of timed requests.
type latStats struct{ p50, p99 time.Duration }

func statsOf(lat []time.Duration) latStats {
	slices.Sort(lat)
	return latStats{percentile(lat, 0.50), percentile(lat, 0.99)}
}

// probeResult is the per-request latency of requests that touch the probe
// topic's one partition only.
type probeResult struct{ produce, fetch, metadata latStats }

// probeRequests times n Produce requests (acks=all, one batch of one small
// record, as a non-idempotent producer sends it), then n Fetch requests
// (no session, max wait 0, from offset 0, up to 1 KiB of the partition) and
// n Metadata requests for the probe topic alone, each sent after the
// previous one's response on one connection to the partition's leader. A
// tenth as many of each go first, untimed, to warm the connection and the
// broker's caches.
func probeRequests(ctx context.Context, seeds []string, n int) (probeResult, error) {
	var res probeResult
	seed, err := dialWire(ctx, seeds[0])
	if err != nil {
		return res, err
	}
	topic := scaleProbeTopic
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	md.Topics = []kmsg.MetadataRequestTopic{mt}
	if err := seed.version(md); err != nil {
		seed.close()
		return res, err
	}
	r, err := seed.do(md)
	seed.close()
	if err != nil {
		return res, fmt.Errorf("Metadata: %w", err)
	}
	leader, topicID, err := probeLeader(r.(*kmsg.MetadataResponse))
	if err != nil {
		return res, err
	}
	c, err := dialWire(ctx, leader)
	if err != nil {
		return res, err
	}
	defer c.close()

	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 30_000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = topic, topicID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = segmenttest.Plain("scale probe")
	pt.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	prod.Topics = []kmsg.ProduceRequestTopic{pt}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 0, 1, 1<<20
	fetch.SessionID, fetch.SessionEpoch = 0, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<10
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fetch.Topics = []kmsg.FetchRequestTopic{ft}

	for _, req := range []kmsg.Request{prod, fetch, md} {
		if err := c.version(req); err != nil {
			return res, err
		}
	}
	for i, step := range []struct {
		req   kmsg.Request
		check func(kmsg.Response) error
		out   *latStats
	}{
		{prod, checkProbeProduce, &res.produce},
		{fetch, checkProbeFetch, &res.fetch},
		{md, func(r kmsg.Response) error { _, _, err := probeLeader(r.(*kmsg.MetadataResponse)); return err }, &res.metadata},
	} {
		lat, err := timeRequests(ctx, c, step.req, n, step.check)
		if err != nil {
			return res, fmt.Errorf("%s (%d of 3): %w", kmsg.NameForKey(step.req.Key()), i+1, err)
		}
		*step.out = statsOf(lat)
	}
	return res, nil
}

// timeRequests sends req n/10 times untimed, then n times timed, one at a
// time, checking each response.
func timeRequests(ctx context.Context, c *wireConn, req kmsg.Request, n int, check func(kmsg.Response) error) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := range n/10 + n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		resp, err := c.do(req)
		d := time.Since(t0)
		if err == nil {
			err = check(resp)
		}
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i+1, err)
		}
		if i >= n/10 {
			lat = append(lat, d)
		}
	}
	return lat, nil
}

// probeLeader is the address of the probe partition's leader and the
// topic's id.
func probeLeader(md *kmsg.MetadataResponse) (string, [16]byte, error) {
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
		return "", [16]byte{}, fmt.Errorf("Metadata of %s: %d topics, want 1 with 1 partition", scaleProbeTopic, len(md.Topics))
	}
	t := md.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return "", t.TopicID, fmt.Errorf("Metadata of %s: %w", scaleProbeTopic, err)
	}
	p := t.Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return "", t.TopicID, fmt.Errorf("Metadata of %s/0: %w", scaleProbeTopic, err)
	}
	for _, b := range md.Brokers {
		if b.NodeID == p.Leader {
			return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), t.TopicID, nil
		}
	}
	return "", t.TopicID, fmt.Errorf("Metadata of %s/0: leader %d not among the brokers", scaleProbeTopic, p.Leader)
}

func checkProbeProduce(r kmsg.Response) error {
	resp := r.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("Produce answered %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func checkProbeFetch(r kmsg.Response) error {
	resp := r.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("Fetch answered %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return err
	}
	if len(p.RecordBatches) == 0 {
		return fmt.Errorf("Fetch from offset 0 returned no records (high watermark %d)", p.HighWatermark)
	}
	return nil
}
