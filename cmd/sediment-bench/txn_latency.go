package main

// The latency measurement of the txn phase: how long after a commit a
// read_committed consumer sees the transaction. One transactional producer
// commits a transaction of txnLatencyRecords records at a fixed rate; a
// read_committed consumer (kgo's default fetch settings, reading from the
// start) notes when it has seen all the records of each one. Per
// transaction, three times are taken: callAt just before EndTransaction,
// doneAt when it returned (the commit acknowledged), seenAt when the
// consumer had polled the transaction's last record.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnLatency is what measureTxnLatency measured, over the timed
// transactions (the warm-up ones left out).
type txnLatency struct {
	transactions int
	rate         float64 // timed transactions per second achieved
	// Sorted: seenAt - doneAt, seenAt - callAt, doneAt - callAt.
	fromReturn, fromCall, endTxn []time.Duration
}

// txnLatencies computes the latencies of the transactions from warmup on.
func txnLatencies(callAt, doneAt, seenAt []time.Time, warmup int) (fromReturn, fromCall, endTxn []time.Duration) {
	for t := warmup; t < len(callAt); t++ {
		fromReturn = append(fromReturn, seenAt[t].Sub(doneAt[t]))
		fromCall = append(fromCall, seenAt[t].Sub(callAt[t]))
		endTxn = append(endTxn, doneAt[t].Sub(callAt[t]))
	}
	slices.Sort(fromReturn)
	slices.Sort(fromCall)
	slices.Sort(endTxn)
	return fromReturn, fromCall, endTxn
}

// measureTxnLatency commits rate transactions a second for d (after
// txnLatencyWarmup untimed ones) to w's topic, and reads them back.
func measureTxnLatency(ctx context.Context, seeds []string, w workloadConfig, rate float64, d time.Duration, pool *valuePool, phase func(string)) (txnLatency, error) {
	var res txnLatency
	timed := max(int(rate*d.Seconds()), 1)
	total := txnLatencyWarmup + timed
	records := total * txnLatencyRecords

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(w.topic),
		kgo.TransactionalID("sediment-bench-txn-latency"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	if err != nil {
		return res, err
	}
	defer closeClient(prod)
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return res, err
	}
	defer closeClient(cons)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex // guards seenAt, whole and readErr
		seenAt   = make([]time.Time, total)
		whole    int // transactions seen whole
		readErr  error
		counts   = make([]int, total)
		check    = newCommittedCheck(pool, records, w.partitions)
		allSeen  = make(chan struct{})
		readDone = make(chan struct{})
	)
	go func() {
		defer close(readDone)
		for {
			fetches := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				return
			}
			now := time.Now()
			var err error
			for _, fe := range fetches.Errors() {
				err = fmt.Errorf("fetching %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
				break
			}
			mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				if err != nil {
					return
				}
				var idx int
				if idx, err = check.add(r.Partition, r.Offset, r.Value); err == nil {
					t := idx / txnLatencyRecords
					if counts[t]++; counts[t] == txnLatencyRecords {
						seenAt[t] = now
						whole++
					}
				}
			})
			readErr = err
			done := whole == total
			mu.Unlock()
			if err != nil {
				return
			}
			if done {
				close(allSeen)
				return
			}
		}
	}()
	// On every return: the reader ends before its client is closed.
	defer func() { cancel(); <-readDone }()

	callAt, doneAt := make([]time.Time, total), make([]time.Time, total)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var timedStart time.Time
	for t := range total {
		if t > 0 {
			select {
			case <-tick.C:
			case <-readDone:
				mu.Lock()
				err := readErr
				mu.Unlock()
				return res, fmt.Errorf("consumer after %d transactions: %w", t, err)
			case <-ctx.Done():
				return res, fmt.Errorf("after %d/%d transactions: %w", t, total, ctx.Err())
			}
		}
		if t == txnLatencyWarmup {
			timedStart = time.Now()
			phase(fmt.Sprintf("%d transactions of %d records at %.0f/s", timed, txnLatencyRecords, rate))
		}
		if err := prod.BeginTransaction(); err != nil {
			return res, fmt.Errorf("transaction %d: BeginTransaction: %w", t, err)
		}
		for i := t * txnLatencyRecords; i < (t+1)*txnLatencyRecords; i++ {
			prod.Produce(ctx, &kgo.Record{Value: pool.value(i)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			return res, fmt.Errorf("transaction %d: Flush: %w", t, err)
		}
		callAt[t] = time.Now()
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return res, fmt.Errorf("transaction %d: EndTransaction(TryCommit): %w", t, err)
		}
		doneAt[t] = time.Now()
	}
	res.transactions = timed
	res.rate = float64(timed) / time.Since(timedStart).Seconds()

	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	select {
	case <-allSeen:
	case <-readDone:
	case <-wait.C:
	case <-ctx.Done():
	}
	cancel()
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	if readErr != nil {
		return res, fmt.Errorf("consumer: %w", readErr)
	}
	if whole < total {
		return res, fmt.Errorf("the consumer saw %d of %d committed transactions whole 10s after the last commit", whole, total)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.fromReturn, res.fromCall, res.endTxn = txnLatencies(callAt, doneAt, seenAt, txnLatencyWarmup)
	return res, nil
}
