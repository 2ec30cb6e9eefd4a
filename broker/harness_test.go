package broker

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mcfg := meta.DefaultConfig()
	mcfg.NodeID = 1
	mcfg.Dir = filepath.Join(dir, "meta")
	mcfg.ClientListen = freePort(t)
	mcfg.PeerListen = freePort(t)
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
	cache, err := store.StartCache(runCtx)
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.ShutdownTimeout = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, Deps{Logger: logger, Registerer: prometheus.NewRegistry(), Store: store, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(runCtx) }()
	<-srv.Ready()
	addr := srv.Addr().String()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	reg, err := store.RegisterBroker(ctx, meta.BrokerInfo{NodeID: cfg.NodeID, Host: host, Port: int32(p)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
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
		reg.Close()
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
