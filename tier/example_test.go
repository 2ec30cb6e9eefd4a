package tier_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	"github.com/sedimentio/sediment/tier/tierurl"
)

// Example opens the object store a --tier URL names, stores a sealed segment,
// reads a range of it back and lists the partition's objects.
func Example() {
	dir, err := os.MkdirTemp("", "tier-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	store, err := tierurl.Open(ctx, "file://"+dir, nil)
	if err != nil {
		log.Fatal(err)
	}

	sealed := []byte("record batches of a sealed segment")
	key := "orders-0/00000000000000000000.log"
	if err := store.Put(ctx, key, bytes.NewReader(sealed), int64(len(sealed))); err != nil {
		log.Fatal(err)
	}

	p := make([]byte, 6)
	if err := store.ReadAt(ctx, key, p, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", p)

	err = store.List(ctx, "orders-0/", func(key string, size int64) error {
		fmt.Println(key, size)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	_, err = store.Stat(ctx, "orders-0/00000000000000000099.log")
	fmt.Println(store.IsNotExist(err))
	// Output:
	// record
	// orders-0/00000000000000000000.log 34
	// true
}

// Example_reader puts the objects of a remote segment (its .log and .index, as
// the Uploader would) into a file store and reads record batches back with a
// Reader: whole batches, starting with the one that holds the offset asked for.
func Example_reader() {
	dir, err := os.MkdirTemp("", "tier-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := file.New(filepath.Join(dir, "bucket"))
	if err != nil {
		log.Fatal(err)
	}

	// A sealed segment of three batches: offsets 0-1, 2 and 3-5.
	batch := func(base int64, values ...string) []byte {
		return segmenttest.Batch{BaseOffset: base, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: segmenttest.Values(values...)}.Encode()
	}
	logBytes := segmenttest.Concat(batch(0, "a", "b"), batch(2, "c"), batch(3, "d", "e", "f"))
	seg := tier.RemoteSegment{
		V: 1, TopicID: [16]byte{1}, Partition: 0, UploadID: "AAAAAAAAAAAAAAAAAAAAAA",
		BaseOffset: 0, EndOffset: 5, Size: int64(len(logBytes)), Compression: "none",
		State: tier.CopyFinished, MaxTimestamp: -1,
	}
	put := func(kind string, b []byte) {
		if err := store.Put(ctx, tier.SegmentObjectKey(seg, kind), bytes.NewReader(b), int64(len(b))); err != nil {
			log.Fatal(err)
		}
	}
	put(tier.KindLog, logBytes)
	put(tier.KindIndex, nil) // no index entries: a read scans from the segment's start

	r, err := tier.NewReader(store, tier.DefaultReaderConfig(filepath.Join(dir, "cache")), nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	b, err := r.Read(ctx, seg, 1, 1<<20, true)
	if err != nil {
		log.Fatal(err)
	}
	for len(b) > 0 {
		h, err := segment.ParseBatchHeader(b)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("offsets %d-%d\n", h.BaseOffset, h.LastOffset())
		b = b[h.Size():]
	}
	// Output:
	// offsets 0-1
	// offsets 2-2
	// offsets 3-5
}
