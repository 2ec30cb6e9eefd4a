package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/segment"
)

// OffsetsTopic is the internal topic holding committed offsets and group
// state.
const OffsetsTopic = "__consumer_offsets"

// Config is the coordinator's static configuration; the names are Kafka's
// broker configs.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long the
	// first rebalance of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms and group.max.session.timeout.ms.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxGroupSize is group.max.size.
	MaxGroupSize int
	// OffsetsRetention is offsets.retention.minutes: committed offsets of a
	// group that has been empty this long expire.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes.
	OffsetMetadataMaxBytes int
	// CommitTimeout is offsets.commit.timeout.ms: how long a write to
	// __consumer_offsets may wait to be committed.
	CommitTimeout time.Duration
	// ConsumerSessionTimeout and ConsumerHeartbeatInterval are
	// group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms (KIP-848 groups).
	ConsumerSessionTimeout, ConsumerHeartbeatInterval time.Duration
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		MaxGroupSize:                  1<<31 - 1,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		OffsetMetadataMaxBytes:        4096,
		CommitTimeout:                 5 * time.Second,
		ConsumerSessionTimeout:        45 * time.Second,
		ConsumerHeartbeatInterval:     5 * time.Second,
	}
}

// Validate names the first problem it finds.
func (c Config) Validate() error {
	switch {
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("group: group.initial.rebalance.delay.ms %v is negative", c.InitialRebalanceDelay)
	case c.MinSessionTimeout <= 0 || c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group: group.min.session.timeout.ms %v and group.max.session.timeout.ms %v: want 0 < min <= max", c.MinSessionTimeout, c.MaxSessionTimeout)
	case c.MaxGroupSize < 1:
		return fmt.Errorf("group: group.max.size %d must be at least 1", c.MaxGroupSize)
	case c.OffsetsRetention <= 0:
		return fmt.Errorf("group: offsets.retention.minutes %v must be positive", c.OffsetsRetention)
	case c.OffsetsRetentionCheckInterval <= 0:
		return fmt.Errorf("group: offsets.retention.check.interval.ms %v must be positive", c.OffsetsRetentionCheckInterval)
	case c.OffsetMetadataMaxBytes < 0:
		return fmt.Errorf("group: offset.metadata.max.bytes %d is negative", c.OffsetMetadataMaxBytes)
	case c.CommitTimeout <= 0:
		return fmt.Errorf("group: offsets.commit.timeout.ms %v must be positive", c.CommitTimeout)
	case c.ConsumerHeartbeatInterval <= 0 || c.ConsumerSessionTimeout <= c.ConsumerHeartbeatInterval:
		return fmt.Errorf("group: group.consumer.heartbeat.interval.ms %v and group.consumer.session.timeout.ms %v: want 0 < interval < session timeout",
			c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout)
	}
	return nil
}

// Deps are the coordinator's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Partitions returns the partition count of __consumer_offsets, 0 while
	// the topic does not exist.
	Partitions func() int32
	// Topics lists the topics that exist, for KIP-848 assignments.
	Topics func() []TopicInfo
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// TopicInfo is a topic as the coordinator's assignors see it.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Coordinator is the group coordinator of one broker: it serves the groups
// whose __consumer_offsets partition this broker leads (hash(group) % N),
// loads a partition's groups and offsets when it becomes the leader
// (answering COORDINATOR_LOAD_IN_PROGRESS meanwhile) and drops them when it
// stops leading.
//
// Lock order: Coordinator.mu → shard.mu → group.mu → shard.txnMu; a
// group's mu is never held while waiting for a write to be committed.
//
// Safe for concurrent use.
type Coordinator struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	partitions func() int32
	listTopics func() []TopicInfo
	metrics    *metrics

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // loads, retention loops, metadata writes

	mu     sync.RWMutex
	shards map[int32]*shard // by __consumer_offsets partition led here
}

// New returns a coordinator with no partitions; the partition layer tells it
// of leaderships through Elected and Resigned.
func New(cfg Config, d Deps) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Partitions == nil || d.Topics == nil {
		return nil, errors.New("group: the partition count of __consumer_offsets and the topic list are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	c := &Coordinator{cfg: cfg, log: d.Logger, now: d.Now, partitions: d.Partitions, listTopics: d.Topics, shards: map[int32]*shard{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	m, err := newMetrics(c, d.Registerer)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// Close unloads every partition and waits for the coordinator's goroutines.
func (c *Coordinator) Close() {
	c.cancel()
	c.mu.Lock()
	shards := c.shards
	c.shards = map[int32]*shard{}
	c.mu.Unlock()
	for _, sh := range shards {
		sh.unload()
	}
	c.wg.Wait()
}

// Elected is called by the partition layer when this broker becomes the
// leader of p in epoch: for a __consumer_offsets partition, the coordinator
// loads its groups. It does not block.
func (c *Coordinator) Elected(p *partition.Partition, epoch int32) {
	if p.Topic() != OffsetsTopic || c.ctx.Err() != nil {
		return
	}
	sh := newShard(c, p, epoch)
	c.mu.Lock()
	old := c.shards[p.Index()]
	c.shards[p.Index()] = sh
	c.mu.Unlock()
	if old != nil {
		old.unload()
	}
	c.wg.Go(sh.load)
}

// Resigned is called by the partition layer when this broker stops leading
// p (or p is removed): its groups are dropped; their members find the new
// coordinator.
func (c *Coordinator) Resigned(p *partition.Partition) {
	if p.Topic() != OffsetsTopic {
		return
	}
	c.mu.Lock()
	sh := c.shards[p.Index()]
	if sh != nil && sh.p == p {
		delete(c.shards, p.Index())
	} else {
		sh = nil
	}
	c.mu.Unlock()
	if sh != nil {
		sh.unload()
	}
}

func (c *Coordinator) topics() []topicInfo {
	ts := c.listTopics()
	out := make([]topicInfo, len(ts))
	for i, t := range ts {
		out[i] = topicInfo{name: t.Name, id: t.ID, partitions: t.Partitions}
	}
	return out
}

// PartitionFor is the __consumer_offsets partition of a group among n, as
// Kafka computes it (the absolute value of Java's String.hashCode, modulo n),
// so a group lands where it would on Kafka.
func PartitionFor(group string, n int32) int32 {
	var h int32
	for _, r := range utf16Units(group) {
		h = 31*h + int32(r)
	}
	if h == -1<<31 {
		h = 0 // Kafka's Utils.abs maps MinValue to 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

// utf16Units are the UTF-16 code units Java hashes.
func utf16Units(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// shardFor finds the loaded shard coordinating a group, or the error code
// saying why there is none here.
func (c *Coordinator) shardFor(groupID string) (*shard, int16) {
	n := c.partitions()
	if n <= 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	c.mu.RLock()
	sh := c.shards[PartitionFor(groupID, n)]
	c.mu.RUnlock()
	switch {
	case sh == nil:
		return nil, kerr.NotCoordinator.Code
	case !sh.loaded.Load():
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return sh, 0
}

// loadedShards returns the shards that are loaded, and whether some are
// still loading.
func (c *Coordinator) loadedShards() ([]*shard, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*shard
	loading := false
	for _, sh := range c.shards {
		if sh.loaded.Load() {
			out = append(out, sh)
		} else {
			loading = true
		}
	}
	return out, loading
}

// shard is one __consumer_offsets partition this broker leads, with the
// groups it holds.
type shard struct {
	c      *Coordinator
	p      *partition.Partition
	epoch  int32
	ctx    context.Context // cancelled when the partition is unloaded
	cancel context.CancelFunc
	loaded atomic.Bool

	mu     sync.Mutex
	groups map[string]*group

	// txnMu guards txn, the offsets pending in open transactions. Lock
	// order: after group.mu.
	txnMu sync.Mutex
	txn   txnState
}

func newShard(c *Coordinator, p *partition.Partition, epoch int32) *shard {
	sh := &shard{c: c, p: p, epoch: epoch, groups: map[string]*group{}, txn: newTxnState()}
	sh.ctx, sh.cancel = context.WithCancel(c.ctx)
	return sh
}

// group returns the group, creating an empty one when create is set; nil
// if it does not exist (or the shard is going away).
func (sh *shard) group(id string, create bool) *group {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[id]
	if g == nil && create && sh.ctx.Err() == nil {
		g = newGroup(sh, id, sh.c.now())
		sh.groups[id] = g
	}
	return g
}

// drop removes g from the shard if it is still the group of its id.
func (sh *shard) drop(g *group) {
	sh.mu.Lock()
	if sh.groups[g.id] == g {
		delete(sh.groups, g.id)
	}
	sh.mu.Unlock()
}

// unload drops every group: waiting requests are told NOT_COORDINATOR and
// timers stop.
func (sh *shard) unload() {
	sh.cancel()
	sh.loaded.Store(false)
	sh.mu.Lock()
	groups := sh.groups
	sh.groups = map[string]*group{}
	sh.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.killLocked(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	}
	if len(groups) > 0 {
		sh.c.log.Info("unloaded groups", "partition", sh.p.String(), "groups", len(groups))
	}
}

// killLocked ends the group in this broker's memory: every waiting request
// gets code, every timer stops.
func (g *group) killLocked(code int16) {
	g.setStateLocked(stateDead)
	if g.timer != nil {
		g.timer.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	if g.cg != nil {
		for _, m := range g.cg.members {
			if m.timer != nil {
				m.timer.Stop()
			}
		}
	}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		if m.joining != nil {
			m.joining <- joinError(m.id, code)
			m.joining = nil
		}
		if m.syncing != nil {
			m.syncing <- syncError(code)
			m.syncing = nil
		}
	}
}

// pendingWrite is records appended to the shard's partition, not yet known
// to be committed.
type pendingWrite struct {
	res partition.AppendResult
	err error
}

// append appends records in the shard's term. It does not wait; the
// caller releases its group lock and calls wait.
func (sh *shard) append(records []kv) pendingWrite {
	return sh.appendBatch(encodeBatch(records, sh.c.now()))
}

// appendBatch appends one encoded batch in the shard's term, as append.
func (sh *shard) appendBatch(batch []byte) pendingWrite {
	if sh.ctx.Err() != nil {
		return pendingWrite{err: partition.ErrNotLeader}
	}
	res, err := sh.p.AppendLeader(batch, partition.AcksAll)
	if err == nil && res.LeaderEpoch != sh.epoch {
		err = partition.ErrNotLeader
	}
	return pendingWrite{res: res, err: err}
}

// wait blocks until the write is committed, at most offsets.commit.timeout.ms,
// and returns the error code the requester gets (0 on success).
func (sh *shard) wait(ctx context.Context, w pendingWrite) int16 {
	if w.err == nil {
		ctx, cancel := context.WithTimeout(ctx, sh.c.cfg.CommitTimeout)
		defer cancel()
		w.err = sh.p.WaitCommitted(ctx, w.res.LastOffset+1, w.res.LeaderEpoch)
	}
	return writeErrorCode(w.err)
}

// writeErrorCode maps a failed write to __consumer_offsets to the code a
// group request gets, as Kafka's coordinator does.
func writeErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrClosed):
		return kerr.NotCoordinator.Code
	case errors.Is(err, partition.ErrNotEnoughReplicas), errors.Is(err, partition.ErrNotEnoughReplicasAfterAppend):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, context.Canceled):
		return kerr.NotCoordinator.Code
	case errors.Is(err, segment.ErrRecordTooLarge), errors.Is(err, segment.ErrAppendTooLarge):
		return kerr.InvalidCommitOffsetSize.Code
	default:
		return kerr.NotCoordinator.Code // storage errors: let the client find a coordinator that works
	}
}
