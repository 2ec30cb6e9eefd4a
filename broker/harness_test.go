package broker

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/meta"
)

// testBroker is one in-process broker over a real embedded etcd member.
type testBroker struct {
	t    *testing.T
	srv  *Server
	addr string
	dir  string
	stop func()
}

func isRegistered(c *meta.Cache, id int32) bool {
	_, ok := c.Broker(id)
	return ok
}

// startCluster starts n brokers that join one etcd member (run by the test,
// so any broker can be stopped) as clients.
func startCluster(t *testing.T, n int, mod func(*Config), deps ...func(*Deps)) []*testBroker {
	t.Helper()
	mcfg := meta.DefaultConfig()
	mcfg.NodeID = 100
	mcfg.Dir = filepath.Join(t.TempDir(), "meta")
	mcfg.ClientListen = freePort(t)
	mcfg.PeerListen = freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	etcd, err := meta.Start(ctx, mcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() }) // runs after the brokers' cleanups
	var bs []*testBroker
	for i := 1; i <= n; i++ {
		bs = append(bs, startNode(t, t.TempDir(), int32(i), []string{etcd.ClientURL()}, mod, deps...))
	}
	// A broker's registration reaches the others through etcd watches; a
	// test creating a topic at once must find all of them live.
	waitFor(t, "every broker to see the others", 30*time.Second, func() bool {
		for _, b := range bs {
			if len(b.srv.cache.Brokers()) != n {
				return false
			}
		}
		return true
	})
	return bs
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBroker starts etcd and a broker in dir (a fresh temp dir when empty).
func startBroker(t *testing.T, mod func(*Config)) *testBroker {
	t.Helper()
	dir := t.TempDir()
	return startBrokerIn(t, dir, mod)
}

func startBrokerIn(t *testing.T, dir string, mod func(*Config)) *testBroker {
	t.Helper()
	return startNode(t, dir, 1, nil, mod)
}

// startNode starts broker id in dir; with endpoints it joins that etcd as a
// client, otherwise it runs its own single etcd member.
func startNode(t *testing.T, dir string, id int32, endpoints []string, mod func(*Config), deps ...func(*Deps)) *testBroker {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mcfg := meta.DefaultConfig()
	mcfg.NodeID = id
	mcfg.Dir = filepath.Join(dir, "meta")
	mcfg.ClientListen = freePort(t)
	mcfg.PeerListen = freePort(t)
	mcfg.Endpoints = endpoints
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := meta.Start(ctx, mcfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	store, err := meta.OpenStore(ctx, node.Client(), logger)
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	cache, err := store.StartCache(context.Background())
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.ShutdownTimeout = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	d := Deps{Logger: logger, Registerer: prometheus.NewRegistry(), Store: store, Cache: cache}
	for _, f := range deps {
		f(&d)
	}
	srv, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(runCtx) }()
	<-srv.Ready()
	addr := srv.Addr().String()
	// Wait for the broker's own registration, so Metadata lists it.
	for deadline := time.Now().Add(10 * time.Second); !isRegistered(cache, id); {
		if time.Now().After(deadline) {
			t.Fatal("broker did not register")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	tb := &testBroker{t: t, srv: srv, addr: addr, dir: dir}
	tb.stop = func() {
		if stopped {
			return
		}
		stopped = true
		stopRun()
		if err := <-errc; err != nil {
			t.Errorf("broker run: %v", err)
		}
		cache.Close()
		node.Close()
	}
	t.Cleanup(tb.stop)
	return tb
}

func (b *testBroker) client(opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr)}, opts...)...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(cl.Close)
	return cl
}

func (b *testBroker) admin() *kadm.Client { return kadm.NewClient(b.client()) }

func (b *testBroker) createTopic(name string, partitions int32, configs map[string]*string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.admin().CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		b.t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func val(p int32, i int) []byte { return []byte(fmt.Sprintf("p%d-v%06d", p, i)) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
