package meta

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// singleConfig returns a single-member config on kernel-chosen ports. Port 0 is stable across
// restarts for a single member: its stored peer URL is the same "127.0.0.1:0" every time.
func singleConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.ClientListen = "127.0.0.1:0"
	cfg.PeerListen = "127.0.0.1:0"
	return cfg
}

// startSingle starts a single member in dir (a fresh temp dir if empty) and closes it at cleanup.
func startSingle(t *testing.T, dir string) *Node {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "meta")
	}
	n, err := Start(testCtx(t), singleConfig(dir), testLogger())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// newClient dials a second, independent client to n (as another broker would).
func newClient(t *testing.T, n *Node) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{n.ClientURL()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func openStore(t *testing.T, cli *clientv3.Client) *Store {
	t.Helper()
	s, err := OpenStore(testCtx(t), cli, testLogger())
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func startCache(t *testing.T, s *Store) *Cache {
	t.Helper()
	c, err := s.StartCache(testCtx(t))
	if err != nil {
		t.Fatalf("StartCache: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are free when returned;
// callers retry if another process takes one before it is bound again.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ls []net.Listener
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// testTopic returns a topic with n partitions replicated on broker 1.
func testTopic(name string, n int) (Topic, []PartitionState) {
	t := Topic{Name: name, ID: NewTopicID(), Configs: map[string]string{"retention.ms": "1000"}}
	var parts []PartitionState
	for range n {
		t.Partitions = append(t.Partitions, []int32{1})
		parts = append(parts, PartitionState{Leader: 1, LeaderEpoch: 0, ISR: []int32{1}})
	}
	return t, parts
}

// waitFor waits on a Subscribe channel until cond holds or the deadline passes.
func waitFor(t *testing.T, c *Cache, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ch, cancel := c.Subscribe()
	defer cancel()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !cond() {
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func testCtxCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(testCtx(t))
	t.Cleanup(cancel)
	return ctx, cancel
}
