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
