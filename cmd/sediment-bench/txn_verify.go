package main

// The verifying read of the transactional topic. It checks what the
// workload's consume checks, but for the markers: each committed
// transaction leaves a COMMIT marker on every partition it wrote to, which
// takes an offset that no record has, so offsets rise with gaps.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// committedCheck verifies records read with read_committed from a topic of
// partitions partitions holding records records written in transactions.
// Not safe for concurrent use.
type committedCheck struct {
	pool    *valuePool
	records int
	seen    []uint64 // a bit per record index
	next    []int64  // per partition: the lowest offset the next record may have
	count   []int64  // per partition: records read
	got     int
	bytes   int64
}

func newCommittedCheck(pool *valuePool, records, partitions int) *committedCheck {
	return &committedCheck{pool: pool, records: records, seen: make([]uint64, (records+63)/64), next: make([]int64, partitions), count: make([]int64, partitions)}
}

// add checks one record: a partition of the topic, an offset above the
// partition's last, a value intact and never read before. It returns the
// record's index.
func (c *committedCheck) add(partition int32, offset int64, value []byte) (int, error) {
	if partition < 0 || int(partition) >= len(c.next) {
		return 0, fmt.Errorf("record from partition %d of a %d-partition topic", partition, len(c.next))
	}
	if offset < c.next[partition] {
		return 0, fmt.Errorf("partition %d: got offset %d after %d (a repeat, or out of order)", partition, offset, c.next[partition]-1)
	}
	idx, err := c.pool.check(value, c.records)
	if err != nil {
		return 0, fmt.Errorf("partition %d offset %d: %w", partition, offset, err)
	}
	if c.seen[idx/64]&(1<<(idx%64)) != 0 {
		return 0, fmt.Errorf("partition %d offset %d: record %d read twice", partition, offset, idx)
	}
	c.seen[idx/64] |= 1 << (idx % 64)
	c.next[partition] = offset + 1
	c.count[partition]++
	c.got++
	c.bytes += int64(len(value))
	return idx, nil
}

// done checks, once every record is read, that each partition held the
// records acknowledged there.
func (c *committedCheck) done(acked []int64) error {
	for p, n := range acked {
		if c.count[p] != n {
			return fmt.Errorf("partition %d: read %d records, %d were committed there", p, c.count[p], n)
		}
	}
	return nil
}

// consumeCommitted reads w's topic from the start with read_committed,
// without a group, until it has w.records records, verifying each
// (committedCheck). Timing runs from the first poll to the last record.
func consumeCommitted(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, acked []int64, phase func(string)) (phaseResult, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return phaseResult{}, err
	}
	defer closeClient(cl)

	c := newCommittedCheck(pool, w.records, w.partitions)
	var got atomic.Int64 // c.got, for the reporter
	stopReport := reportEvery(5*time.Second, func() {
		phase(fmt.Sprintf("consuming: %d/%d read", got.Load(), w.records))
	})
	start := time.Now()
	var first error
	for c.got < w.records && first == nil {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			stopReport()
			return phaseResult{}, fmt.Errorf("%d/%d read: %w", c.got, w.records, err)
		}
		for _, fe := range fetches.Errors() {
			stopReport()
			return phaseResult{}, fmt.Errorf("fetching %s/%d after %d/%d records: %w", fe.Topic, fe.Partition, c.got, w.records, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if first == nil {
				_, first = c.add(r.Partition, r.Offset, r.Value)
			}
		})
		got.Store(int64(c.got))
	}
	elapsed := time.Since(start)
	stopReport()
	if first != nil {
		return phaseResult{}, first
	}
	if err := c.done(acked); err != nil {
		return phaseResult{}, err
	}
	return phaseResult{records: c.got, bytes: c.bytes, elapsed: elapsed}, nil
}
