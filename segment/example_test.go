package segment_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
)

func Example() {
	dir, err := os.MkdirTemp("", "sediment-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := segment.Open(filepath.Join(dir, "orders-0"), segment.DefaultConfig(), segment.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Produce: an idempotent producer's batch, as a Produce request carries it.
	batch := segmenttest.Idempotent(1000, 0, 0, "created", "paid", "shipped")
	res, err := l.AppendLeader(batch, 0)
	if err != nil {
		log.Fatal(err)
	}
	// acks=1/all: wait until the batch is on stable storage (group commit).
	if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("offsets", res.FirstOffset, "to", res.LastOffset)

	// A retry of the same batch is recognised and not written again.
	retry := segmenttest.Idempotent(1000, 0, 0, "created", "paid", "shipped")
	dup, _ := l.AppendLeader(retry, 0)
	fmt.Println("duplicate", dup.Duplicate, "offsets", dup.FirstOffset, "to", dup.LastOffset)

	// Fetch: whole batches from offset 1 up to the high watermark, for sendfile.
	s, err := l.Read(1, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Release()
	b, _ := s.ReadAll()
	h, _ := segment.ParseBatchHeader(b)
	fmt.Println("fetched batch", h.BaseOffset, "with", h.RecordCount, "records; log end", l.LogEndOffset())
	// Output:
	// offsets 0 to 2
	// duplicate true offsets 0 to 2
	// fetched batch 0 with 3 records; log end 3
}

// A transaction aborted by its coordinator, as a read_committed fetch sees it.
func ExampleLog_AppendMarker() {
	dir, err := os.MkdirTemp("", "sediment-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := segment.Open(filepath.Join(dir, "payments-0"), segment.DefaultConfig(), segment.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// A transactional producer writes two batches; a plain producer one in between.
	l.AppendLeader(segmenttest.Transactional(42, 0, 0, "debit"), 0)
	l.AppendLeader(segmenttest.Plain("audit"), 0)
	l.AppendLeader(segmenttest.Transactional(42, 0, 1, "credit"), 0)
	fmt.Println("first unstable offset", l.FirstUnstableOffset(), "of", l.LogEndOffset())

	// WriteTxnMarkers: the coordinator (epoch 3) aborts it.
	res, err := l.AppendMarker(42, 0, false, 3, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("marker at", res.FirstOffset, "first unstable offset", l.FirstUnstableOffset())

	// A read_committed fetch of [0, 4) gets the batches and the aborted transaction.
	fmt.Printf("aborted %+v\n", l.AbortedTransactions(0, 4))
	// Output:
	// first unstable offset 0 of 3
	// marker at 3 first unstable offset 4
	// aborted [{ProducerID:42 FirstOffset:0}]
}
