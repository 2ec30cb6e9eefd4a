package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sedimentio/sediment/it/harness"
)

// kfakeTarget is franz-go's in-memory fake cluster with one broker, run by
// this binary's hidden --kfake-serve mode.
type kfakeTarget struct {
	bin string // this binary
}

func (t *kfakeTarget) name() string { return "kfake" }

func (t *kfakeTarget) start(ctx context.Context, dir string) (*instance, error) {
	return startKafkaChild(ctx, "kfake", t.bin, filepath.Join(dir, "kfake.log"), func(addr string) []string {
		return []string{"--kfake-serve", addr}
	})
}

// startKafkaChild starts bin with args(addr), addr a free loopback address
// it is to serve Kafka on, its output in log, and returns once it answers
// there (within 30 s).
func startKafkaChild(ctx context.Context, name, bin, log string, args func(addr string) []string) (*instance, error) {
	addrs, err := harness.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	p, err := harness.StartProcess(harness.Command{Name: name, Bin: bin, Args: args(addrs[0]), Log: log})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := harness.WaitKafka(wctx, addrs, 1, p); err != nil {
		return nil, errors.Join(err, p.Stop(childStopGrace))
	}
	return &instance{
		bootstrap: addrs,
		procs:     []*harness.Process{p},
		stopAll:   func() error { return p.Stop(childStopGrace) },
	}, nil
}

// kfakeServe is the kfake child: one in-memory broker on addr until SIGTERM
// or SIGINT. The bench creates the topic through the Kafka API, as it does
// on every target.
func kfakeServe(addr string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--kfake-serve %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if host != "127.0.0.1" || err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("--kfake-serve %q: want 127.0.0.1:PORT (kfake listens on 127.0.0.1 only)", addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer c.Close()
	<-ctx.Done()
	return nil
}
