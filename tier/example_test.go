package tier_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/sedimentio/sediment/tier/tierurl"
)

// Example stores a sealed segment in a file-backed store, reads a range of
// it back and lists the partition's objects.
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

	segment := []byte("record batches of a sealed segment")
	key := "orders-0/00000000000000000000.log"
	if err := store.Put(ctx, key, bytes.NewReader(segment), int64(len(segment))); err != nil {
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
