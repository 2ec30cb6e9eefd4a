package harness_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sedimentio/sediment/it/harness"
)

// A three-broker cluster, one broker killed and started again, then all
// stopped. (Not run by go test: it needs the sediment binary.)
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cluster-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c, err := harness.StartCluster(ctx, harness.ClusterConfig{
		Bin:     "bin/sediment",
		Members: 3,
		Dir:     dir,
		Flags:   []string{"--default-replication-factor", "3", "--min-insync-replicas", "2"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Stop(10 * time.Second)
	fmt.Println("bootstrap servers:", c.Addrs())

	b := c.Node(2)
	if err := b.Kill(); err != nil { // kill -9
		log.Fatal(err)
	}
	if err := b.Start(ctx); err != nil { // same data, same ports
		log.Fatal(err)
	}
	m, err := b.Process().Memory()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("broker 2: peak RSS %d MiB, log %s\n", m.HWM>>20, filepath.Base(b.LogPath))
}
