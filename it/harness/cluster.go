package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClusterConfig is a Sediment cluster: Members brokers that each run a
// member of one etcd quorum (--meta-initial-cluster), and later brokers
// that join it as etcd clients (--meta-endpoints, Cluster.AddBroker).
type ClusterConfig struct {
	Bin     string
	Members int    // brokers of the etcd quorum, node ids 1..Members
	Dir     string // broker N's data directory is Dir/broker-N
	LogDir  string // broker N's log is LogDir/broker-N.log; "" means Dir
	Flags   []string
	// Env is every broker's whole environment; nil means Environ() at
	// each start.
	Env          []string
	StartTimeout time.Duration // per broker, and for the cluster to form; 0 means DefaultStartTimeout
}

// Cluster is a set of brokers of one Sediment cluster; Brokers[i] has node
// id i+1. Not safe for concurrent use.
type Cluster struct {
	Brokers   []*Broker
	cfg       ClusterConfig
	endpoints string // the etcd client URLs of the members
}

// StartCluster starts the members all at once (an etcd quorum forms only
// once a majority is up) and returns when each is ready (Broker.Start) and
// the cluster has formed (WaitKafka). Should a port be taken meanwhile, it
// starts over on other ports, with fresh data directories.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Members < 1 {
		return nil, fmt.Errorf("harness: a cluster of %d members", cfg.Members)
	}
	if cfg.LogDir == "" {
		cfg.LogDir = cfg.Dir
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	for attempt := 1; ; attempt++ {
		c, err := startCluster(ctx, cfg)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 3 {
			return nil, err
		}
		for i := range cfg.Members {
			if err := os.RemoveAll(c.dataDir(i + 1)); err != nil {
				return nil, err
			}
		}
	}
}

func startCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{cfg: cfg}
	// Four listeners per broker: Kafka, HTTP, etcd client, etcd peer.
	addrs, err := FreeAddrs(4 * cfg.Members)
	if err != nil {
		return c, err
	}
	var peers, clients []string
	for i := range cfg.Members {
		peers = append(peers, fmt.Sprintf("%d=http://%s", i+1, addrs[4*i+3]))
		clients = append(clients, "http://"+addrs[4*i+2])
	}
	c.endpoints = strings.Join(clients, ",")
	for i := range cfg.Members {
		a := addrs[4*i : 4*i+4]
		b, err := c.newBroker(i+1, a, []string{"--meta-initial-cluster", strings.Join(peers, ",")})
		if err != nil {
			return c, err
		}
		c.Brokers = append(c.Brokers, b)
	}
	errs := make([]error, len(c.Brokers))
	var wg sync.WaitGroup
	for i, b := range c.Brokers {
		wg.Go(func() { errs[i] = b.run(ctx) })
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err == nil {
		err = c.WaitKafka(ctx)
	}
	if err != nil {
		c.Kill()
		return c, err
	}
	return c, nil
}

func (c *Cluster) dataDir(node int) string {
	return filepath.Join(c.cfg.Dir, "broker-"+strconv.Itoa(node))
}

// newBroker prepares broker node on addrs (Kafka, HTTP, etcd client, etcd
// peer; nil: free ones) with the cluster flags before the config's.
func (c *Cluster) newBroker(node int, addrs []string, clusterFlags []string) (*Broker, error) {
	cfg := BrokerConfig{
		Bin:          c.cfg.Bin,
		NodeID:       node,
		DataDir:      c.dataDir(node),
		LogPath:      filepath.Join(c.cfg.LogDir, "broker-"+strconv.Itoa(node)+".log"),
		Flags:        append(clusterFlags, c.cfg.Flags...),
		Env:          c.cfg.Env,
		StartTimeout: c.cfg.StartTimeout,
	}
	if addrs != nil {
		cfg.Addr, cfg.HTTP, cfg.MetaClient, cfg.MetaPeer = addrs[0], addrs[1], addrs[2], addrs[3]
	}
	return NewBroker(cfg)
}

// AddBroker starts one more broker, node id len(Brokers)+1, that joins the
// members' etcd as a client (no member of its own), and returns once it is
// ready and every serving broker lists it.
func (c *Cluster) AddBroker(ctx context.Context) (*Broker, error) {
	node := len(c.Brokers) + 1
	b, err := c.newBroker(node, nil, []string{"--meta-endpoints", c.endpoints})
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	c.Brokers = append(c.Brokers, b)
	return b, c.WaitKafka(ctx)
}

// Node is the broker with node id id, nil when there is none.
func (c *Cluster) Node(id int) *Broker {
	if id < 1 || id > len(c.Brokers) {
		return nil
	}
	return c.Brokers[id-1]
}

// Addrs are the Kafka addresses of every broker, up or down.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, b := range c.Brokers {
		out = append(out, b.Addr)
	}
	return out
}

// Serving are the brokers whose current run is up and not paused.
func (c *Cluster) Serving() []*Broker {
	var out []*Broker
	for _, b := range c.Brokers {
		if b.Running() && !b.cur.Paused() {
			out = append(out, b)
		}
	}
	return out
}

// Processes are the brokers' current (or last) runs, in node id order.
func (c *Cluster) Processes() []*Process {
	var out []*Process
	for _, b := range c.Brokers {
		if b.cur != nil {
			out = append(out, b.cur)
		}
	}
	return out
}

// WaitKafka waits until every serving broker answers ApiVersions and a
// Metadata that lists every serving broker and a controller, within the
// start timeout. It fails early when a broker exits on its own.
func (c *Cluster) WaitKafka(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	serving := c.Serving()
	var ids []int32
	var procs []*Process
	for _, b := range serving {
		ids = append(ids, int32(b.NodeID))
		procs = append(procs, b.cur)
	}
	return WaitFor(ctx, 200*time.Millisecond, procs, func() error {
		for _, b := range serving {
			md, err := PingKafka(ctx, b.Addr)
			if err == nil {
				err = listsBrokers(md, len(ids), ids, true)
			}
			if err != nil {
				return fmt.Errorf("broker %d: %w", b.NodeID, err)
			}
		}
		return nil
	}, func(last error) error {
		return fmt.Errorf("cluster of brokers %v not formed within %s: %w (last error: %v)%s", ids, c.cfg.StartTimeout, ctx.Err(), last, c.LogTails())
	})
}

// Stop stops every running broker at once (see Process.Stop): one after
// the other, the last ones would wait for an etcd quorum and for peers to
// take over leaderships that are already gone.
func (c *Cluster) Stop(grace time.Duration) error {
	errs := make([]error, len(c.Brokers))
	var wg sync.WaitGroup
	for i, b := range c.Brokers {
		wg.Go(func() { errs[i] = b.Stop(grace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts every broker that is not running, all at once, on the same
// data and ports (one after the other, the first would wait for an etcd
// quorum that needs the others), and returns when each is ready
// (Broker.Start) and the cluster has formed (WaitKafka): a whole cluster
// started again after Stop.
func (c *Cluster) Start(ctx context.Context) error {
	var stopped []*Broker
	for _, b := range c.Brokers {
		if !b.Running() {
			stopped = append(stopped, b)
		}
	}
	errs := make([]error, len(stopped))
	var wg sync.WaitGroup
	for i, b := range stopped {
		wg.Go(func() { errs[i] = b.Start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.WaitKafka(ctx)
}

// Kill kills every broker (SIGKILL) and waits until they are gone.
func (c *Cluster) Kill() {
	for _, b := range c.Brokers {
		_ = b.Kill()
	}
}

// LogTails is the end of every broker's current run's output, each
// formatted as Process.LogTail: in a cluster, the broker that explains a
// failure is often not the one that reported it.
func (c *Cluster) LogTails() string {
	var s strings.Builder
	for _, p := range c.Processes() {
		s.WriteString(p.LogTail())
	}
	return s.String()
}
