// Package metatest starts a one-member embedded etcd with a Store and a
// Cache over it, for the tests of the packages built on meta.
package metatest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sedimentio/sediment/meta"
)

// Start starts the member on loopback ports in a temporary directory and
// opens a store and a cache over it; the test's cleanup closes them all.
func Start(t testing.TB) (*meta.Store, *meta.Cache) {
	t.Helper()
	cfg := meta.DefaultConfig()
	cfg.Dir = filepath.Join(t.TempDir(), "meta")
	cfg.ClientListen, cfg.PeerListen = "127.0.0.1:0", "127.0.0.1:0"
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := meta.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	t.Cleanup(func() { node.Close() })
	store, err := meta.OpenStore(ctx, node.Client(), logger)
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	cache, err := store.StartCache(context.Background())
	if err != nil {
		t.Fatalf("starting the cache: %v", err)
	}
	t.Cleanup(cache.Close)
	return store, cache
}
