package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/vfs"
	"github.com/sedimentio/sediment/tier"
)

// Lock order (a lock may be taken while holding those to its left, never the
// other way round):
//
//	Manager.reconcileMu → Manager.mu → Partition.mu
//
// Manager.mu guards only the map of local partitions: nothing does I/O while
// holding it. reconcileMu serialises reconcile passes, which open, delete and
// re-role logs (I/O) on the worker pool, and Close; a partition's role
// changes only within a pass, by one task at a time. Partition.remoteMu is
// taken alone (around an etcd read of the tier's state), and so is the log
// cleaner's cleaner.mu (clean.go). The metadata cache's
// lock, the log's own locks (segment/log.go) and repl's (repl/manager.go) are
// below all of these.

// Config is the partition layer's static configuration.
type Config struct {
	NodeID  int32
	DataDir string // partition directories live directly below it
	// ReplicaLagTimeMax is replica.lag.time.max.ms: a follower that has not
	// caught up for this long leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// RetentionCheckInterval is log.retention.check.interval.ms; it also
	// drives segment.ms rolls.
	RetentionCheckInterval time.Duration
	// TierUpload is the template of each partition's uploader config (the
	// partition fields are filled in per partition); TierUploadInterval is
	// how often a leader looks for sealed segments to upload.
	TierUpload         tier.UploaderConfig
	TierUploadInterval time.Duration
	// TierCacheBytes bounds the on-disk chunk cache of remote reads
	// (<DataDir>/tier-cache).
	TierCacheBytes int64
	// Workers bounds the goroutines doing per-partition background work at
	// once: opening and recovering logs, role changes, ISR writes to etcd,
	// retention and time-based rolls.
	Workers int
	// Cleaner is the log cleaner of compacted topics (clean.go).
	Cleaner CleanerConfig
}

// DefaultConfig is Kafka's defaults for one broker.
func DefaultConfig() Config {
	up := tier.DefaultUploaderConfig()
	up.Compression = tier.CompressionAuto
	return Config{
		NodeID:                 1,
		DataDir:                "./data",
		ReplicaLagTimeMax:      30 * time.Second,
		RetentionCheckInterval: 5 * time.Minute,
		TierUpload:             up,
		TierUploadInterval:     5 * time.Second,
		TierCacheBytes:         1 << 30,
		Workers:                8,
		Cleaner:                DefaultCleanerConfig(),
	}
}

// Validate names the first problem it finds.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("partition: node id %d is negative", c.NodeID)
	case c.DataDir == "":
		return errors.New("partition: data dir is empty")
	case c.ReplicaLagTimeMax <= 0:
		return fmt.Errorf("partition: replica.lag.time.max.ms %v must be positive", c.ReplicaLagTimeMax)
	case c.RetentionCheckInterval <= 0:
		return fmt.Errorf("partition: log.retention.check.interval.ms %v must be positive", c.RetentionCheckInterval)
	case c.TierUploadInterval <= 0:
		return fmt.Errorf("partition: tier upload interval %v must be positive", c.TierUploadInterval)
	case c.TierCacheBytes < 0:
		return fmt.Errorf("partition: tier cache bytes %d is negative", c.TierCacheBytes)
	case c.Workers < 1:
		return fmt.Errorf("partition: workers %d must be at least 1", c.Workers)
	}
	if err := c.Cleaner.Validate(); err != nil {
		return err
	}
	probe := c.TierUpload
	probe.TopicID = [16]byte{1}
	if err := probe.Validate(); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	return nil
}

// TopicSettings are a topic's configs as the partition layer uses them,
// resolved against the broker defaults by the caller (broker/configs.go
// owns the config names).
type TopicSettings struct {
	Log               segment.Config
	MinInsyncReplicas int32 // min.insync.replicas
	// Tiered is remote.storage.enable with an object store configured.
	Tiered bool
	// LocalRetention and LocalRetentionBytes are local.retention.ms and
	// .bytes resolved (-2 already replaced by retention.*; negative:
	// unlimited); they apply when Tiered.
	LocalRetention      time.Duration
	LocalRetentionBytes int64
}

// Deps are the partition layer's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Store      *meta.Store
	Cache      *meta.Cache
	// Tier, when set, is the object store leaders upload sealed segments to
	// and remote reads come from.
	Tier tier.ObjectStore
	// Resolve gives followers the inter-broker address of a leader.
	Resolve repl.Resolver
	// ReplConfig, when set, adjusts the followers' connection settings
	// (inter-broker TLS and SASL).
	ReplConfig func(*repl.Config)
	// Settings resolves a topic's configs; required.
	Settings func(meta.Topic) (TopicSettings, error)
	// FS holds the partitions' logs; nil means the operating system's.
	// Tests pass a vfs.MemFS to simulate power loss.
	FS vfs.FS
	// Roles, when set, hears when this broker starts and stops leading a
	// partition: the coordinators load and drop their state then.
	Roles RoleObserver
}

// RoleObserver hears of leadership changes. Its methods are called from
// reconcile passes and must not block.
type RoleObserver interface {
	// Elected: this broker now leads p in epoch.
	Elected(p *Partition, epoch int32)
	// Resigned: this broker's term over p ended (or p was removed).
	Resigned(p *Partition)
}

// Manager opens, re-roles, reconfigures and removes the local partitions so
// that they follow the topics and partition states in etcd (through the
// metadata cache), and runs their background work: flushers, ISR upkeep,
// retention, time-based rolls, the log cleaner of compacted topics, and with a
// tier the uploaders. It owns the
// follower fetchers (repl.Manager) and the tier reader.
//
// Safe for concurrent use.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	store    *meta.Store
	cache    *meta.Cache
	settings func(meta.Topic) (TopicSettings, error)
	fs       vfs.FS
	roles    RoleObserver
	repl     *repl.Manager

	tierStore    tier.ObjectStore // nil: tiering off
	tierReader   *tier.Reader
	tierMetrics  *tier.UploaderMetrics
	tierStalled  prometheus.Gauge
	stalledParts atomic.Int32 // partitions whose uploads are failing

	cleaner *cleaner // compacted logs (clean.go)
	kafka   *kafkaMetrics

	// ctx lives until Close: flushers, terms and pool work run under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // flushers and uploaders
	pool   pool
	// flushMu orders starting a flusher (on m.wg, from any appending
	// goroutine) before Close's wait for m.wg; flushStopped is set by Close.
	flushMu      sync.RWMutex
	flushStopped bool

	reconcileMu sync.Mutex
	mu          sync.RWMutex
	topics      map[string]*topicParts
}

type topicParts struct {
	id    meta.TopicID
	parts []*Partition // by index; nil where this broker hosts no replica
}

// uploadTempDir, below the data directory, holds the compressed copies of
// segments while they upload (tier.UploaderConfig.TempDir).
const uploadTempDir = "tier-upload"

// New opens the partitions the metadata cache says this broker hosts
// (recovering their logs) and takes up their roles. Run keeps them in step
// afterwards; Close stops everything.
func New(cfg Config, d Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Cache == nil || d.Settings == nil || d.Resolve == nil {
		return nil, errors.New("partition: metadata store, cache, settings and resolver are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if d.FS == nil {
		d.FS = vfs.OS{}
	}
	if err := vfs.MkdirAllDurable(d.FS, cfg.DataDir); err != nil {
		return nil, fmt.Errorf("partition: data dir: %w", err)
	}
	if d.Tier != nil && cfg.TierUpload.TempDir == "" {
		// Compressed copies of segments being uploaded go under the data
		// directory, not os.TempDir(): a FROM scratch container has no
		// /tmp, and a crash's leftovers are removed here.
		dir := filepath.Join(cfg.DataDir, uploadTempDir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("partition: upload staging dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("partition: upload staging dir: %w", err)
		}
		cfg.TierUpload.TempDir = dir
	}
	m := &Manager{
		cfg: cfg, log: d.Logger, store: d.Store, cache: d.Cache, settings: d.Settings, fs: d.FS, roles: d.Roles,
		tierStore: d.Tier,
		topics:    make(map[string]*topicParts),
		pool:      pool{sem: make(chan struct{}, cfg.Workers)},
	}
	m.tierStalled = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "sediment", Subsystem: "tier", Name: "upload_stalled",
		Help: "1 while uploading sealed segments to the object store fails and is being retried.",
	})
	if err := d.Registerer.Register(m.tierStalled); err != nil {
		return nil, fmt.Errorf("partition: metrics: %w", err)
	}
	if err := d.Registerer.Register(lsoCollector{m}); err != nil {
		return nil, fmt.Errorf("partition: metrics: %w", err)
	}
	km, err := newKafkaMetrics(m, d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("partition: metrics: %w", err)
	}
	m.kafka = km
	cl, err := newCleaner(cfg.Cleaner, d.Registerer)
	if err != nil {
		return nil, err
	}
	m.cleaner = cl
	if d.Tier != nil {
		var err error
		if m.tierMetrics, err = tier.NewUploaderMetrics(d.Registerer); err != nil {
			return nil, err
		}
		rcfg := tier.DefaultReaderConfig(filepath.Join(cfg.DataDir, "tier-cache"))
		rcfg.CacheBytes = cfg.TierCacheBytes
		if m.tierReader, err = tier.NewReader(d.Tier, rcfg, d.Logger.With("component", "tier"), d.Registerer); err != nil {
			return nil, err
		}
	}
	rcfg := repl.DefaultConfig()
	rcfg.NodeID = cfg.NodeID
	rcfg.ClientID = fmt.Sprintf("sediment-replica-%d", cfg.NodeID)
	if d.ReplConfig != nil {
		d.ReplConfig(&rcfg)
	}
	rm, err := repl.NewManager(rcfg, d.Resolve, d.Logger.With("component", "repl"), d.Registerer)
	if err != nil {
		if m.tierReader != nil {
			m.tierReader.Close()
		}
		return nil, err
	}
	m.repl = rm
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.cleaner.start(m)
	if err := m.Reconcile(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// TopicStats returns the per-topic counters the Kafka edge adds to (bytes
// out, remote fetches).
func (m *Manager) TopicStats() *TopicStats { return m.kafka.topics }

// Get returns the local partition or nil.
func (m *Manager) Get(topic string, part int32) *Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tp := m.topics[topic]
	if tp == nil || part < 0 || int(part) >= len(tp.parts) {
		return nil
	}
	return tp.parts[part]
}

// All returns every local partition.
func (m *Manager) All() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Partition
	for _, tp := range m.topics {
		for _, p := range tp.parts {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// Leader returns the local partition if this broker leads it. epoch is the
// leader epoch the requester expects (-1: any): an older one gets
// ErrFencedLeaderEpoch, a newer one ErrUnknownLeaderEpoch (this broker may be
// about to take the leadership over). Otherwise ErrNotLeader, or
// ErrUnknownTopicOrPartition when the metadata names no such partition.
func (m *Manager) Leader(topic string, part int32, epoch int32) (*Partition, error) {
	p := m.Get(topic, part)
	if p != nil {
		if l := p.leader(); l != nil {
			switch cur := l.Epoch(); {
			case epoch < 0 || epoch == cur:
				return p, nil
			case epoch < cur:
				return nil, ErrFencedLeaderEpoch
			default:
				return nil, ErrUnknownLeaderEpoch
			}
		}
		if epoch > p.leaderEpoch.Load() {
			return nil, ErrUnknownLeaderEpoch
		}
	}
	n, ok := m.cache.PartitionCount(topic) // no copy of the topic per partition of a request
	if !ok || part < 0 || int(part) >= n {
		return nil, ErrUnknownTopicOrPartition
	}
	return nil, ErrNotLeader
}

// TieringStalled reports whether uploads to the object store are failing
// for any partition.
func (m *Manager) TieringStalled() bool {
	return m.tierStore != nil && m.stalledParts.Load() > 0
}

// Tiering reports whether an object store is configured.
func (m *Manager) Tiering() bool { return m.tierStore != nil }

// setStalled records whether p's uploads are failing. Tiering is stalled
// while any partition's are: an idle partition's quiet success says nothing
// about the store.
func (m *Manager) setStalled(p *Partition, v bool) {
	if p.stalled.Swap(v) == v {
		return
	}
	d := int32(-1)
	if v {
		d = 1
	}
	if m.stalledParts.Add(d) > 0 {
		m.tierStalled.Set(1)
	} else {
		m.tierStalled.Set(0)
	}
}

// Run reconciles on every metadata change and keeps the partitions' upkeep
// going (ISR changes, retention, time-based rolls) until ctx is done. The
// upkeep runs on the worker pool, one task per partition at a time, so one
// slow partition (or a slow etcd write) holds up no other.
func (m *Manager) Run(ctx context.Context) {
	ch, cancel := m.cache.Subscribe()
	defer cancel()
	retention := time.NewTicker(m.cfg.RetentionCheckInterval)
	defer retention.Stop()
	roll := time.NewTicker(min(m.cfg.RetentionCheckInterval, 10*time.Second))
	defer roll.Stop()
	isr := time.NewTicker(isrCheckInterval(m.cfg.ReplicaLagTimeMax))
	defer isr.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := m.Reconcile(); err != nil {
				m.log.Error("reconciling local partitions with metadata", "err", err)
			}
		case <-isr.C:
			for _, p := range m.All() {
				if l := p.leader(); l != nil {
					if _, changed := m.proposeISR(p, l); changed {
						m.pool.once(m.ctx, &p.isrBusy, func() { m.maybeChangeISR(p) })
					}
				}
			}
		case <-roll.C:
			m.pool.each(m.ctx, m.All(), func(p *Partition) *atomic.Bool { return &p.rollBusy }, func(p *Partition) {
				if err := p.log.MaybeRoll(); err != nil {
					m.log.Error("time-based roll failed", "partition", p.String(), "err", err)
				}
			})
		case <-retention.C:
			m.pool.each(m.ctx, m.All(), func(p *Partition) *atomic.Bool { return &p.retentionBusy }, m.retain)
		}
	}
}

// Close stops the fetchers, uploaders, flushers and pool work, and syncs and
// closes every log.
func (m *Manager) Close() error {
	m.repl.Close()
	m.cancel()
	// A pass in flight finishes (its new terms see the cancelled context);
	// later ones return ErrClosed.
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	m.flushMu.Lock()
	m.flushStopped = true
	m.flushMu.Unlock()
	m.pool.wait()
	m.wg.Wait()
	if m.tierReader != nil {
		m.tierReader.Close()
	}
	m.mu.Lock()
	var parts []*Partition
	for _, tp := range m.topics {
		for _, p := range tp.parts {
			if p != nil {
				parts = append(parts, p)
			}
		}
	}
	m.topics = map[string]*topicParts{}
	m.mu.Unlock()
	// Closing a log syncs its tail, indexes and producer snapshot: a few
	// fsyncs each, so thousands of partitions closed one after the other
	// outlast any shutdown timeout (10,000 took over 30 s). They are
	// independent: close them closeParallelism at a time.
	var (
		errMu sync.Mutex
		errs  []error
	)
	fanOut(closeParallelism, tasks(parts, func(p *Partition) {
		p.markClosed()
		if err := p.log.Close(); err != nil {
			errMu.Lock()
			errs = append(errs, fmt.Errorf("closing %s: %w", p, err))
			errMu.Unlock()
		}
	}))
	return errors.Join(errs...)
}

// closeParallelism is how many logs Close closes at a time: their fsyncs
// overlap in the disk's queue and the file system's journal commits.
const closeParallelism = 32

// fanOut runs every task on at most n goroutines and waits for them: one
// goroutine per task would hold thousands of stacks at once when a topic
// of thousands of partitions is created or the broker stops.
func fanOut(n int, tasks []func()) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(n, len(tasks)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(tasks)); i = next.Add(1) - 1 {
				tasks[i]()
			}
		})
	}
	wg.Wait()
}

// pool runs per-partition background work on at most cap(sem) goroutines at
// a time. Its goroutines are owned by the Manager, which waits for them in
// Close.
type pool struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

// once runs fn on the pool unless the previous fn guarded by busy is still
// queued or running.
func (w *pool) once(ctx context.Context, busy *atomic.Bool, fn func()) {
	if !busy.CompareAndSwap(false, true) {
		return
	}
	w.wg.Go(func() { w.held(ctx, busy, fn) })
}

// held runs fn holding a slot of the pool, unless ctx ends first, and then
// clears busy.
func (w *pool) held(ctx context.Context, busy *atomic.Bool, fn func()) {
	defer busy.Store(false)
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-w.sem }()
	fn()
}

// each runs fn for every partition of ps on the pool, at most cap(sem) at a
// time, without waiting; a partition whose previous task of the kind (its
// busy flag) is still queued or running is skipped. Unlike once per
// partition, it starts one goroutine per cap(sem) tasks, not one per
// partition: a tick over 10,000 idle partitions would otherwise park 10,000
// goroutines (80 MiB of stacks) on the pool every time.
func (w *pool) each(ctx context.Context, ps []*Partition, busy func(*Partition) *atomic.Bool, fn func(*Partition)) {
	var todo []func()
	for _, p := range ps {
		if b := busy(p); b.CompareAndSwap(false, true) {
			todo = append(todo, func() { w.held(ctx, b, func() { fn(p) }) })
		}
	}
	if len(todo) > 0 {
		w.wg.Go(func() { fanOut(cap(w.sem), todo) })
	}
}

// all runs every task on the pool and waits for them.
func (w *pool) all(tasks []func()) {
	held := make([]func(), len(tasks))
	for i, t := range tasks {
		held[i] = func() {
			w.sem <- struct{}{}
			defer func() { <-w.sem }()
			t()
		}
	}
	fanOut(cap(w.sem), held)
}

func (w *pool) wait() { w.wg.Wait() }
