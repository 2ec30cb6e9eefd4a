package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
)

// workloadConfig is the workload every target runs.
type workloadConfig struct {
	topic       string
	partitions  int
	replication int16 // replication factor of the topic: the target's
	records     int
	valueSize   int
	maxInflight int
	profile     *profiler // nil: none (--profile, the sediment target only)
}

// phaseResult is one timed phase: records and value bytes moved in elapsed.
type phaseResult struct {
	records int
	bytes   int64
	elapsed time.Duration
}

func (p phaseResult) mibPerSec() float64 {
	return float64(p.bytes) / (1 << 20) / p.elapsed.Seconds()
}

func (p phaseResult) recPerSec() float64 { return float64(p.records) / p.elapsed.Seconds() }

type workloadResult struct {
	produce  phaseResult
	consume  phaseResult
	p50, p99 time.Duration // produce latency: Produce call to promise
}

// runWorkload creates the topic, produces, checks the end offsets and reads
// everything back, verifying each record. phase reports progress; it may be
// called from another goroutine than the caller's.
func runWorkload(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, phase func(string)) (workloadResult, error) {
	var res workloadResult
	phase("creating topic " + w.topic)
	if err := createTopic(ctx, seeds, w); err != nil {
		return res, fmt.Errorf("creating topic: %w", err)
	}

	wait := w.profile.start(ctx, "produce")
	prod, err := produceChecked(ctx, seeds, w, pool, phase)
	if err = errors.Join(err, wait()); err != nil {
		return res, err
	}
	res.produce, res.p50, res.p99 = prod.produce, prod.p50, prod.p99

	phase(fmt.Sprintf("consuming %d records", w.records))
	wait = w.profile.start(ctx, "consume")
	res.consume, err = consume(ctx, seeds, w, pool, prod.ends, phase)
	if err = errors.Join(err, wait()); err != nil {
		return res, fmt.Errorf("consume: %w", err)
	}
	return res, nil
}

// produced is what produceChecked measured.
type produced struct {
	produce  phaseResult
	p50, p99 time.Duration // produce latency: Produce call to promise
	ends     []int64       // end offset of each partition
}

// produceChecked is the workload's produce and end-offset check, on a
// topic that exists. extra adds client options to both (the security phase
// connects with TLS and SASL).
func produceChecked(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, phase func(string), extra ...kgo.Opt) (produced, error) {
	var res produced
	phase(fmt.Sprintf("producing %d records", w.records))
	prod, lat, perPartition, err := produce(ctx, seeds, w, pool, phase, extra...)
	if err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	res.produce = prod
	slices.Sort(lat)
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)

	phase("checking end offsets")
	if res.ends, err = endOffsets(ctx, seeds, w, perPartition, extra...); err != nil {
		return res, fmt.Errorf("after produce: %w", err)
	}
	return res, nil
}

// createTopic creates the topic with replication factor w.replication and
// waits until Metadata shows a leader for every partition.
func createTopic(ctx context.Context, seeds []string, w workloadConfig) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer closeClient(cl)
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(w.partitions), max(w.replication, 1), nil, w.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return harness.WaitFor(ctx, 100*time.Millisecond, nil, func() error { return topicReady(ctx, adm, w) },
		func(last error) error {
			return fmt.Errorf("partitions without a leader after 30s: %w (last: %v)", ctx.Err(), last)
		})
}

func topicReady(ctx context.Context, adm *kadm.Client, w workloadConfig) error {
	md, err := adm.Metadata(ctx, w.topic)
	if err != nil {
		return err
	}
	td, ok := md.Topics[w.topic]
	switch {
	case !ok:
		return errors.New("topic missing from Metadata")
	case td.Err != nil:
		return td.Err
	case len(td.Partitions) != w.partitions:
		return fmt.Errorf("topic has %d partitions, want %d", len(td.Partitions), w.partitions)
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d: no leader", p.Partition)
		}
	}
	return nil
}

// produce sends w.records records, at most w.maxInflight unacknowledged, and
// returns each record's latency from Produce to its promise and the number
// acknowledged on each partition. Timing runs from the first Produce to the
// last acknowledgement. extra adds client options.
func produce(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, phase func(string), extra ...kgo.Opt) (phaseResult, []time.Duration, []int64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(w.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the idempotent producer is kgo's default
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(w.maxInflight),
	}, extra...)...)
	if err != nil {
		return phaseResult{}, nil, nil, err
	}
	defer closeClient(cl)

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		sem          = make(chan struct{}, w.maxInflight)
		lat          = make([]time.Duration, w.records)
		perPartition = make([]atomic.Int64, w.partitions)
		acked        atomic.Int64
		wg           sync.WaitGroup
		errOnce      sync.Once
		firstErr     error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	stopReport := reportEvery(5*time.Second, func() {
		phase(fmt.Sprintf("producing: %d/%d acknowledged", acked.Load(), w.records))
	})
	defer stopReport()

	start := time.Now()
issue:
	for i := range w.records {
		select {
		case sem <- struct{}{}:
		case <-pctx.Done():
			break issue
		}
		r := &kgo.Record{Value: pool.value(i)}
		wg.Add(1)
		t0 := time.Now()
		cl.Produce(pctx, r, func(r *kgo.Record, err error) {
			lat[i] = time.Since(t0)
			switch {
			case err != nil:
				fail(fmt.Errorf("record %d: %w", i, err))
			case r.Partition < 0 || int(r.Partition) >= w.partitions:
				fail(fmt.Errorf("record %d acknowledged on partition %d of a %d-partition topic", i, r.Partition, w.partitions))
			default:
				perPartition[r.Partition].Add(1)
				acked.Add(1)
			}
			<-sem
			wg.Done()
		})
	}
	allAcked := make(chan struct{})
	go func() { wg.Wait(); close(allAcked) }()
	select {
	case <-allAcked:
	case <-ctx.Done():
		// Records stuck in a request are failed by closeClient; allAcked's
		// goroutine ends then.
		return phaseResult{}, nil, nil, fmt.Errorf("%d/%d acknowledged: %w", acked.Load(), w.records, ctx.Err())
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return phaseResult{}, nil, nil, fmt.Errorf("%d/%d acknowledged before the first failure: %w", acked.Load(), w.records, firstErr)
	}
	counts := make([]int64, w.partitions)
	for p := range perPartition {
		counts[p] = perPartition[p].Load()
	}
	return phaseResult{records: w.records, bytes: int64(w.records) * int64(w.valueSize), elapsed: elapsed}, lat, counts, nil
}

// endOffsets checks that each partition's end offset equals the records
// acknowledged there: the log starts at 0, so anything more is a duplicate
// (which the idempotent producer must prevent) and anything less a loss.
// extra adds client options.
func endOffsets(ctx context.Context, seeds []string, w workloadConfig, acked []int64, extra ...kgo.Opt) ([]int64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, extra...)...)
	if err != nil {
		return nil, err
	}
	defer closeClient(cl)
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, w.topic)
	if err != nil {
		return nil, fmt.Errorf("ListOffsets: %w", err)
	}
	ends := make([]int64, w.partitions)
	var errs []error
	for p := range w.partitions {
		lo, ok := listed.Lookup(w.topic, int32(p))
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("partition %d: no end offset listed", p))
		case lo.Err != nil:
			errs = append(errs, fmt.Errorf("partition %d: %w", p, lo.Err))
		case lo.Offset != acked[p]:
			errs = append(errs, fmt.Errorf("partition %d: end offset %d, but %d records were acknowledged there", p, lo.Offset, acked[p]))
		}
		ends[p] = lo.Offset
	}
	return ends, errors.Join(errs...)
}

// consume reads the topic from the start without a group until it has
// w.records records, verifying each: offsets contiguous from 0 per
// partition, every value intact, every record index seen exactly once.
// Timing runs from the first poll to the last record. extra adds client
// options (the groups phase reads in a consumer group with them).
func consume(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, ends []int64, phase func(string), extra ...kgo.Opt) (phaseResult, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, extra...)...)
	if err != nil {
		return phaseResult{}, err
	}
	defer closeClient(cl)

	var (
		seen  = make([]uint64, (w.records+63)/64)
		next  = make([]int64, w.partitions)
		got   atomic.Int64
		nb    int64
		first error
	)
	check := func(r *kgo.Record) error {
		if r.Topic != w.topic || r.Partition < 0 || int(r.Partition) >= w.partitions {
			return fmt.Errorf("record from unexpected %s/%d", r.Topic, r.Partition)
		}
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: got offset %d, want %d (a gap or a repeat)", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		idx, err := pool.check(r.Value, w.records)
		if err != nil {
			return fmt.Errorf("partition %d offset %d: %w", r.Partition, r.Offset, err)
		}
		if seen[idx/64]&(1<<(idx%64)) != 0 {
			return fmt.Errorf("partition %d offset %d: record %d read twice", r.Partition, r.Offset, idx)
		}
		seen[idx/64] |= 1 << (idx % 64)
		nb += int64(len(r.Value))
		got.Add(1)
		return nil
	}
	stopReport := reportEvery(5*time.Second, func() {
		phase(fmt.Sprintf("consuming: %d/%d read", got.Load(), w.records))
	})
	defer stopReport()

	start := time.Now()
	for got.Load() < int64(w.records) {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return phaseResult{}, fmt.Errorf("%d/%d read: %w", got.Load(), w.records, err)
		}
		for _, fe := range fetches.Errors() {
			return phaseResult{}, fmt.Errorf("fetching %s/%d after %d/%d records: %w", fe.Topic, fe.Partition, got.Load(), w.records, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if first == nil {
				first = check(r)
			}
		})
		if first != nil {
			return phaseResult{}, first
		}
	}
	elapsed := time.Since(start)
	for p := range w.partitions {
		if next[p] != ends[p] {
			return phaseResult{}, fmt.Errorf("partition %d: read up to offset %d, end offset is %d", p, next[p], ends[p])
		}
	}
	return phaseResult{records: w.records, bytes: nb, elapsed: elapsed}, nil
}

// reportEvery calls f every d until the returned stop is called; stop waits
// for a running f.
func reportEvery(d time.Duration, f func()) (stop func()) {
	t := time.NewTicker(d)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-t.C:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() {
		t.Stop()
		close(done)
		wg.Wait()
	}
}

// closeClient closes cl, failing its unfinished records, but gives up
// waiting after a few seconds so a hung target cannot hang the bench.
func closeClient(cl *kgo.Client) {
	done := make(chan struct{})
	go func() { cl.Close(); close(done) }()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// percentile of sorted latencies: the smallest value that at least q of
// them do not exceed.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// minValueSize leaves room for the 8-byte record index and some payload.
const minValueSize = 16

// poolBytes is the random data values are cut from: larger than the windows
// of Kafka's codecs (snappy, lz4 and gzip look back at most 64 KiB, zstd at
// its default levels 8 MiB), so even a broker that recompressed could not
// find repeats.
const poolBytes = 16 << 20

// valuePool makes record values: value i is i as 8 big-endian bytes, then
// the tail of random pool entry i mod len(vals). Every value is distinct and
// can be checked against its index. Read-only after newValuePool.
type valuePool struct {
	size int
	vals [][]byte
}

func newValuePool(size int) *valuePool {
	n := max(poolBytes/size, 1)
	// A fixed seed makes every target and run see the same bytes.
	rng := rand.NewChaCha8([32]byte{'s', 'e', 'd', 'i', 'm', 'e', 'n', 't'})
	buf := make([]byte, n*size)
	_, _ = rng.Read(buf) // ChaCha8.Read never fails
	p := &valuePool{size: size, vals: make([][]byte, n)}
	for i := range p.vals {
		p.vals[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	return p
}

func (p *valuePool) value(i int) []byte {
	v := make([]byte, p.size)
	copy(v, p.vals[i%len(p.vals)])
	binary.BigEndian.PutUint64(v, uint64(i))
	return v
}

// check returns the index of value v, verifying every byte.
func (p *valuePool) check(v []byte, records int) (int, error) {
	if len(v) != p.size {
		return 0, fmt.Errorf("value of %d bytes, want %d", len(v), p.size)
	}
	idx := binary.BigEndian.Uint64(v)
	if idx >= uint64(records) {
		return 0, fmt.Errorf("value carries record index %d, beyond the %d produced", idx, records)
	}
	if !bytes.Equal(v[8:], p.vals[idx%uint64(len(p.vals))][8:]) {
		return 0, fmt.Errorf("value of record %d corrupted", idx)
	}
	return int(idx), nil
}
