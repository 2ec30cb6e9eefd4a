package sedimenttc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The ports of a broker inside its container (deploy/Dockerfile).
const (
	KafkaPort = "9092/tcp" // Kafka listener
	HTTPPort  = "9644/tcp" // /metrics, /healthz, /readyz
)

// startupTimeout bounds the wait for a container to be ready; a broker is
// ready well within 3 s on an idle machine (make bench measures it), the rest
// is room for a loaded CI machine.
const startupTimeout = 60 * time.Second

// Container is a running Sediment broker, or the first broker of a cluster.
// Terminate removes every container and network Run created.
type Container struct {
	*testcontainers.DockerContainer

	// Brokers are every broker of the cluster, node 1 first (Brokers[0] is
	// the embedded container).
	Brokers []*testcontainers.DockerContainer
	// MinIO is the MinIO container of WithMinIO, nil without it.
	MinIO *testcontainers.DockerContainer
	// Network is the Docker network of a cluster or of WithMinIO, nil for a
	// single broker on Docker's default network.
	Network *testcontainers.DockerNetwork
}

// Run starts the brokers image describes (sediment:latest from `make image`)
// with opts, waits until each answers /readyz and its Kafka port, creates the
// topics of WithTopics and returns. On an error it removes whatever it
// started and returns a nil Container.
func Run(ctx context.Context, image string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	o := options{brokers: 1, settings: map[string]string{}}
	var generic []testcontainers.ContainerCustomizer
	for _, opt := range opts {
		if mo, ok := opt.(Option); ok {
			if err := mo(&o); err != nil {
				return nil, err
			}
			continue
		}
		generic = append(generic, opt)
	}
	c := &Container{}
	ok := false
	defer func() {
		if !ok {
			c.Terminate(context.WithoutCancel(ctx))
		}
	}()

	if o.brokers > 1 || o.minioImage != "" {
		nw, err := tcnetwork.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("sedimenttc: network: %w", err)
		}
		c.Network = nw
	}
	env := maps.Clone(o.settings)
	if o.minioImage != "" {
		m, err := runMinIO(ctx, o.minioImage, c.Network)
		if err != nil {
			return nil, err
		}
		c.MinIO = m
		for k, v := range minioBrokerEnv() {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}

	// Brokers start together: the founding etcd members of a cluster wait
	// for each other's quorum before any of them is ready.
	c.Brokers = make([]*testcontainers.DockerContainer, o.brokers)
	errs := make([]error, o.brokers)
	var wg sync.WaitGroup
	for i := range o.brokers {
		wg.Go(func() {
			c.Brokers[i], errs[i] = runBroker(ctx, image, c.Network, i+1, o.brokers, env, generic)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.DockerContainer = c.Brokers[0]
	if len(o.topics) > 0 {
		if err := c.createTopics(ctx, o.topics); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// brokerAlias is broker node's name on the network (its etcd peer URL's host).
func brokerAlias(node int) string { return "sediment-" + strconv.Itoa(node) }

// etcdMembers is how many of n brokers run an etcd member: 1, 3 or 5 (an
// odd quorum); the others join as etcd clients.
func etcdMembers(n int) int {
	switch {
	case n >= 5:
		return 5
	case n >= 3:
		return 3
	}
	return 1
}

// brokerEnv is the environment of broker node of n: the cluster's wiring,
// under the user's settings (which win).
func brokerEnv(node, n int, settings map[string]string) map[string]string {
	env := map[string]string{}
	if n > 1 {
		members := etcdMembers(n)
		var peers, clients []string
		for m := 1; m <= members; m++ {
			peers = append(peers, fmt.Sprintf("%d=http://%s:2380", m, brokerAlias(m)))
			clients = append(clients, fmt.Sprintf("http://%s:2379", brokerAlias(m)))
		}
		env["SEDIMENT_NODE_ID"] = strconv.Itoa(node)
		env["SEDIMENT_DEFAULT_REPLICATION_FACTOR"] = strconv.Itoa(min(n, 3))
		if node <= members {
			env["SEDIMENT_META_PEER_LISTEN"] = "0.0.0.0:2380"
			env["SEDIMENT_META_CLIENT_LISTEN"] = "0.0.0.0:2379"
			env["SEDIMENT_META_INITIAL_CLUSTER"] = strings.Join(peers, ",")
		} else {
			env["SEDIMENT_META_ENDPOINTS"] = strings.Join(clients, ",")
		}
	}
	maps.Copy(env, settings)
	return env
}

func runBroker(ctx context.Context, image string, nw *testcontainers.DockerNetwork, node, n int, settings map[string]string, generic []testcontainers.ContainerCustomizer) (*testcontainers.DockerContainer, error) {
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(KafkaPort, HTTPPort),
		testcontainers.WithEnv(brokerEnv(node, n, settings)),
		testcontainers.WithWaitStrategyAndDeadline(startupTimeout,
			wait.ForHTTP("/readyz").WithPort(HTTPPort).WithPollInterval(50*time.Millisecond),
			// A FROM scratch image has no shell for the internal check.
			wait.ForListeningPort(KafkaPort).SkipInternalCheck().WithPollInterval(50*time.Millisecond),
		),
	}
	if nw != nil {
		opts = append(opts, tcnetwork.WithNetwork([]string{brokerAlias(node)}, nw))
	}
	opts = append(opts, generic...)
	ctr, err := testcontainers.Run(ctx, image, opts...)
	if err != nil {
		if ctr != nil {
			ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("sedimenttc: broker %d: %w", node, err)
	}
	return ctr, nil
}

// SeedBroker is host:port of the first broker's Kafka listener, for a
// client's seed brokers (bootstrap.servers).
func (c *Container) SeedBroker(ctx context.Context) (string, error) {
	return c.PortEndpoint(ctx, KafkaPort, "")
}

// SeedBrokers is host:port of every broker's Kafka listener.
func (c *Container) SeedBrokers(ctx context.Context) ([]string, error) {
	var seeds []string
	for _, b := range c.Brokers {
		s, err := b.PortEndpoint(ctx, KafkaPort, "")
		if err != nil {
			return nil, err
		}
		seeds = append(seeds, s)
	}
	return seeds, nil
}

// MetricsURL is the URL of the first broker's Prometheus /metrics.
func (c *Container) MetricsURL(ctx context.Context) (string, error) {
	ep, err := c.PortEndpoint(ctx, HTTPPort, "http")
	if err != nil {
		return "", err
	}
	return ep + "/metrics", nil
}

// Terminate stops and removes every broker, the MinIO container and the
// network; it is safe on a partly started Container.
func (c *Container) Terminate(ctx context.Context, opts ...testcontainers.TerminateOption) error {
	if c == nil {
		return nil
	}
	// All brokers at once: stopped one by one, the last etcd members would
	// wait out their stop timeout without a quorum.
	errs := make([]error, len(c.Brokers), len(c.Brokers)+2)
	var wg sync.WaitGroup
	for i, b := range c.Brokers {
		if b != nil {
			wg.Go(func() { errs[i] = b.Terminate(ctx, opts...) })
		}
	}
	wg.Wait()
	if c.MinIO != nil {
		errs = append(errs, c.MinIO.Terminate(ctx, opts...))
	}
	if c.Network != nil {
		errs = append(errs, c.Network.Remove(ctx))
	}
	c.Brokers, c.MinIO, c.Network = nil, nil, nil
	return errors.Join(errs...)
}

// createTopics creates topics with the brokers' default partition count and
// replication factor; one that exists already is fine. Right after a
// cluster starts, the controller may not see every broker registered yet and
// answers INVALID_REPLICATION_FACTOR: such topics are tried again, for up to
// 30 s and no longer than ctx.
func (c *Container) createTopics(ctx context.Context, topics []string) error {
	giveUp := time.Now().Add(30 * time.Second)
	seeds, err := c.SeedBrokers(ctx)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		resps, err := adm.CreateTopics(ctx, -1, -1, nil, topics...)
		if err != nil {
			return fmt.Errorf("sedimenttc: creating topics: %w", err)
		}
		var errs []error
		var again []string
		for _, r := range resps.Sorted() {
			switch {
			case r.Err == nil, errors.Is(r.Err, kerr.TopicAlreadyExists):
			case errors.Is(r.Err, kerr.InvalidReplicationFactor) && len(c.Brokers) > 1:
				again = append(again, r.Topic)
				errs = append(errs, fmt.Errorf("sedimenttc: creating topic %s: %w", r.Topic, r.Err))
			default:
				errs = append(errs, fmt.Errorf("sedimenttc: creating topic %s: %w", r.Topic, r.Err))
			}
		}
		if len(again) == 0 || len(again) != len(errs) || time.Now().After(giveUp) {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-time.After(100 * time.Millisecond):
		}
		topics = again
	}
}
