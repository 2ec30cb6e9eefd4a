package main

// The transactional produce of the txn phase: the workload's records (same
// values, same client settings but the transactional id) produced by
// several transactional producers in parallel, each committing
// transactions of a fixed size one after the other.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProduced is what produceTransactional measured.
type txnProduced struct {
	produce      phaseResult
	transactions int
	p50, p99     time.Duration // per transaction: BeginTransaction to EndTransaction's return
	perPartition []int64       // records committed on each partition
	markers      []int64       // transactions that wrote to each partition: one COMMIT marker each
}

// partitionsPerTxn is the mean number of partitions a transaction wrote to.
func (t txnProduced) partitionsPerTxn() float64 {
	var n int64
	for _, m := range t.markers {
		n += m
	}
	return float64(n) / float64(max(t.transactions, 1))
}

// txnSpan is the records of transaction t of transactions of size out of
// records: [from, to), empty past the last.
func txnSpan(t, size, records int) (from, to int) {
	from = min(t*size, records)
	return from, min(from+size, records)
}

// produceTransactional produces w.records records in transactions of size
// with producers transactional producers, each taking the next transaction
// when its last one committed. Timing runs from the first transaction's
// start to the last one's commit. backoff, unless 0, replaces kgo's
// ConcurrentTransactionsBackoff.
func produceTransactional(ctx context.Context, seeds []string, w workloadConfig, size, producers int, backoff time.Duration, pool *valuePool, phase func(string)) (txnProduced, error) {
	var res txnProduced
	clients := make([]*kgo.Client, producers)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				closeClient(cl)
			}
		}
	}()
	for i := range clients {
		opts := []kgo.Opt{
			kgo.SeedBrokers(seeds...),
			kgo.DefaultProduceTopic(w.topic),
			kgo.TransactionalID(fmt.Sprintf("sediment-bench-txn-%d", i)),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.MaxBufferedRecords(max(size, 1)),
		}
		if backoff > 0 {
			opts = append(opts, kgo.ConcurrentTransactionsBackoff(backoff))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return res, err
		}
		clients[i] = cl
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next         atomic.Int64 // the next transaction to produce
		committed    atomic.Int64 // records committed
		perPartition = make([]atomic.Int64, w.partitions)
		markers      = make([]atomic.Int64, w.partitions)
		mu           sync.Mutex
		lat          []time.Duration
		errOnce      sync.Once
		firstErr     error
		wg           sync.WaitGroup
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	stopReport := reportEvery(5*time.Second, func() {
		phase(fmt.Sprintf("producing: %d/%d committed", committed.Load(), w.records))
	})
	defer stopReport()

	start := time.Now()
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for pctx.Err() == nil {
				t := int(next.Add(1) - 1)
				from, to := txnSpan(t, size, w.records)
				if from == to {
					break
				}
				t0 := time.Now()
				counts, err := oneTransaction(pctx, cl, w.partitions, from, to, pool)
				if err != nil {
					fail(fmt.Errorf("producer %d, transaction of records %d-%d: %w", i, from, to-1, err))
					break
				}
				mine = append(mine, time.Since(t0))
				for p, n := range counts {
					if n > 0 {
						perPartition[p].Add(n)
						markers[p].Add(1)
					}
				}
				committed.Add(int64(to - from))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return res, fmt.Errorf("%d/%d committed before the first failure: %w", committed.Load(), w.records, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%d/%d committed: %w", committed.Load(), w.records, err)
	}
	slices.Sort(lat)
	res.produce = phaseResult{records: w.records, bytes: int64(w.records) * int64(w.valueSize), elapsed: elapsed}
	res.transactions = len(lat)
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.perPartition, res.markers = make([]int64, w.partitions), make([]int64, w.partitions)
	for p := range w.partitions {
		res.perPartition[p], res.markers[p] = perPartition[p].Load(), markers[p].Load()
	}
	return res, nil
}

// oneTransaction produces records [from, to) in one transaction and
// commits it, returning the records acknowledged on each partition.
func oneTransaction(ctx context.Context, cl *kgo.Client, partitions, from, to int, pool *valuePool) ([]int64, error) {
	if err := cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("BeginTransaction: %w", err)
	}
	counts := make([]int64, partitions)
	var (
		mu       sync.Mutex
		firstErr error
	)
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Value: pool.value(i)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case firstErr != nil:
			case err != nil:
				firstErr = fmt.Errorf("record %d: %w", i, err)
			case r.Partition < 0 || int(r.Partition) >= partitions:
				firstErr = fmt.Errorf("record %d acknowledged on partition %d of a %d-partition topic", i, r.Partition, partitions)
			default:
				counts[r.Partition]++
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("Flush: %w", err)
	}
	mu.Lock()
	err := firstErr
	mu.Unlock()
	if err != nil {
		// Not committed: the bench fails, and the broker aborts the
		// transaction when it times out, or when the client closes.
		return nil, err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return nil, fmt.Errorf("EndTransaction(TryCommit): %w", err)
	}
	return counts, nil
}

// checkTxnEnds checks each partition's end offsets once the transactions
// are committed: the high watermark and the last stable offset must both
// come to the records committed there plus one COMMIT marker per
// transaction that wrote to it (the log starts at 0). Kafka writes the
// markers after EndTxn is answered, so the offsets may take a moment to
// get there.
func checkTxnEnds(ctx context.Context, seeds []string, w workloadConfig, t txnProduced) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer closeClient(cl)
	adm := kadm.NewClient(cl)
	want := make([]int64, w.partitions)
	for p := range want {
		want[p] = t.perPartition[p] + t.markers[p]
	}
	check := func() error {
		hw, err := adm.ListEndOffsets(ctx, w.topic)
		if err != nil {
			return fmt.Errorf("ListOffsets (read_uncommitted): %w", err)
		}
		lso, err := adm.ListCommittedOffsets(ctx, w.topic)
		if err != nil {
			return fmt.Errorf("ListOffsets (read_committed): %w", err)
		}
		return compareEnds(w.topic, want, hw, lso)
	}
	return groupsWait(ctx, 30*time.Second, 100*time.Millisecond, nil, "end offsets", check)
}

// compareEnds checks the listed high watermarks and last stable offsets
// against want, per partition.
func compareEnds(topic string, want []int64, hw, lso kadm.ListedOffsets) error {
	for p, n := range want {
		for _, l := range []struct {
			what   string
			listed kadm.ListedOffsets
		}{{"high watermark", hw}, {"last stable offset", lso}} {
			o, ok := l.listed.Lookup(topic, int32(p))
			switch {
			case !ok:
				return fmt.Errorf("partition %d: no %s listed", p, l.what)
			case o.Err != nil:
				return fmt.Errorf("partition %d: %s: %w", p, l.what, o.Err)
			case o.Offset != n:
				return fmt.Errorf("partition %d: %s %d, want %d (records committed there and a marker per transaction)", p, l.what, o.Offset, n)
			}
		}
	}
	return nil
}
