package partition

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/vfs"
)

// change is one partition's work in a reconcile pass.
type change struct {
	p        *Partition // nil: open it first
	topic    meta.Topic
	index    int32
	settings TopicSettings
	replicas []int32
	state    meta.PartitionState
	hasState bool
}

// Reconcile makes the local partitions match the metadata cache: it opens
// the partitions this broker hosts, applies config changes and roles, and
// deletes the logs of deleted topics and of replicas reassigned away.
//
// The plan is made under the Manager's lock without I/O; the work then runs
// on the worker pool, removals first (a topic re-created under the same name
// reuses its directories), then opens and role changes. Partitions being
// opened are not visible until their log is recovered.
func (m *Manager) Reconcile() error {
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	if m.ctx.Err() != nil {
		return ErrClosed
	}
	remove, changes, errs := m.plan(m.cache.Topics())

	m.pool.all(tasks(remove, m.remove))

	var (
		mu   sync.Mutex
		work []func()
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, c := range changes {
		if c.p != nil && c.p.configRev == c.topic.Revision && !c.needsRoleChange(m.cfg.NodeID) {
			// Nothing to open, reconfigure or stop: no I/O, done here.
			m.applyRole(c)
			continue
		}
		work = append(work, func() {
			if err := m.change(c); err != nil {
				fail(err)
			}
		})
	}
	m.pool.all(work)
	return errors.Join(errs...)
}

// plan compares the cache with the local partitions. It takes partitions to
// remove out of the map at once; the returned changes name the partitions to
// open (p nil) and those whose config or role may need changing.
func (m *Manager) plan(topics []meta.Topic) (remove []*Partition, changes []change, errs []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		seen[t.Name] = true
		tp := m.topics[t.Name]
		if tp != nil && tp.id != t.ID {
			// Deleted and re-created under the same name.
			remove = append(remove, tp.hosted()...)
			tp = nil
		}
		if tp == nil {
			tp = &topicParts{id: t.ID}
			m.topics[t.Name] = tp
			m.kafka.topics.ensureLocked(t.Name)
		}
		settings, err := m.settings(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, err))
			continue
		}
		for len(tp.parts) < len(t.Partitions) {
			tp.parts = append(tp.parts, nil)
		}
		for i, replicas := range t.Partitions {
			p := tp.parts[i]
			if !slices.Contains(replicas, m.cfg.NodeID) {
				if p != nil {
					remove = append(remove, p) // reassigned away from this broker
					tp.parts[i] = nil
				}
				continue
			}
			st, ok := m.cache.Partition(t.ID, int32(i))
			changes = append(changes, change{p: p, topic: t, index: int32(i), settings: settings,
				replicas: replicas, state: st, hasState: ok})
		}
	}
	for name, tp := range m.topics {
		if !seen[name] {
			remove = append(remove, tp.hosted()...)
			delete(m.topics, name)
			m.kafka.topics.forgetLocked(name)
			if m.tierMetrics != nil {
				m.tierMetrics.RemoveTopic(name)
			}
			m.log.Info("removing local logs of deleted topic", "topic", name)
		}
	}
	return remove, changes, errs
}

func (tp *topicParts) hosted() []*Partition {
	var out []*Partition
	for _, p := range tp.parts {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

func tasks[T any](xs []T, fn func(T)) []func() {
	out := make([]func(), len(xs))
	for i, x := range xs {
		out[i] = func() { fn(x) }
	}
	return out
}

// change opens, reconfigures and re-roles one partition (on the pool).
func (m *Manager) change(c change) error {
	if c.p == nil {
		p, err := m.open(c.topic, c.index, c.settings.Log)
		if err != nil {
			return err
		}
		m.mu.Lock()
		tp := m.topics[c.topic.Name]
		if tp == nil || tp.id != c.topic.ID {
			m.mu.Unlock() // cannot happen: only passes change the map, one at a time
			p.markClosed()
			return p.log.Close()
		}
		tp.parts[c.index] = p
		m.mu.Unlock()
		c.p = p
	} else if c.p.configRev != c.topic.Revision {
		if err := c.p.log.SetConfig(c.settings.Log); err != nil {
			return fmt.Errorf("partition %s: %w", c.p, err)
		}
		c.p.configRev = c.topic.Revision
	}
	m.applyRole(c)
	return nil
}

// open recovers (or creates) a partition's log. Its flusher starts with the
// first append that asks for a sync (flusher.go).
func (m *Manager) open(t meta.Topic, idx int32, cfg segment.Config) (*Partition, error) {
	dir := filepath.Join(m.cfg.DataDir, t.Name+"-"+strconv.Itoa(int(idx)))
	if err := claimDir(m.fs, dir, t.ID); err != nil {
		return nil, err
	}
	l, err := segment.Open(dir, cfg, segment.Options{Logger: m.log.With("partition", filepath.Base(dir)), FS: m.fs})
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", dir, err)
	}
	p := &Partition{
		m:          m,
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
	return p, nil
}

// remove stops replicating a local partition and deletes its log (topic
// deleted, or replica reassigned away).
func (m *Manager) remove(p *Partition) {
	m.endTerm(p)
	m.repl.Unfollow(p.id, p.index)
	p.markClosed()
	if err := p.log.Delete(); err != nil {
		m.log.Error("deleting local log", "partition", p.String(), "err", err)
	}
	m.log.Info("removed local replica", "partition", p.String())
}

// claimDir records the topic id in the partition directory
// (partition.metadata, as Kafka does) and removes a directory left behind by
// an earlier topic of the same name, whose data must never resurface. The
// directory and the file are durable when it returns.
func claimDir(fsys vfs.FS, dir string, id meta.TopicID) error {
	const name = "partition.metadata"
	want := "version: 0\ntopic_id: " + id.String() + "\n"
	path := filepath.Join(dir, name)
	b, err := vfs.ReadFile(fsys, path)
	switch {
	case err == nil && string(b) == want:
		return nil
	case err == nil && strings.HasPrefix(string(b), "version: 0\ntopic_id: "):
		if err := fsys.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing stale log %s of an earlier topic: %w", dir, err)
		}
		if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("removing stale log %s of an earlier topic: %w", dir, err)
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := vfs.MkdirAllDurable(fsys, dir); err != nil {
		return err
	}
	return vfs.WriteFileAtomic(fsys, path, []byte(want), true)
}

// needsRoleChange reports whether applying the change's state would start
// or end a term or change what is followed: work with I/O (waiting for a
// fetcher or an uploader to stop, writing the epoch checkpoint).
func (c change) needsRoleChange(self int32) bool {
	p, st := c.p, c.state
	if !c.hasState {
		return false
	}
	switch {
	case st.Leader == self:
		t := p.term.Load()
		// A new term, or the topic's tiering switched on or off.
		return t == nil || t.leader.Epoch() != st.LeaderEpoch || (t.upload != nil) != c.uploads(p.m)
	case st.Leader < 0:
		return !(p.leaderID.Load() == -1 && !p.IsLeader() && p.leaderEpoch.Load() == st.LeaderEpoch)
	default:
		return !(!p.IsLeader() && p.leaderID.Load() == st.Leader && p.leaderEpoch.Load() == st.LeaderEpoch)
	}
}

// uploads reports whether the partition's leader should upload its segments.
func (c change) uploads(m *Manager) bool { return m.tierStore != nil && c.settings.Tiered }

// applyRole makes the local replica leader, follower or offline as the
// partition state in etcd says.
func (m *Manager) applyRole(c change) {
	p, st, self := c.p, c.state, m.cfg.NodeID
	p.minISR.Store(c.settings.MinInsyncReplicas)
	if !c.hasState {
		return
	}
	if !c.needsRoleChange(self) {
		if l := p.leader(); l != nil {
			// Same term: the ISR or the replicas may have changed.
			m.setMembership(p, l, c.replicas, st.ISR, st.PartitionEpoch)
			p.updateHW()
			p.roleChanged()
		}
		return
	}
	switch {
	case st.Leader == self:
		if t := p.term.Load(); t != nil && t.leader.Epoch() == st.LeaderEpoch {
			// The same term; the topic's tiering changed.
			if c.uploads(m) {
				m.startUploader(p, t)
			} else {
				m.stopUploader(p, t)
			}
			m.setMembership(p, t.leader, c.replicas, st.ISR, st.PartitionEpoch)
			p.updateHW()
			p.roleChanged()
			return
		}
		m.endTerm(p)
		m.repl.Unfollow(p.id, p.index)
		// A high watermark learnt as follower may exceed a truncated log.
		p.hw.Store(min(p.hw.Load(), p.log.LogEndOffset()))
		p.epochStart.Store(p.log.LogEndOffset())
		if err := p.log.AssignEpochStart(st.LeaderEpoch); err != nil {
			m.log.Error("recording the leader epoch start failed", "partition", p.String(), "err", err)
		}
		p.leaderEpoch.Store(st.LeaderEpoch)
		p.leaderID.Store(self)
		p.newerISREpoch(st.PartitionEpoch) // the ISR the term starts with is no change
		m.startTerm(p, repl.NewLeader(self, st.LeaderEpoch, c.replicas, st.ISR, m.cfg.ReplicaLagTimeMax, nil), st.LeaderEpoch, c.uploads(m))
		p.updateHW()
		p.roleChanged()
		m.log.Info("leading partition", "partition", p.String(), "leader_epoch", st.LeaderEpoch, "isr", st.ISR,
			"log_end_offset", p.log.LogEndOffset(), "high_watermark", p.hw.Load())
	case st.Leader < 0:
		m.endTerm(p)
		m.repl.Unfollow(p.id, p.index)
		p.leaderID.Store(-1)
		p.leaderEpoch.Store(st.LeaderEpoch)
		p.roleChanged()
		m.log.Warn("partition offline: no eligible leader", "partition", p.String(), "isr", st.ISR)
	default:
		m.endTerm(p)
		p.leaderID.Store(st.Leader)
		p.leaderEpoch.Store(st.LeaderEpoch)
		p.roleChanged()
		m.repl.Follow(repl.Replica{
			Topic: p.topic, TopicID: p.id, Partition: p.index,
			Leader: st.Leader, LeaderEpoch: st.LeaderEpoch, Log: p.log,
			SetHighWatermark: p.advanceHW,
		})
		m.log.Info("following partition", "partition", p.String(), "leader", st.Leader, "leader_epoch", st.LeaderEpoch)
	}
}

// startTerm makes this broker p's leader in epoch: work for the term runs
// under a context cancelled when it ends, and with uploads (a tier, and the
// topic tiered) its uploader starts.
func (m *Manager) startTerm(p *Partition, l *repl.Leader, epoch int32, uploads bool) {
	ctx, cancel := context.WithCancel(m.ctx)
	t := &term{leader: l, ctx: ctx, cancel: cancel}
	if m.tierStore != nil {
		// A new term reads the tier's state afresh before answering from it.
		p.remoteLoaded.Store(false)
	}
	p.term.Store(t)
	if uploads {
		m.startUploader(p, t)
	}
	if m.roles != nil {
		m.roles.Elected(p, epoch)
	}
}

// startUploader runs p's uploader for the term t, unless it runs already.
func (m *Manager) startUploader(p *Partition, t *term) {
	if m.tierStore == nil || t.upload != nil {
		return
	}
	ctx, cancel := context.WithCancel(t.ctx)
	u := &uploaderRun{cancel: cancel, done: make(chan struct{})}
	t.upload = u
	m.wg.Go(func() {
		defer close(u.done)
		m.runUploader(ctx, p, t.leader.Epoch())
	})
}

// stopUploader stops t's uploader, if any, and waits for it.
func (m *Manager) stopUploader(p *Partition, t *term) {
	if t.upload == nil {
		return
	}
	t.upload.cancel()
	<-t.upload.done
	t.upload = nil
	m.setStalled(p, false)
}

// endTerm ends this broker's term over p, if any, and waits for its
// uploader to stop.
func (m *Manager) endTerm(p *Partition) {
	t := p.term.Swap(nil)
	if t == nil {
		return
	}
	if m.roles != nil {
		m.roles.Resigned(p)
	}
	t.cancel()
	m.stopUploader(p, t)
}
