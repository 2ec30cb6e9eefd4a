package repl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Log is what a follower needs of its local replica. *segment.Log satisfies it.
//
// The Manager calls these methods only from fetcher goroutines, for one partition at a
// time, never after Unfollow for that partition returned.
//
// If the Log also has DeleteRecordsBefore(offset int64) (int64, error), the follower raises
// its log start offset to the leader's (DeleteRecords and retention on the leader reach the
// follower, as in Kafka); *segment.Log has it.
type Log interface {
	LogStartOffset() int64
	LogEndOffset() int64
	// AppendFollower appends batches with leader-assigned offsets; the first batch's base
	// offset must be at or after LogEndOffset() (compaction leaves gaps).
	AppendFollower(records []byte) error
	// TruncateTo drops every batch at or above offset (a batch straddling it goes whole).
	TruncateTo(offset int64) error
	// TruncateFullyAndStartAt empties the log and makes offset its start and end.
	TruncateFullyAndStartAt(offset int64) error
	// LatestEpoch is the latest leader epoch in the epoch cache, -1 when it is empty.
	LatestEpoch() int32
	// EndOffsetForEpoch is OffsetForLeaderEpoch on the local log (KIP-101/279): the largest
	// epoch <= epoch and the start offset of the epoch after it (the log end offset for the
	// latest epoch); (-1, -1) when unknown.
	EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64)
}

// logStartRaiser is the optional part of Log that follows the leader's log start offset.
type logStartRaiser interface {
	DeleteRecordsBefore(offset int64) (int64, error)
}

// Replica is a partition this broker follows.
type Replica struct {
	Topic       string
	TopicID     [16]byte
	Partition   int32
	Leader      int32 // broker id of the leader
	LeaderEpoch int32
	Log         Log
	// SetHighWatermark, if not nil, receives min(leader's high watermark, local log end
	// offset) after every fetch response for this partition. It is called from a fetcher
	// goroutine while the partition's log is held: it must not call Follow or Unfollow.
	SetHighWatermark func(hw int64)
}

// PartitionKey identifies a followed partition.
type PartitionKey struct {
	TopicID   [16]byte
	Partition int32
}

// Resolver maps a broker id to the address ("host:port") of its inter-broker listener;
// false while the address is unknown. It is called before every connection attempt, so a
// leader that moved is found again.
type Resolver func(brokerID int32) (string, bool)

// Config configures a Manager. Field comments name the Kafka broker config each
// implements.
type Config struct {
	NodeID            int32         // node.id: this broker, sent as the fetch's replica id
	ClientID          string        // client id of replica connections; "" means "sediment-replica-<NodeID>"
	MaxWait           time.Duration // replica.fetch.wait.max.ms
	MinBytes          int32         // replica.fetch.min.bytes
	MaxBytes          int32         // replica.fetch.response.max.bytes
	PartitionMaxBytes int32         // replica.fetch.max.bytes
	// Backoff is replica.fetch.backoff.ms: the wait after a failed connection or a partition
	// error. It doubles on each consecutive failure, up to 10×Backoff.
	Backoff       time.Duration
	DialTimeout   time.Duration // connection setup timeout
	SocketTimeout time.Duration // replica.socket.timeout.ms: a response may take MaxWait plus this
	// Dial, when set, opens connections to leaders (e.g. TLS to an SSL inter-broker
	// listener); nil dials plain TCP. SASL, when set, authenticates each connection and
	// re-authenticates it before its session expires (KIP-368; sasl.go).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	SASL sasl.Mechanism
}

// backoffCap is how many times Backoff repeated failures wait at most.
const backoffCap = 10

// DefaultConfig returns Kafka's defaults (NodeID 0).
func DefaultConfig() Config {
	return Config{
		MaxWait:           500 * time.Millisecond,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		PartitionMaxBytes: 1 << 20,
		Backoff:           time.Second,
		DialTimeout:       10 * time.Second,
		SocketTimeout:     30 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("repl: NodeID %d is negative", c.NodeID)
	case c.MaxWait <= 0 || c.MaxWait.Milliseconds() > 1<<31-1:
		return fmt.Errorf("repl: MaxWait %v out of range", c.MaxWait)
	case c.MinBytes < 0:
		return fmt.Errorf("repl: MinBytes %d is negative", c.MinBytes)
	case c.MaxBytes <= 0 || c.MaxBytes > maxResponseSize:
		return fmt.Errorf("repl: MaxBytes %d out of range (1..%d)", c.MaxBytes, maxResponseSize)
	case c.PartitionMaxBytes <= 0:
		return fmt.Errorf("repl: PartitionMaxBytes %d must be positive", c.PartitionMaxBytes)
	case c.Backoff <= 0:
		return fmt.Errorf("repl: Backoff %v must be positive", c.Backoff)
	case c.DialTimeout <= 0:
		return fmt.Errorf("repl: DialTimeout %v must be positive", c.DialTimeout)
	case c.SocketTimeout <= 0:
		return fmt.Errorf("repl: SocketTimeout %v must be positive", c.SocketTimeout)
	}
	return nil
}

// Manager runs the follower side of replication (Kafka's ReplicaFetcherManager): one
// fetcher goroutine and one connection per leader broker, each fetching every partition
// this broker follows from that leader.
//
// Safe for concurrent use.
//
// Lock order: Manager.mu → fetcher.mu. A partition's slot.mu (held while its log is read
// or written) is never held together with Manager.mu, and fetcher.mu is never taken while
// a slot.mu is held.
type Manager struct {
	cfg     Config
	resolve Resolver
	logger  *slog.Logger
	metrics *metrics

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetcher goroutines

	mu       sync.Mutex
	closed   bool
	fetchers map[int32]*fetcher // by leader id; only fetchers with partitions
	parts    map[PartitionKey]*followed
}

// followed is the Manager's record of one followed partition.
type followed struct {
	r       Replica
	slot    *slot
	fetcher *fetcher
}

// slot serialises every access to one partition's log by fetchers, across leader changes.
// A fetcher may touch the log only while it holds mu and gen still equals the generation
// its work item was created with; Follow and Unfollow bump gen, so work that was in flight
// becomes a no-op, and Unfollow then takes mu once to wait out an access in progress.
type slot struct {
	mu      sync.Mutex
	gen     atomic.Uint64
	stopped atomic.Bool  // the leader refused us at this epoch; waiting for a new Follow
	lag     atomic.Int64 // leader's high watermark minus our log end, after the last fetch
	hw      atomic.Int64 // the high watermark last given to SetHighWatermark, -1 before
}

// NewManager returns a Manager that dials leaders at the addresses resolve gives and
// registers its metrics on reg (a new registry when nil).
func NewManager(cfg Config, resolve Resolver, logger *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if resolve == nil {
		return nil, errors.New("repl: nil Resolver")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("sediment-replica-%d", cfg.NodeID)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Manager{
		cfg:      cfg,
		resolve:  resolve,
		logger:   logger,
		fetchers: make(map[int32]*fetcher),
		parts:    make(map[PartitionKey]*followed),
	}
	met, err := newMetrics(reg, m.maxLag)
	if err != nil {
		return nil, err
	}
	m.metrics = met
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Follow starts replicating r from r.Leader, or restarts it when the leader or the leader
// epoch changed (moving it to the new leader's fetcher) or when the old leader had refused
// it. It returns at once. r.Leader must be another broker. Before fetching, the follower truncates a divergent tail
// (KIP-101/279). Follow with the leader and epoch already being followed is a no-op.
//
// The previous Replica's log is not touched once Follow returns, except that an access
// already in progress may finish; accesses for the new Replica wait for it.
func (m *Manager) Follow(r Replica) {
	if r.Log == nil || r.Leader < 0 || r.Leader == m.cfg.NodeID {
		// A partition without a leader, or led here, is not followed: Unfollow it.
		m.logger.Error("repl: Follow refused: no log, no leader, or this broker leads", "topic", r.Topic,
			"partition", r.Partition, "leader", r.Leader)
		return
	}
	key := PartitionKey{TopicID: r.TopicID, Partition: r.Partition}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	cur := m.parts[key]
	var s *slot
	if cur != nil {
		if cur.r.Leader == r.Leader && cur.r.LeaderEpoch == r.LeaderEpoch && !cur.slot.stopped.Load() {
			return
		}
		s = cur.slot
		if cur.fetcher.leader != r.Leader {
			m.detachLocked(key, cur.fetcher)
		}
	} else {
		s = new(slot)
		s.hw.Store(-1)
	}
	gen := s.gen.Add(1)
	s.stopped.Store(false)
	f := m.fetchers[r.Leader]
	if f == nil {
		f = m.startFetcherLocked(r.Leader)
	}
	f.add(&fpart{key: key, slot: s, gen: gen, r: r, state: stateTruncating})
	m.parts[key] = &followed{r: r, slot: s, fetcher: f}
	m.metrics.partitions.Set(float64(len(m.parts)))
	m.logger.Info("repl: following", "topic", r.Topic, "partition", r.Partition, "leader", r.Leader, "leader_epoch", r.LeaderEpoch)
}

// Unfollow stops replicating the partition. It returns once no fetcher is applying a
// response to (or otherwise using) its log, and none will again: the caller may then
// truncate it, append to it as leader, or delete it.
func (m *Manager) Unfollow(topicID [16]byte, partition int32) {
	key := PartitionKey{TopicID: topicID, Partition: partition}
	m.mu.Lock()
	cur := m.parts[key]
	if cur == nil {
		m.mu.Unlock()
		return
	}
	delete(m.parts, key)
	cur.slot.gen.Add(1)
	m.detachLocked(key, cur.fetcher)
	m.metrics.partitions.Set(float64(len(m.parts)))
	m.mu.Unlock()
	// Wait out an access in progress; later ones see the new generation and back off.
	cur.slot.mu.Lock()
	cur.slot.mu.Unlock() // empty on purpose: only the wait matters
	m.logger.Info("repl: unfollowed", "topic", cur.r.Topic, "partition", partition)
}

// Close stops every fetcher and waits for them. Logs are not touched after Close returns.
func (m *Manager) Close() {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for _, p := range m.parts {
			p.slot.gen.Add(1)
		}
		clear(m.parts)
		clear(m.fetchers)
		m.metrics.partitions.Set(0)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Lag returns, per followed partition, how far its log end offset was behind the leader's
// high watermark after the last fetch response (0 when caught up or not yet fetched).
func (m *Manager) Lag() map[PartitionKey]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[PartitionKey]int64, len(m.parts))
	for k, p := range m.parts {
		out[k] = p.slot.lag.Load()
	}
	return out
}

func (m *Manager) maxLag() float64 {
	var lag int64
	for _, l := range m.Lag() {
		lag = max(lag, l)
	}
	return float64(lag)
}

// detachLocked removes key from f and retires f when it has no partitions left. mu held.
func (m *Manager) detachLocked(key PartitionKey, f *fetcher) {
	if f.remove(key) == 0 && m.fetchers[f.leader] == f {
		delete(m.fetchers, f.leader)
		f.cancel()
	}
}

func (m *Manager) startFetcherLocked(leader int32) *fetcher {
	ctx, cancel := context.WithCancel(m.ctx)
	f := &fetcher{
		m:      m,
		leader: leader,
		logger: m.logger.With("leader", leader),
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		parts:  make(map[PartitionKey]*fpart),
	}
	m.fetchers[leader] = f
	m.wg.Add(1)
	go f.run(ctx)
	return f
}

type metrics struct {
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	bytes       byteCounters
	truncations *prometheus.CounterVec
	partitions  prometheus.Gauge
	connections prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, maxLag func() float64) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "sediment", Subsystem: "repl", Name: name, Help: help}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("fetch_requests_total",
			"Requests sent to leaders by replica fetchers, by API (Fetch, OffsetForLeaderEpoch).")), []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("fetch_errors_total",
			"Replica fetch failures: connection, local (the follower's log refused a write) or the leader's Kafka error name.")), []string{"error"}),
		bytes: byteCounters{
			prometheus.NewCounter(prometheus.CounterOpts(opts("fetch_bytes_total",
				"Record batch bytes appended to follower logs."))),
			prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_server_brokertopicmetrics_replicationbytesin_total",
				Help: "Record batch bytes appended to follower logs (Kafka's ReplicationBytesInPerSec)."}),
		},
		truncations: prometheus.NewCounterVec(prometheus.CounterOpts(opts("truncations_total",
			"Follower log truncations: divergence (leader epochs, KIP-101/279), out_of_range (ahead of the leader), reset (behind the leader's log start).")), []string{"reason"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts(opts("partitions",
			"Partitions this broker follows."))),
		connections: prometheus.NewGauge(prometheus.GaugeOpts(opts("connections",
			"Open connections to leaders."))),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("max_lag_messages",
		"Largest lag, in offsets, of a followed partition behind its leader's high watermark.")), maxLag)
	// Kafka's kafka.server:type=ReplicaFetcherManager,name=MaxLag,clientId=Replica,
	// as the JMX exporter's rules name it.
	kafkaLag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_server_replicafetchermanager_maxlag",
		Help:        "Largest lag, in offsets, of a followed partition behind its leader (Kafka's ReplicaFetcherManager MaxLag).",
		ConstLabels: prometheus.Labels{"clientid": "Replica"}}, maxLag)
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.bytes[0], m.bytes[1], m.truncations, m.partitions, m.connections, lag, kafkaLag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("repl: register metrics: %w", err)
		}
	}
	return m, nil
}

// byteCounters counts into Sediment's and Kafka's name for the same thing.
type byteCounters [2]prometheus.Counter

func (c byteCounters) Add(v float64) {
	c[0].Add(v)
	c[1].Add(v)
}
