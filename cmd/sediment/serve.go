package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sedimentio/sediment/broker"
	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/tierurl"
)

type serveFlags struct {
	config        string
	nodeID        int
	dataDir       string
	listen        string
	advertise     string
	httpAddr      string
	rack          string
	metaClient    string
	metaPeer      string
	metaCluster   string
	metaEndpoints string
	tier          string
	logLevel      string

	autoCreate     bool
	numPartitions  int
	replication    int
	segmentBytes   int64
	segmentMs      int64
	retentionMs    int64
	retentionBytes int64
	maxMessage     int
	flushPolicy    string
	requestMax     int
	retentionCheck time.Duration
	sessionTimeout time.Duration
	minISR         int
	replicaLag     time.Duration
	interBroker    string
	shutdownWait   time.Duration
	autoRebalance  bool
	imbalanceCheck time.Duration
	tierInterval   time.Duration
	tierTimeout    time.Duration
	tierGrace      time.Duration
	tierCompress   string
	tierCache      int64
	remoteWait     time.Duration
	localRetMs     int64
	localRetBytes  int64

	group   groupFlags
	txn     txnFlags
	authz   authzFlags
	sec     securityFlags
	cleaner cleanerFlags
}

func serveFlagSet(f *serveFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	d := broker.DefaultConfig()
	l := segment.DefaultConfig()
	fs.StringVar(&f.config, "config", "", "read settings from `FILE`, in Java's properties format (name=value, '#' comments): these flag names, or Kafka's server.properties names (node.id, listeners, log.dirs, log.retention.hours, ...); see README \"Configuration file\"")
	fs.IntVar(&f.nodeID, "node-id", 1, "this broker's id (node.id), unique in the cluster")
	fs.StringVar(&f.dataDir, "data-dir", "./data", "directory for partition logs (<topic>-<partition>/), etcd (meta/), meta.properties and a lock file")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9092", "Kafka listener HOST:PORT")
	fs.StringVar(&f.advertise, "advertise", "", "HOST:PORT clients are told to connect to (default: --listen; with --listen on 0.0.0.0 or ::, this host's own address, e.g. a container's on its network)")
	fs.StringVar(&f.httpAddr, "http", "127.0.0.1:9644", "HTTP listener HOST:PORT for /metrics, /healthz and /readyz (empty disables it)")
	fs.StringVar(&f.rack, "rack", "", "broker.rack of this broker")
	fs.StringVar(&f.metaClient, "meta-client-listen", "127.0.0.1:2379", "etcd client HOST:PORT of this broker's etcd member")
	fs.StringVar(&f.metaPeer, "meta-peer-listen", "127.0.0.1:2380", "etcd peer HOST:PORT of this broker's etcd member")
	fs.StringVar(&f.metaCluster, "meta-initial-cluster", "", "etcd members, e.g. 1=http://h1:2380,2=http://h2:2380,3=http://h3:2380 (default: this broker alone)")
	fs.StringVar(&f.metaEndpoints, "meta-endpoints", "", "comma-separated etcd client URLs: join as an etcd client and run no member")
	fs.StringVar(&f.tier, "tier", "", "object storage leaders upload sealed segments to: file:///path or s3://bucket/prefix?endpoint=...&region=...[&sign-payload=true] (S3 credentials from the AWS environment/config chain; uploads over http:// send UNSIGNED-PAYLOAD with a CRC32C checksum unless sign-payload=true). Empty: no tiering. Topics opt out with remote.storage.enable=false; local disk keeps local.retention.*")
	fs.StringVar(&f.tierCompress, "tier-compression", "auto", "none, zstd or auto: with zstd, uploaded .log objects become independently decompressible zstd frames with a frame index (ranged reads still work); auto does so for each segment whose bytes are mostly in uncompressed batches and uploads the others as they are")
	fs.DurationVar(&f.tierInterval, "tier-upload-interval", d.TierUploadInterval, "how often a leader looks for sealed segments to upload to --tier")
	fs.DurationVar(&f.tierTimeout, "tier-upload-timeout", d.TierUpload.UploadTimeout, "bound of the object writes of one segment upload; a slower upload is abandoned and tried again")
	fs.DurationVar(&f.tierGrace, "tier-orphan-grace", d.TierUpload.DeleteGrace, "how long the record of an abandoned upload is kept before its objects are deleted once more (catching writes that landed late); must exceed --tier-upload-timeout")
	fs.Int64Var(&f.tierCache, "tier-cache-bytes", d.TierCacheBytes, "bound of the on-disk cache of chunks read from --tier, in <data-dir>/tier-cache")
	fs.DurationVar(&f.remoteWait, "remote-fetch-max-wait", d.RemoteFetchMaxWait, "remote.fetch.max.wait.ms as a duration: how long a fetch waits for its reads from --tier before answering without them")
	fs.Int64Var(&f.localRetMs, "log-local-retention-ms", d.LocalRetentionMs, "log.local.retention.ms: default local.retention.ms of tiered topics (-2: their retention.ms)")
	fs.Int64Var(&f.localRetBytes, "log-local-retention-bytes", d.LocalRetentionBytes, "log.local.retention.bytes: default local.retention.bytes of tiered topics (-2: their retention.bytes)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	fs.BoolVar(&f.autoCreate, "auto-create-topics", d.AutoCreateTopics, "auto.create.topics.enable: create unknown topics on Metadata requests")
	fs.IntVar(&f.numPartitions, "num-partitions", int(d.NumPartitions), "num.partitions: partitions of auto-created topics and of CreateTopics without a count")
	fs.IntVar(&f.replication, "default-replication-factor", int(d.DefaultReplicationFactor), "default.replication.factor")
	fs.Int64Var(&f.segmentBytes, "log-segment-bytes", l.SegmentBytes, "log.segment.bytes: default segment.bytes of topics")
	fs.Int64Var(&f.segmentMs, "log-roll-ms", l.SegmentMs.Milliseconds(), "log.roll.ms: default segment.ms of topics")
	fs.Int64Var(&f.retentionMs, "log-retention-ms", l.RetentionMs.Milliseconds(), "log.retention.ms: default retention.ms of topics (-1: unlimited)")
	fs.Int64Var(&f.retentionBytes, "log-retention-bytes", l.RetentionBytes, "log.retention.bytes: default retention.bytes of topics (-1: unlimited)")
	fs.IntVar(&f.maxMessage, "message-max-bytes", l.MaxMessageBytes, "message.max.bytes: largest record batch a topic accepts by default")
	fs.StringVar(&f.flushPolicy, "flush-policy", "group-commit", "group-commit: acknowledge a produce only after an fdatasync covers it (one sync serves every batch waiting); os: leave flushing to the OS, as Kafka does. Topics override it with flush.messages (1 = group-commit)")
	fs.IntVar(&f.requestMax, "socket-request-max-bytes", int(d.SocketRequestMaxBytes), "socket.request.max.bytes: largest request frame accepted")
	fs.DurationVar(&f.retentionCheck, "log-retention-check-interval", d.RetentionCheckInterval, "log.retention.check.interval.ms as a duration")
	fs.DurationVar(&f.sessionTimeout, "broker-session-timeout", 9*time.Second, "broker.session.timeout.ms as a duration: how long a silent broker stays registered before the controller moves its leaderships")
	fs.IntVar(&f.minISR, "min-insync-replicas", d.MinInsyncReplicas, "min.insync.replicas: default for topics; acks=all produces fail with NOT_ENOUGH_REPLICAS below it")
	fs.DurationVar(&f.replicaLag, "replica-lag-time-max", d.ReplicaLagTimeMax, "replica.lag.time.max.ms as a duration: a follower not caught up for this long leaves the ISR")
	fs.StringVar(&f.interBroker, "inter-broker-listener-name", d.InterBrokerListener, "inter.broker.listener.name: the listener followers fetch from")
	fs.BoolVar(&f.autoRebalance, "auto-leader-rebalance", d.AutoLeaderRebalance, "auto.leader.rebalance.enable: the controller periodically gives leadership back to preferred replicas")
	fs.DurationVar(&f.imbalanceCheck, "leader-imbalance-check-interval", d.LeaderImbalanceCheckInterval, "leader.imbalance.check.interval.seconds as a duration")
	fs.DurationVar(&f.shutdownWait, "controlled-shutdown-timeout", d.ControlledShutdownTimeout, "how long SIGTERM waits for the controller to move this broker's leaderships away")
	f.group.register(fs, d)
	f.txn.register(fs, d)
	f.authz.register(fs, d)
	f.sec.register(fs, d)
	f.cleaner.register(fs, d)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sediment serve [--config FILE] [flags]\n\n"+
			"Runs one broker. With no flags: node 1, embedded single-member etcd, data in ./data,\n"+
			"Kafka on 127.0.0.1:9092, metrics on 127.0.0.1:9644.\n"+
			"Every flag also reads SEDIMENT_<NAME> (e.g. SEDIMENT_NODE_ID). Precedence: command-line flag,\n"+
			"then SEDIMENT_<NAME>, then the --config file (flag names or Kafka's server.properties names),\n"+
			"then the default.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

func serve(args []string) error {
	var f serveFlags
	fs := serveFlagSet(&f)
	if err := parseFlags(fs, args, &f.config); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}

	bcfg := broker.DefaultConfig()
	bcfg.NodeID = int32(f.nodeID)
	bcfg.Listen = f.listen
	bcfg.Advertise = f.advertise
	if f.advertise == "" {
		if bcfg.Advertise, err = defaultAdvertise(f.listen); err != nil {
			return err
		}
	}
	bcfg.Rack = f.rack
	bcfg.DataDir = f.dataDir
	bcfg.AutoCreateTopics = f.autoCreate
	bcfg.NumPartitions = int32(f.numPartitions)
	bcfg.DefaultReplicationFactor = int16(f.replication)
	bcfg.SocketRequestMaxBytes = int32(f.requestMax)
	bcfg.RetentionCheckInterval = f.retentionCheck
	bcfg.MinInsyncReplicas = f.minISR
	bcfg.ReplicaLagTimeMax = f.replicaLag
	bcfg.InterBrokerListener = f.interBroker
	bcfg.ControlledShutdownTimeout = f.shutdownWait
	bcfg.AutoLeaderRebalance = f.autoRebalance
	bcfg.TierUploadInterval = f.tierInterval
	bcfg.TierUpload.UploadTimeout, bcfg.TierUpload.DeleteGrace = f.tierTimeout, f.tierGrace
	bcfg.TierCacheBytes = f.tierCache
	bcfg.RemoteFetchMaxWait = f.remoteWait
	bcfg.LocalRetentionMs, bcfg.LocalRetentionBytes = f.localRetMs, f.localRetBytes
	switch f.tierCompress {
	case "none":
		bcfg.TierUpload.Compression = tier.CompressionNone
	case "zstd":
		bcfg.TierUpload.Compression = tier.CompressionZstdFrames
	case "auto":
		bcfg.TierUpload.Compression = tier.CompressionAuto
	default:
		return fmt.Errorf("--tier-compression %q: must be none, zstd or auto", f.tierCompress)
	}
	bcfg.LeaderImbalanceCheckInterval = f.imbalanceCheck
	bcfg.Log.SegmentBytes = f.segmentBytes
	bcfg.Log.SegmentMs = time.Duration(f.segmentMs) * time.Millisecond
	bcfg.Log.RetentionMs = time.Duration(f.retentionMs) * time.Millisecond
	if f.retentionMs < 0 {
		bcfg.Log.RetentionMs = -1
	}
	bcfg.Log.RetentionBytes = f.retentionBytes
	bcfg.Log.MaxMessageBytes = f.maxMessage
	switch f.flushPolicy {
	case "group-commit":
		bcfg.Log.Flush = segment.FlushGroupCommit
	case "os":
		bcfg.Log.Flush = segment.FlushOS
	default:
		return fmt.Errorf("--flush-policy %q: must be group-commit or os", f.flushPolicy)
	}
	if f.nodeID < 0 || f.nodeID > 1<<31-1 {
		return fmt.Errorf("--node-id %d out of range", f.nodeID)
	}
	if err := f.group.apply(&bcfg); err != nil {
		return err
	}
	if err := f.txn.apply(&bcfg); err != nil {
		return err
	}
	if err := f.authz.apply(&bcfg); err != nil {
		return err
	}
	if err := f.sec.apply(&bcfg); err != nil {
		return err
	}
	if err := f.cleaner.apply(&bcfg); err != nil {
		return err
	}
	if err := bcfg.Validate(); err != nil {
		return err
	}

	mcfg := meta.DefaultConfig()
	mcfg.NodeID = int32(f.nodeID)
	mcfg.Dir = filepath.Join(f.dataDir, "meta")
	mcfg.ClientListen = f.metaClient
	mcfg.PeerListen = f.metaPeer
	mcfg.InitialCluster = f.metaCluster
	if f.metaEndpoints != "" {
		mcfg.Endpoints = strings.Split(f.metaEndpoints, ",")
	}
	mcfg.SessionTTL = f.sessionTimeout
	if err := mcfg.Validate(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, logger, bcfg, mcfg, f.httpAddr, f.tier)
}

// run wires etcd, the metadata cache, the broker and the HTTP endpoints, and
// tears them down in reverse order when ctx ends.
func run(ctx context.Context, logger *slog.Logger, bcfg broker.Config, mcfg meta.Config, httpAddr, tierURL string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(bcfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(bcfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	node, err := meta.Start(startCtx, mcfg, logger.With("component", "meta"))
	if err != nil {
		return err
	}
	defer func() {
		if err := node.Close(); err != nil {
			logger.Error("closing etcd", "err", err)
		}
	}()
	store, err := meta.OpenStore(startCtx, node.Client(), logger.With("component", "meta"))
	if err != nil {
		return err
	}
	ident, err := loadOrCreateIdentity(bcfg.DataDir, store.ClusterID(), bcfg.NodeID)
	if err != nil {
		return err
	}
	cache, err := store.StartCache(context.Background()) // closed after Run: controlled shutdown still reads it
	if err != nil {
		return err
	}
	defer cache.Close()

	var tierStore tier.ObjectStore
	if tierURL != "" {
		if tierStore, err = tierurl.Open(startCtx, tierURL, logger.With("component", "tier")); err != nil {
			return fmt.Errorf("--tier: %w", err)
		}
		logger.Info("tiering on: leaders upload sealed segments below the high watermark", "tier", tierURL)
	}
	bcfg.DirectoryID = ident.directoryID
	bcfg.SessionTTL = mcfg.SessionTTL
	srv, err := broker.New(bcfg, broker.Deps{Logger: logger, Registerer: reg, Store: store, Cache: cache, Tier: tierStore})
	if err != nil {
		return err
	}

	if httpAddr != "" {
		stopHTTP, err := serveHTTP(httpAddr, reg, srv, logger)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}

	// The broker registers itself once its listener is up, and keeps the
	// registration (and its controller candidacy) until shutdown.
	return srv.Run(ctx)
}

// serveHTTP serves /metrics, /healthz, /readyz and pprof on addr until the
// returned stop is called; stop shuts the server down and waits for it.
func serveHTTP(addr string, reg *prometheus.Registry, srv *broker.Server, logger *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-srv.Ready():
			if srv.TieringStalled() {
				http.Error(w, "tiering stalled: uploads to the object store are failing", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http listener failed; metrics and health checks are gone", "addr", addr, "err", err)
		}
	}()
	logger.Info("http listener started", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
		<-done
	}, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
