package it

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// producerGroup is several idempotent acks=all franz-go producers, each in its
// own goroutine with its own client, producing continuously to every
// partition of a topic and recording each acknowledgement. Used by the crash
// and shutdown tests, which then prove every acknowledged record survived.
type producerGroup struct {
	t          testing.TB
	topic      string
	partitions int32
	clients    []*kgo.Client
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu     sync.Mutex
	acked  []ackedRecord
	failed int
	errs   map[string]int // failure reasons
	cond   chan struct{}  // closed and replaced on every acknowledgement
}

// ackedRecord is one acknowledged record: producer g's seq'th record.
type ackedRecord struct {
	p      int32
	offset int64
	g, seq int
}

func producedValue(g, seq int) string { return fmt.Sprintf("g%d-%09d", g, seq) }

func startProducers(t testing.TB, b *Broker, topic string, partitions int32, n int) *producerGroup {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pg := &producerGroup{t: t, topic: topic, partitions: partitions, cancel: cancel, cond: make(chan struct{}), errs: map[string]int{}}
	t.Cleanup(pg.stop)
	for g := range n {
		cl := b.Client(t,
			manualPartitions,
			kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent: franz-go's default
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.MaxBufferedRecords(2000),
			// Below the tests' segment.bytes whatever the load: a larger
			// batch is MESSAGE_TOO_LARGE, as in Kafka.
			kgo.ProducerBatchMaxBytes(32<<10),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			// Find the restarted broker fast (the default waits 5s
			// between metadata refreshes).
			kgo.MetadataMinAge(200*time.Millisecond),
		)
		pg.clients = append(pg.clients, cl)
		pg.wg.Add(1)
		go func() {
			defer pg.wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				p := int32((g + seq) % int(partitions))
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(producedValue(g, seq))}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					pg.mu.Lock()
					defer pg.mu.Unlock()
					if err != nil {
						pg.failed++
						pg.errs[err.Error()]++
						return
					}
					pg.acked = append(pg.acked, ackedRecord{p: r.Partition, offset: r.Offset, g: g, seq: seq})
					close(pg.cond)
					pg.cond = make(chan struct{})
				})
			}
		}()
	}
	return pg
}

func (pg *producerGroup) ackCount() int {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return len(pg.acked)
}

// waitAcks waits until at least n records have been acknowledged in total.
func (pg *producerGroup) waitAcks(n int, timeout time.Duration) {
	pg.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		pg.mu.Lock()
		got, ch := len(pg.acked), pg.cond
		pg.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			pg.t.Fatalf("only %d of %d records acknowledged after %v (%d failed)", got, n, timeout, pg.failed)
		}
	}
}

// finish stops producing and flushes what is buffered (the broker must be up).
func (pg *producerGroup) finish() {
	pg.t.Helper()
	pg.cancel()
	pg.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cl := range pg.clients {
		if err := cl.Flush(ctx); err != nil {
			pg.t.Fatalf("flushing producers: %v", err)
		}
	}
}

func (pg *producerGroup) stop() {
	pg.cancel()
	pg.wg.Wait()
	for _, cl := range pg.clients {
		cl.Close()
	}
}

// verify consumes every partition and proves that each acknowledged record is
// present exactly once, at its acknowledged offset, and that each producer's
// records are in production order within each partition. Records written but
// never acknowledged may be present too.
func (pg *producerGroup) verify(b *Broker) {
	t := pg.t
	t.Helper()
	pg.mu.Lock()
	acked := append([]ackedRecord(nil), pg.acked...)
	failed := pg.failed
	errs := fmt.Sprint(pg.errs)
	pg.mu.Unlock()

	ends := endOffsets(t, b.Admin(t), pg.topic)
	type loc struct {
		p      int32
		offset int64
	}
	where := map[string][]loc{}
	total := 0
	for p := range pg.partitions {
		recs := consumePartition(t, b, pg.topic, p, 0, int(ends[p]))
		for k, r := range recs {
			if r.Offset != int64(k) {
				t.Fatalf("%s[%d]: record %d has offset %d: the log has a gap", pg.topic, p, k, r.Offset)
			}
			where[string(r.Value)] = append(where[string(r.Value)], loc{p, r.Offset})
		}
		total += len(recs)
	}

	byProducer := map[[2]int][]ackedRecord{} // (g, p) -> acked records
	for _, a := range acked {
		v := producedValue(a.g, a.seq)
		got := where[v]
		if len(got) != 1 || got[0].p != a.p || got[0].offset != a.offset {
			t.Fatalf("acknowledged record %q (partition %d offset %d) is present at %v, want exactly once at that offset", v, a.p, a.offset, got)
		}
		byProducer[[2]int{a.g, int(a.p)}] = append(byProducer[[2]int{a.g, int(a.p)}], a)
	}
	for key, as := range byProducer {
		sort.Slice(as, func(i, j int) bool { return as[i].seq < as[j].seq })
		for i := 1; i < len(as); i++ {
			if as[i].offset <= as[i-1].offset {
				t.Fatalf("producer %d partition %d: record seq %d at offset %d follows seq %d at offset %d: out of order",
					key[0], key[1], as[i].seq, as[i].offset, as[i-1].seq, as[i-1].offset)
			}
		}
	}
	dups := 0
	for _, locs := range where {
		if len(locs) > 1 {
			dups++
		}
	}
	t.Logf("%d records acknowledged, %d failed %s; %d in the log, %d unacknowledged values present more than once",
		len(acked), failed, errs, total, dups)
}
