package broker

import (
	"context"
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kerr"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// partition is one local replica. The log is safe for concurrent use; the
// partition adds its role (leader, follower or offline), the high watermark
// and the waiters that long polls and acks use.
type partition struct {
	topic string
	id    meta.TopicID
	index int32
	log   *segment.Log

	leaderEpoch atomic.Int32
	leaderID    atomic.Int32 // -1: offline
	// epochStart is the log end when this broker last became leader: until
	// the high watermark reaches it, the offsets it would report may be stale
	// (KIP-207).
	epochStart atomic.Int64
	minISR     atomic.Int32 // min.insync.replicas
	hw         atomic.Int64
	configRev  int64 // topic revision whose configs the log has; owned by the manager

	// leader is set while this broker leads the partition.
	leader atomic.Pointer[repl.Leader]

	mu         sync.Mutex
	hwCh       chan struct{}              // closed and replaced when hw advances or the role changes
	hwWaiters  map[chan struct{}]struct{} // consumer fetches parked on this partition
	leoWaiters map[chan struct{}]struct{} // follower fetches, woken by appends

	uploadStop func() // stops the uploader while leading with tiering on; owned by the manager
	// remoteStart and remoteEnd bound the offsets held in the tier (the
	// offset after the last finished copy); -1 while unknown or none.
	remoteStart, remoteEnd atomic.Int64
	remoteSegs             atomic.Pointer[[]tier.RemoteSegment] // finished copies
	// remoteLoaded is set once the fields above were read from etcd in the
	// current role; a new leader reads them before answering from them.
	remoteLoaded atomic.Bool
	remoteMu     sync.Mutex  // serialises refreshes, so the newest read is stored last
	stalled      atomic.Bool // this partition's last upload attempt failed

	flushReq chan struct{} // produces ask the flusher to sync
	syncErr  atomic.Pointer[error]
	done     chan struct{}
}

func (p *partition) String() string { return p.topic + "-" + strconv.Itoa(int(p.index)) }

// advanceHW raises the high watermark to off and wakes waiters.
func (p *partition) advanceHW(off int64) {
	for {
		cur := p.hw.Load()
		if off <= cur {
			return
		}
		if p.hw.CompareAndSwap(cur, off) {
			break
		}
	}
	p.mu.Lock()
	close(p.hwCh)
	p.hwCh = make(chan struct{})
	wake(p.hwWaiters)
	p.mu.Unlock()
}

// appended wakes follower fetches parked on the log end.
func (p *partition) appended() {
	p.mu.Lock()
	wake(p.leoWaiters)
	p.mu.Unlock()
}

// roleChanged wakes everyone who waits on the high watermark, so acks=all
// waiters notice a lost leadership or a shrunken ISR.
func (p *partition) roleChanged() {
	p.mu.Lock()
	close(p.hwCh)
	p.hwCh = make(chan struct{})
	wake(p.hwWaiters)
	wake(p.leoWaiters)
	p.mu.Unlock()
}

func wake(ws map[chan struct{}]struct{}) {
	for w := range ws {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// updateHW recomputes the high watermark: as leader from the ISR's
// positions and the local durable end; it only ever moves forward.
func (p *partition) updateHW() {
	if l := p.leader.Load(); l != nil {
		if hw := l.HighWatermark(p.log.DurableOffset()); hw >= 0 {
			p.advanceHW(hw)
		}
	}
}

// waitHW blocks until the high watermark reaches off (acks=all). It fails
// when this broker stops leading the partition or, with checkISR, when the
// ISR shrinks below min.insync.replicas.
func (p *partition) waitHW(ctx context.Context, off int64, epoch int32) error {
	for {
		p.mu.Lock()
		ch := p.hwCh
		p.mu.Unlock()
		if p.hw.Load() >= off {
			return nil
		}
		if err := p.syncErr.Load(); err != nil {
			return *err
		}
		l := p.leader.Load()
		if l == nil || l.Epoch() != epoch {
			return errNotLeader
		}
		if len(l.ISR()) < int(p.minISR.Load()) {
			return errNotEnoughReplicasAfterAppend
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return errPartitionClosed
		}
	}
}

var (
	errNotLeader                    = errors.New("broker: not the leader")
	errNotEnoughReplicasAfterAppend = errors.New("broker: ISR shrank below min.insync.replicas")
)

var errPartitionClosed = errors.New("broker: partition closed")

// durable waits until every offset below off is durable per the topic's flush
// policy and then lets the high watermark follow.
func (p *partition) durable(ctx context.Context, off int64) error {
	if err := p.log.WaitDurable(ctx, off); err != nil {
		return err
	}
	p.updateHW()
	return nil
}

func (p *partition) addWaiter(w chan struct{}, replica bool) {
	p.mu.Lock()
	if replica {
		p.leoWaiters[w] = struct{}{}
	} else {
		p.hwWaiters[w] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *partition) removeWaiter(w chan struct{}) {
	p.mu.Lock()
	delete(p.hwWaiters, w)
	delete(p.leoWaiters, w)
	p.mu.Unlock()
}

// requestFlush asks the flusher to make the tail durable. Requests coalesce:
// one sync covers every append made before it starts (group commit).
func (p *partition) requestFlush() {
	select {
	case p.flushReq <- struct{}{}:
	default:
	}
}

func (p *partition) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-p.flushReq:
			end := p.log.LogEndOffset()
			if end < p.log.LogStartOffset() || p.log.DurableOffset() >= end {
				p.updateHW()
				continue
			}
			if err := p.durable(ctx, end); err != nil && ctx.Err() == nil {
				// The log refuses further writes after a failed sync; fail
				// the waiters now rather than letting them time out.
				p.syncErr.CompareAndSwap(nil, &err)
				p.mu.Lock()
				close(p.hwCh)
				p.hwCh = make(chan struct{})
				p.mu.Unlock()
			}
		}
	}
}

type topicParts struct {
	id    meta.TopicID
	parts []*partition // by index; nil where this broker hosts no replica
}

// partitionManager opens, reconfigures and removes local logs so that they
// follow the topics in etcd.
type partitionManager struct {
	s *Server

	mu     sync.RWMutex
	topics map[string]*topicParts

	wg      sync.WaitGroup // flushers
	flushCx context.Context
	stopFl  context.CancelFunc
}

func newPartitionManager(s *Server) (*partitionManager, error) {
	if err := os.MkdirAll(s.cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pm := &partitionManager{s: s, topics: make(map[string]*topicParts), flushCx: ctx, stopFl: cancel}
	if err := pm.reconcile(); err != nil {
		pm.close()
		return nil, err
	}
	return pm, nil
}

// get returns the local partition or nil.
func (pm *partitionManager) get(topic string, p int32) *partition {
	pm.mu.RLock()
	defer pm.mu.RUnlock()
	tp := pm.topics[topic]
	if tp == nil || p < 0 || int(p) >= len(tp.parts) {
		return nil
	}
	return tp.parts[p]
}

func (pm *partitionManager) all() []*partition {
	pm.mu.RLock()
	defer pm.mu.RUnlock()
	var out []*partition
	for _, tp := range pm.topics {
		for _, p := range tp.parts {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// run reconciles on every metadata change and applies retention and
// time-based rolls periodically, until ctx is done.
func (pm *partitionManager) run(ctx context.Context) {
	ch, cancel := pm.s.cache.Subscribe()
	defer cancel()
	tick := time.NewTicker(pm.s.cfg.RetentionCheckInterval)
	defer tick.Stop()
	roll := time.NewTicker(min(pm.s.cfg.RetentionCheckInterval, 10*time.Second))
	defer roll.Stop()
	isr := time.NewTicker(isrCheckInterval(pm.s.cfg.ReplicaLagTimeMax))
	defer isr.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := pm.reconcile(); err != nil {
				pm.s.log.Error("reconciling local partitions with metadata", "err", err)
			}
		case <-isr.C:
			for _, p := range pm.all() {
				pm.maybeChangeISR(ctx, p)
			}
		case <-roll.C:
			for _, p := range pm.all() {
				if err := p.log.MaybeRoll(); err != nil {
					pm.s.log.Error("time-based roll failed", "partition", p.String(), "err", err)
				}
			}
		case <-tick.C:
			for _, p := range pm.all() {
				n, err := pm.applyRetention(ctx, p)
				if err != nil {
					pm.s.log.Error("retention failed", "partition", p.String(), "err", err)
				} else if n > 0 {
					pm.s.log.Info("retention deleted segments", "partition", p.String(), "segments", n,
						"log_start_offset", p.log.LogStartOffset())
				}
			}
		}
	}
}

// reconcile makes the local logs match the cache: open hosted partitions,
// apply config changes, delete logs of deleted topics.
func (pm *partitionManager) reconcile() error {
	topics := pm.s.cache.Topics()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	var errs []error
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		seen[t.Name] = true
		tp := pm.topics[t.Name]
		if tp != nil && tp.id != t.ID {
			// Deleted and re-created under the same name.
			pm.removeTopicLocked(t.Name, tp)
			tp = nil
		}
		if tp == nil {
			tp = &topicParts{id: t.ID}
			pm.topics[t.Name] = tp
		}
		cfg, err := pm.s.logConfig(t.Configs)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, err))
			continue
		}
		for i, replicas := range t.Partitions {
			for len(tp.parts) <= i {
				tp.parts = append(tp.parts, nil)
			}
			if !slices.Contains(replicas, pm.s.cfg.NodeID) {
				if p := tp.parts[i]; p != nil {
					// Reassigned away from this broker.
					pm.removePartitionLocked(p)
					tp.parts[i] = nil
				}
				continue
			}
			p := tp.parts[i]
			if p == nil {
				p, err = pm.openLocked(t, int32(i), cfg)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				tp.parts[i] = p
			} else if p.configRev != t.Revision {
				if err := p.log.SetConfig(cfg); err != nil {
					errs = append(errs, fmt.Errorf("partition %s: %w", p, err))
				}
				p.configRev = t.Revision
			}
			if st, ok := pm.s.cache.Partition(t.ID, int32(i)); ok {
				pm.applyRoleLocked(p, replicas, st, minISR(t.Configs, pm.s.cfg.MinInsyncReplicas))
			}
		}
	}
	for name, tp := range pm.topics {
		if !seen[name] {
			pm.removeTopicLocked(name, tp)
		}
	}
	return errors.Join(errs...)
}

func (pm *partitionManager) openLocked(t meta.Topic, idx int32, cfg segment.Config) (*partition, error) {
	dir := filepath.Join(pm.s.cfg.DataDir, t.Name+"-"+strconv.Itoa(int(idx)))
	if err := claimDir(dir, t.ID); err != nil {
		return nil, err
	}
	l, err := segment.Open(dir, cfg, segment.Options{Logger: pm.s.log.With("partition", filepath.Base(dir))})
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", dir, err)
	}
	p := &partition{
		topic:      t.Name,
		id:         t.ID,
		index:      idx,
		log:        l,
		configRev:  t.Revision,
		hwCh:       make(chan struct{}),
		hwWaiters:  make(map[chan struct{}]struct{}),
		leoWaiters: make(map[chan struct{}]struct{}),
		flushReq:   make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	p.leaderID.Store(-1)
	p.minISR.Store(1)
	p.remoteStart.Store(-1)
	p.remoteEnd.Store(-1)
	// The high watermark is not checkpointed: it restarts at the log start
	// and the leader recomputes it from the ISR (at once for a single
	// replica).
	p.hw.Store(l.LogStartOffset())
	pm.wg.Add(1)
	go func() {
		defer pm.wg.Done()
		p.flushLoop(pm.flushCx)
	}()
	return p, nil
}

func (pm *partitionManager) removeTopicLocked(name string, tp *topicParts) {
	for _, p := range tp.parts {
		if p != nil {
			pm.removePartitionLocked(p)
		}
	}
	delete(pm.topics, name)
	pm.s.log.Info("removed local logs of deleted topic", "topic", name)
}

// removePartitionLocked stops replicating a local partition and deletes its
// log (topic deleted, or replica reassigned away).
func (pm *partitionManager) removePartitionLocked(p *partition) {
	pm.stopUploader(p)
	pm.s.repl.Unfollow(p.id, p.index)
	p.leader.Store(nil)
	close(p.done)
	if err := p.log.Delete(); err != nil {
		pm.s.log.Error("deleting local log", "partition", p.String(), "err", err)
	}
	pm.s.log.Info("removed local replica", "partition", p.String())
}

func (pm *partitionManager) close() error {
	pm.s.repl.Close()
	pm.stopFl()
	pm.wg.Wait()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	var errs []error
	for _, tp := range pm.topics {
		for _, p := range tp.parts {
			if p == nil {
				continue
			}
			select {
			case <-p.done:
			default:
				close(p.done)
			}
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s: %w", p, err))
			}
		}
	}
	pm.topics = map[string]*topicParts{}
	return errors.Join(errs...)
}

// claimDir records the topic id in the partition directory
// (partition.metadata, as Kafka does) and removes a directory left behind by
// an earlier topic of the same name, whose data must never resurface.
func claimDir(dir string, id meta.TopicID) error {
	const name = "partition.metadata"
	want := "version: 0\ntopic_id: " + id.String() + "\n"
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && string(b) == want:
		return nil
	case err == nil && strings.HasPrefix(string(b), "version: 0\ntopic_id: "):
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing stale log %s of an earlier topic: %w", dir, err)
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(want), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// applyRoleLocked makes the local replica leader, follower or offline as the
// partition state in etcd says.
func (pm *partitionManager) applyRoleLocked(p *partition, replicas []int32, st meta.PartitionState, minISR int32) {
	self := pm.s.cfg.NodeID
	p.minISR.Store(minISR)
	switch {
	case st.Leader == self:
		if l := p.leader.Load(); l != nil && l.Epoch() == st.LeaderEpoch {
			l.SetMembership(replicas, st.ISR)
			p.updateHW()
			p.roleChanged()
			return
		}
		pm.s.repl.Unfollow(p.id, p.index)
		// A high watermark learnt as follower may exceed a truncated log.
		p.hw.Store(min(p.hw.Load(), p.log.LogEndOffset()))
		p.epochStart.Store(p.log.LogEndOffset())
		if err := p.log.AssignEpochStart(st.LeaderEpoch); err != nil {
			pm.s.log.Error("recording the leader epoch start failed", "partition", p.String(), "err", err)
		}
		p.leaderEpoch.Store(st.LeaderEpoch)
		p.leaderID.Store(self)
		p.leader.Store(repl.NewLeader(self, st.LeaderEpoch, replicas, st.ISR, pm.s.cfg.ReplicaLagTimeMax, nil))
		p.updateHW()
		p.roleChanged()
		pm.startUploader(p, st.LeaderEpoch)
		pm.s.log.Info("leading partition", "partition", p.String(), "leader_epoch", st.LeaderEpoch, "isr", st.ISR,
			"log_end_offset", p.log.LogEndOffset(), "high_watermark", p.hw.Load())
	case st.Leader < 0:
		if p.leaderID.Load() == -1 && p.leader.Load() == nil && p.leaderEpoch.Load() == st.LeaderEpoch {
			return
		}
		pm.stopUploader(p)
		pm.s.repl.Unfollow(p.id, p.index)
		p.leader.Store(nil)
		p.leaderID.Store(-1)
		p.leaderEpoch.Store(st.LeaderEpoch)
		p.roleChanged()
		pm.s.log.Warn("partition offline: no eligible leader", "partition", p.String(), "isr", st.ISR)
	default:
		if p.leader.Load() == nil && p.leaderID.Load() == st.Leader && p.leaderEpoch.Load() == st.LeaderEpoch {
			return
		}
		pm.stopUploader(p)
		p.leader.Store(nil)
		p.leaderID.Store(st.Leader)
		p.leaderEpoch.Store(st.LeaderEpoch)
		p.roleChanged()
		pm.s.repl.Follow(repl.Replica{
			Topic: p.topic, TopicID: p.id, Partition: p.index,
			Leader: st.Leader, LeaderEpoch: st.LeaderEpoch, Log: p.log,
			SetHighWatermark: p.advanceHW,
		})
		pm.s.log.Info("following partition", "partition", p.String(), "leader", st.Leader, "leader_epoch", st.LeaderEpoch)
	}
}

// maybeChangeISR writes the ISR Kafka's rules call for, as leader, with a
// compare-and-swap that also requires this broker's leadership term to be
// the current one: a deposed leader cannot overwrite newer state.
func (pm *partitionManager) maybeChangeISR(ctx context.Context, p *partition) {
	l := p.leader.Load()
	if l == nil {
		return
	}
	next, changed := l.ProposeISR(p.hw.Load(), func(id int32) bool {
		b, ok := pm.s.cache.Broker(id)
		return ok && !b.ShuttingDown
	})
	if !changed {
		return
	}
	st, ok := pm.s.cache.Partition(p.id, p.index)
	if !ok || st.Leader != pm.s.cfg.NodeID || st.LeaderEpoch != l.Epoch() {
		return
	}
	old := st.ISR
	st.ISR = next
	st.PartitionEpoch++
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rev, err := pm.s.store.UpdatePartition(wctx, p.id, p.index, st)
	if err != nil {
		if !errors.Is(err, meta.ErrConflict) {
			pm.s.log.Warn("writing ISR change failed; will retry", "partition", p.String(), "err", err)
		}
		return
	}
	pm.s.log.Info("ISR changed", "partition", p.String(), "from", old, "to", next, "leader_epoch", st.LeaderEpoch)
	if t, ok := pm.s.cache.TopicByID(p.id); ok && int(p.index) < len(t.Partitions) {
		l.SetMembership(t.Partitions[p.index], next)
	}
	p.updateHW()
	p.roleChanged()
	_ = pm.s.cache.WaitRevision(wctx, rev)
}

func isrCheckInterval(lag time.Duration) time.Duration {
	return max(min(lag/4, time.Second), 50*time.Millisecond)
}

// minISR reads min.insync.replicas from a topic's overrides.
func minISR(configs map[string]string, def int) int32 {
	if v, ok := configs["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return int32(n)
		}
	}
	return int32(def)
}

// leaderFor returns the local partition if this broker leads it, or the
// Kafka error code explaining why not.
func (s *Server) leaderFor(topic string, part int32) (*partition, int16) {
	return s.leaderForEpoch(topic, part, -1)
}

// leaderForEpoch is leaderFor for a request naming the leader epoch it
// expects: a requester that already knows a newer term than this broker
// gets the retriable UNKNOWN_LEADER_EPOCH rather than NOT_LEADER_OR_FOLLOWER
// (this broker may be about to take the leadership over).
func (s *Server) leaderForEpoch(topic string, part int32, epoch int32) (*partition, int16) {
	p := s.parts.get(topic, part)
	if p != nil && p.leader.Load() != nil {
		return p, 0
	}
	if p != nil && epoch > p.leaderEpoch.Load() {
		return nil, kerr.UnknownLeaderEpoch.Code
	}
	t, ok := s.cache.Topic(topic)
	if !ok || part < 0 || int(part) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	return nil, kerr.NotLeaderForPartition.Code
}

// applyRetention deletes old local segments: by retention.* for a local
// topic; for a tiered one by local.retention.* and only segments whose copy
// to the tier finished (the tier keeps them for retention.*).
func (pm *partitionManager) applyRetention(ctx context.Context, p *partition) (int, error) {
	t, ok := pm.s.cache.TopicByID(p.id)
	if !ok || !pm.s.tiered(t.Configs) {
		return p.log.ApplyRetention()
	}
	cfg, err := pm.s.logConfig(t.Configs)
	if err != nil {
		return 0, err
	}
	if p.leader.Load() == nil {
		// A follower learns what the leader uploaded from etcd.
		if err := pm.s.refreshRemoteBounds(ctx, p); err != nil {
			return 0, err
		}
	}
	ms, bytes := pm.s.localRetention(t.Configs, cfg)
	return p.log.ApplyLocalRetention(ms, bytes, p.remoteEnd.Load())
}
