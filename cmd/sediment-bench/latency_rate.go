package main

// The fixed-rate run of the latency phase. One producer sends records on a
// steady schedule, one tick every latencyTick, each tick the records due by
// then; a consumer reads the topic meanwhile. Each value carries its
// record's index and its intended send time: the tick's scheduled time, not
// the moment Produce was called, so a sender that falls behind (a blocked
// Produce, a late wake-up) is charged to the latencies instead of quietly
// sending less (coordinated omission). Times are nanoseconds since the
// run's epoch, read from the monotonic clock; producer and consumer live in
// this process, so the consumer's clock is the sender's.
//
// Value layout: bytes 0-8 the record index (big endian), 8-16 the intended
// send time, the rest the value pool's bytes for that index (checked).

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// latencyTick is the schedule's step: at 100,000 records/s, 100
	// records every millisecond.
	latencyTick = time.Millisecond
	// latencyDrain bounds the wait for the last records to be read after
	// the last one was acknowledged.
	latencyDrain = 30 * time.Second
)

// latencyRun is one fixed-rate run against one target.
type latencyRun struct {
	target      string
	rate        float64       // the schedule's records/s
	records     int           // timed records (the warm-up record not counted)
	sendTime    time.Duration // from the schedule's start to the last Produce call
	senderLate  time.Duration // the most a tick's sends started after its time
	e2e         latencySummary
	produce     latencySummary
	cpu         time.Duration // the target's CPU time over the run
	clientCPU   time.Duration // the bench's
	rss         uint64        // the target's peak RSS
	loadBefore  string
	loadAfter   string
	e2eSamples  uint64
	prodSamples uint64
	apis        []apiTime // the broker's time in Produce and Fetch (Sediment only)
	// The time the target's threads, and the bench's, waited for a CPU
	// (runqueueWait) over the run.
	runqueue, clientRunqueue time.Duration
}

// achieved is the rate the records were sent at.
func (r latencyRun) achieved() float64 { return float64(r.records) / r.sendTime.Seconds() }

// latencyValue writes record i's value for intended send time at into a
// new slice.
func latencyValue(pool *valuePool, i int, at int64) []byte {
	v := pool.value(i)
	binary.BigEndian.PutUint64(v[8:], uint64(at))
	return v
}

// latencyReader checks what the consumer reads: every record once, offsets
// contiguous from 0 on each partition, values intact. It holds the
// end-to-end latencies of the timed records (all but record 0, the
// warm-up). Not safe for concurrent use.
type latencyReader struct {
	pool  *valuePool
	total int // records 0..total-1
	next  []int64
	seen  []uint64
	got   int
	e2e   latencyHist
}

func newLatencyReader(pool *valuePool, total, partitions int) *latencyReader {
	return &latencyReader{pool: pool, total: total, next: make([]int64, partitions), seen: make([]uint64, (total+63)/64)}
}

// add checks one record read at now (nanoseconds since the epoch).
func (r *latencyReader) add(partition int32, offset int64, v []byte, now int64) error {
	if partition < 0 || int(partition) >= len(r.next) {
		return fmt.Errorf("record from partition %d of a %d-partition topic", partition, len(r.next))
	}
	if offset != r.next[partition] {
		return fmt.Errorf("partition %d: got offset %d, want %d (a gap or a repeat)", partition, offset, r.next[partition])
	}
	if len(v) != r.pool.size {
		return fmt.Errorf("partition %d offset %d: value of %d bytes, want %d", partition, offset, len(v), r.pool.size)
	}
	idx := binary.BigEndian.Uint64(v)
	if idx >= uint64(r.total) {
		return fmt.Errorf("partition %d offset %d: record index %d, beyond the %d produced", partition, offset, idx, r.total)
	}
	if !bytes.Equal(v[16:], r.pool.vals[idx%uint64(len(r.pool.vals))][16:]) {
		return fmt.Errorf("partition %d offset %d: value of record %d corrupted", partition, offset, idx)
	}
	if r.seen[idx/64]&(1<<(idx%64)) != 0 {
		return fmt.Errorf("partition %d offset %d: record %d read twice", partition, offset, idx)
	}
	r.seen[idx/64] |= 1 << (idx % 64)
	r.next[partition]++
	r.got++
	if idx > 0 {
		r.e2e.add(time.Duration(now - int64(binary.BigEndian.Uint64(v[8:]))))
	}
	return nil
}

// latencySchedule is the tick of the schedule that sends record j (1-based
// among the timed ones) at rate records/s, and how many records are due by
// that tick, at most n: the records whose exact time, j/rate after the
// start, is not after it.
func latencySchedule(j, n int, rate float64) (tick int64, due int) {
	perTick := rate * latencyTick.Seconds()
	tick = int64(math.Ceil(float64(j) / perTick))
	due = int(math.Floor(float64(tick) * perTick))
	return tick, min(max(due, j), n)
}

// runFixedRate produces rate records/s for d to w.topic (which exists and is
// empty) and reads them back meanwhile. Record 0 is produced and read first,
// untimed, so that connections, the producer id and the metadata are in
// place before the schedule starts.
func runFixedRate(ctx context.Context, seeds []string, w workloadConfig, rate float64, d time.Duration, pool *valuePool, phase func(string)) (latencyRun, error) {
	n := max(int(math.Round(rate*d.Seconds())), 1)
	total := n + 1
	res := latencyRun{rate: rate, records: n}
	epoch := time.Now()
	since := func() int64 { return int64(time.Since(epoch)) }

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(w.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the idempotent producer is kgo's default
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0), // kgo's default is 10ms; OMB's low-latency setting is 0
		kgo.MaxBufferedRecords(w.maxInflight),
	)
	if err != nil {
		return res, err
	}
	defer closeClient(prod)
	// kgo's fetch defaults: FetchMaxWait 5s, FetchMinBytes 1, so the broker
	// answers a fetch as soon as it has a record for it.
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return res, err
	}
	defer closeClient(cons)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex // guards reader and readErr
		reader   = newLatencyReader(pool, total, w.partitions)
		readErr  error
		read     atomic.Int64
		warmRead = make(chan struct{}) // closed once record 0 is read
		allRead  = make(chan struct{})
		readDone = make(chan struct{})
	)
	go func() {
		defer close(readDone)
		for {
			fetches := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				return
			}
			now := since()
			var err error
			for _, fe := range fetches.Errors() {
				err = fmt.Errorf("fetching %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
				break
			}
			mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				if err == nil {
					err = reader.add(r.Partition, r.Offset, r.Value, now)
				}
			})
			readErr = err
			got := reader.got
			mu.Unlock()
			if read.Swap(int64(got)) == 0 && got > 0 {
				close(warmRead)
			}
			if err != nil {
				return
			}
			if got == total {
				close(allRead)
				return
			}
		}
	}()
	// On every return: the reader ends before its client is closed.
	defer func() { cancel(); <-readDone }()
	readFailed := func() error {
		mu.Lock()
		defer mu.Unlock()
		if readErr != nil {
			return fmt.Errorf("consumer after %d records: %w", reader.got, readErr)
		}
		return fmt.Errorf("consumer after %d records: %w", reader.got, ctx.Err())
	}

	// The warm-up record.
	phase("warming up: one record produced and read")
	perPartition := make([]int64, w.partitions)
	r, err := prod.ProduceSync(ctx, &kgo.Record{Value: latencyValue(pool, 0, since())}).First()
	if err != nil {
		return res, fmt.Errorf("warm-up record: %w", err)
	}
	if r.Partition < 0 || int(r.Partition) >= w.partitions {
		return res, fmt.Errorf("warm-up record acknowledged on partition %d of a %d-partition topic", r.Partition, w.partitions)
	}
	perPartition[r.Partition]++
	warm := time.NewTimer(latencyDrain)
	defer warm.Stop()
	select {
	case <-warmRead:
	case <-readDone:
		return res, readFailed()
	case <-warm.C:
		return res, fmt.Errorf("the consumer did not read the warm-up record within %s", latencyDrain)
	}

	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	var (
		pmu      sync.Mutex // guards prodHist, perPartition and firstErr
		prodHist latencyHist
		firstErr error
		acked    atomic.Int64
	)
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
			pcancel()
		}
	}
	var sent atomic.Int64
	phase(fmt.Sprintf("%d records over %s", n, d))
	stopReport := reportEvery(5*time.Second, func() {
		phase(fmt.Sprintf("%d/%d sent, %d acknowledged, %d read", sent.Load(), n, acked.Load(), max(read.Load()-1, 0)))
	})
	defer stopReport()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := since()
	var i int // timed records sent
send:
	for i < n {
		tick, due := latencySchedule(i+1, n, rate)
		at := start + tick*int64(latencyTick)
		if wait := time.Duration(at - since()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-pctx.Done():
				break send
			case <-readDone: // the consumer failed: stop sending
				pcancel()
				break send
			}
		}
		res.senderLate = max(res.senderLate, time.Duration(since()-at))
		for ; i < due; i++ {
			prod.Produce(pctx, &kgo.Record{Value: latencyValue(pool, i+1, at)}, func(r *kgo.Record, err error) {
				now := since()
				pmu.Lock()
				defer pmu.Unlock()
				switch {
				case err != nil:
					fail(fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(r.Value), err))
				case r.Partition < 0 || int(r.Partition) >= w.partitions:
					fail(fmt.Errorf("record %d acknowledged on partition %d of a %d-partition topic", binary.BigEndian.Uint64(r.Value), r.Partition, w.partitions))
				default:
					prodHist.add(time.Duration(now - at))
					perPartition[r.Partition]++
					acked.Add(1)
				}
			})
		}
		sent.Store(int64(i))
	}
	res.sendTime = time.Duration(since() - start)
	select {
	case <-readDone:
		if i < n {
			return res, readFailed()
		}
	default:
	}
	if err := prod.Flush(ctx); err != nil {
		return res, fmt.Errorf("%d/%d acknowledged: %w", acked.Load(), n, err)
	}
	pmu.Lock()
	err = firstErr
	pmu.Unlock()
	if err != nil {
		return res, fmt.Errorf("%d/%d acknowledged before the first failure: %w", acked.Load(), n, err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	phase("reading the last records")
	drain := time.NewTimer(latencyDrain)
	defer drain.Stop()
	select {
	case <-allRead:
	case <-readDone: // after allRead is closed, or on a failure
		select {
		case <-allRead:
		default:
			return res, readFailed()
		}
	case <-drain.C:
		return res, fmt.Errorf("%d of %d acknowledged records read %s after the last acknowledgement: records lost", read.Load(), total, latencyDrain)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	cancel()
	<-readDone

	ends, err := endOffsets(ctx, seeds, w, perPartition)
	if err != nil {
		return res, fmt.Errorf("after the run: %w", err)
	}
	for p, end := range ends {
		if reader.next[p] != end {
			return res, fmt.Errorf("partition %d: read up to offset %d, end offset is %d", p, reader.next[p], end)
		}
	}
	res.e2e, res.produce = reader.e2e.summary(), prodHist.summary()
	res.e2eSamples, res.prodSamples = reader.e2e.n, prodHist.n
	return res, nil
}
