package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
)

// partition is one local replica. The log is safe for concurrent use; the
// partition adds the high watermark and the waiters that long polls and
// acks use.
type partition struct {
	topic string
	id    meta.TopicID
	index int32
	log   *segment.Log

	leaderEpoch atomic.Int32
	hw          atomic.Int64
	configRev   int64 // topic revision whose configs the log has; owned by the manager

	mu      sync.Mutex
	hwCh    chan struct{}              // closed and replaced when hw advances
	waiters map[chan struct{}]struct{} // fetches parked on this partition

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
	for w := range p.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

// waitHW blocks until the high watermark reaches off.
func (p *partition) waitHW(ctx context.Context, off int64) error {
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
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return errPartitionClosed
		}
	}
}

var errPartitionClosed = errors.New("broker: partition closed")

// durable waits until every offset below off is durable per the topic's flush
// policy and then exposes it to consumers by advancing the high watermark.
func (p *partition) durable(ctx context.Context, off int64) error {
	if err := p.log.WaitDurable(ctx, off); err != nil {
		return err
	}
	p.advanceHW(p.log.DurableOffset())
	return nil
}

func (p *partition) addWaiter(w chan struct{}) {
	p.mu.Lock()
	p.waiters[w] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) removeWaiter(w chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, w)
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
			if err := p.durable(ctx, p.log.LogEndOffset()); err != nil && ctx.Err() == nil {
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := pm.reconcile(); err != nil {
				pm.s.log.Error("reconciling local partitions with metadata", "err", err)
			}
		case <-roll.C:
			for _, p := range pm.all() {
				if err := p.log.MaybeRoll(); err != nil {
					pm.s.log.Error("time-based roll failed", "partition", p.String(), "err", err)
				}
			}
		case <-tick.C:
			for _, p := range pm.all() {
				n, err := p.log.ApplyRetention()
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
				p.leaderEpoch.Store(st.LeaderEpoch)
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
		topic:     t.Name,
		id:        t.ID,
		index:     idx,
		log:       l,
		configRev: t.Revision,
		hwCh:      make(chan struct{}),
		waiters:   make(map[chan struct{}]struct{}),
		flushReq:  make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	// Single replica: everything durable is committed.
	p.hw.Store(l.DurableOffset())
	pm.wg.Add(1)
	go func() {
		defer pm.wg.Done()
		p.flushLoop(pm.flushCx)
	}()
	return p, nil
}

func (pm *partitionManager) removeTopicLocked(name string, tp *topicParts) {
	for _, p := range tp.parts {
		if p == nil {
			continue
		}
		close(p.done)
		if err := p.log.Delete(); err != nil {
			pm.s.log.Error("deleting log of deleted topic", "partition", p.String(), "err", err)
		}
	}
	delete(pm.topics, name)
	pm.s.log.Info("removed local logs of deleted topic", "topic", name)
}

func (pm *partitionManager) close() error {
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
