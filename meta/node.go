package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
)

// maxRequestBytes is etcd's max-request-bytes for members we run, and the client's send
// limit: big enough for a CreateTopic txn of MaxTxnOps partitions, below etcd's 10 MiB warning.
const maxRequestBytes = 8 << 20

// initialClusterToken scopes raft messages to Sediment clusters; members bootstrapped with a
// different token refuse each other.
const initialClusterToken = "sediment"

// Node is this process's handle on etcd: an embedded member and a client connected to it, or
// only a client (Config.Endpoints). Safe for concurrent use.
type Node struct {
	cfg       Config
	log       *slog.Logger
	etcd      *embed.Etcd // nil for a client-only node
	cli       *clientv3.Client
	clientURL string

	// quiet demotes etcd's log entries to debug once shutdown starts: stopping servers makes
	// etcd log listener errors that are expected then.
	quiet atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts (or restarts, reusing cfg.Dir) an embedded etcd member and returns once the
// member has joined a quorum and serves requests, with a client connected to it. With
// cfg.Endpoints it runs no member and only dials those endpoints, checking that they answer.
//
// Start gives up when ctx is done or after cfg.StartTimeout. The founding members of a
// multi-member cluster must be started concurrently: none is ready before a quorum is up.
//
// etcd logs through logger at warn and above (nil: slog.Default()).
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: logger}
	if len(cfg.Endpoints) > 0 {
		if err := n.dial(ctx, cfg.Endpoints); err != nil {
			return nil, err
		}
		return n, nil
	}
	if err := n.startMember(ctx); err != nil {
		return nil, err
	}
	if err := n.dial(ctx, []string{n.clientURL}); err != nil {
		n.etcd.Close()
		return nil, err
	}
	return n, nil
}

// startMember configures and starts the embedded member and waits until it is ready.
func (n *Node) startMember(ctx context.Context) error {
	cfg := n.cfg
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("meta: starting etcd member: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("meta: creating etcd data dir: %w", err)
	}
	ec, err := n.embedConfig()
	if err != nil {
		return err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return fmt.Errorf("meta: starting etcd member %s in %s: %w", ec.Name, cfg.Dir, err)
	}

	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		n.abort(e)
		return fmt.Errorf("meta: etcd member %s failed while starting: %w", ec.Name, err)
	case <-e.Server.StopNotify():
		n.abort(e)
		return fmt.Errorf("meta: etcd member %s stopped while starting (see etcd errors in the log)", ec.Name)
	case <-ctx.Done():
		n.abort(e)
		return fmt.Errorf("meta: waiting for etcd member %s to be ready: %w", ec.Name, ctx.Err())
	case <-timer.C:
		n.abort(e)
		return fmt.Errorf("meta: etcd member %s not ready after %v: no quorum? initial cluster %q",
			ec.Name, cfg.StartTimeout, cfg.initialCluster())
	}
	n.etcd = e

	// With port 0 the advertised URL is useless for dialing; use the bound address.
	n.clientURL = ec.AdvertiseClientUrls[0].String()
	if ec.ListenClientUrls[0].Port() == "0" && len(e.Clients) > 0 {
		n.clientURL = "http://" + e.Clients[0].Addr().String()
	}
	n.log.Info("etcd member ready", "name", ec.Name, "dir", cfg.Dir, "client_url", n.clientURL,
		"member_id", e.Server.MemberID().String(), "cluster_state", ec.ClusterState)
	return nil
}

// abort stops a member that never became ready. embed.Etcd.Close alone would wait forever
// for client servers that only start once the member is ready; stopping the server first
// makes them give up.
func (n *Node) abort(e *embed.Etcd) {
	n.quiet.Store(true)
	e.Server.HardStop()
	e.Close()
}

// embedConfig translates Config into etcd's embed.Config.
func (n *Node) embedConfig() (*embed.Config, error) {
	cfg := n.cfg
	members, err := parseInitialCluster(cfg.initialCluster())
	if err != nil {
		return nil, err
	}
	clientAdvertise := cfg.ClientAdvertise
	if clientAdvertise == "" {
		clientAdvertise = cfg.ClientListen
	}

	ec := embed.NewConfig()
	ec.Name = cfg.memberName()
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{{Scheme: "http", Host: cfg.ClientListen}}
	ec.AdvertiseClientUrls = []url.URL{{Scheme: "http", Host: clientAdvertise}}
	ec.ListenPeerUrls = []url.URL{{Scheme: "http", Host: cfg.PeerListen}}
	// etcd requires the advertised peer URLs to equal this member's initial-cluster entry.
	ec.AdvertisePeerUrls = members[ec.Name]
	ec.InitialCluster = cfg.initialCluster()
	ec.InitialClusterToken = initialClusterToken

	// A data dir that already holds a WAL is a restart: etcd recovers membership from it and
	// ignores the initial cluster. Say "existing" so etcd never treats it as a new cluster.
	switch {
	case wal.Exist(filepath.Join(cfg.Dir, "member", "wal")):
		ec.ClusterState = embed.ClusterStateFlagExisting
	case cfg.JoinExisting:
		ec.ClusterState = embed.ClusterStateFlagExisting
	default:
		ec.ClusterState = embed.ClusterStateFlagNew
	}

	ec.Logger = "zap"
	ec.LogLevel = "warn"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapToSlog(n.log, &n.quiet))

	// Serve gRPC only: no JSON gateway, no metrics or pprof listeners. (etcd still registers
	// its metrics with the Prometheus default registry; Sediment's own use a passed registry.)
	ec.EnableGRPCGateway = false
	ec.EnablePprof = false
	ec.ListenMetricsUrls = nil
	ec.Metrics = "basic"

	ec.AutoCompactionMode = embed.CompactorModeRevision
	ec.AutoCompactionRetention = strconv.FormatInt(cfg.CompactionRetention, 10)
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	if cfg.MaxTxnOps > 0 {
		ec.MaxTxnOps = cfg.MaxTxnOps
	}
	ec.MaxRequestBytes = maxRequestBytes
	return ec, nil
}

// dial connects the client and probes the cluster with a linearizable read, so a Node is
// only returned when etcd has a quorum.
func (n *Node) dial(ctx context.Context, endpoints []string) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          endpoints,
		DialTimeout:        n.cfg.DialTimeout,
		Logger:             zapToSlog(n.log, &n.quiet),
		MaxCallSendMsgSize: maxRequestBytes + 1<<20,
		Context:            context.Background(),
	})
	if err != nil {
		return fmt.Errorf("meta: etcd client for %v: %w", endpoints, err)
	}
	pctx, cancel := context.WithTimeout(ctx, max(n.cfg.DialTimeout, n.cfg.StartTimeout))
	defer cancel()
	if _, err := cli.Get(pctx, ClusterIDKey); err != nil {
		cli.Close()
		return fmt.Errorf("meta: etcd at %v does not answer: %w", endpoints, err)
	}
	n.cli = cli
	return nil
}

// Client returns the etcd client. It is closed by Close.
func (n *Node) Client() *clientv3.Client { return n.cli }

// IsMember reports whether this node runs an etcd member (false: client only).
func (n *Node) IsMember() bool { return n.etcd != nil }

// ClientURL is the URL the client dials for an embedded member ("" for a client-only node).
func (n *Node) ClientURL() string { return n.clientURL }

// MemberID returns the etcd member id of the embedded member, 0 for a client-only node.
func (n *Node) MemberID() uint64 {
	if n.etcd == nil {
		return 0
	}
	return uint64(n.etcd.Server.MemberID())
}

// Err delivers fatal errors of the embedded member's servers; nil (blocks forever) for a
// client-only node. The channel is closed by Close.
func (n *Node) Err() <-chan error {
	if n.etcd == nil {
		return nil
	}
	return n.etcd.Err()
}

// Close closes the client and then stops the embedded member gracefully (a leader hands its
// leadership over first). Safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.cli != nil {
			if err := n.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
				n.closeErr = fmt.Errorf("meta: closing etcd client: %w", err)
			}
		}
		if n.etcd != nil {
			n.quiet.Store(true)
			n.etcd.Close()
			n.log.Info("etcd member stopped", "name", n.cfg.memberName())
		}
	})
	return n.closeErr
}
