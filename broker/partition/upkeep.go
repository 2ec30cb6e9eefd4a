package partition

import (
	"context"
	"errors"
	"time"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/repl"
)

// maybeChangeISR writes the ISR Kafka's rules call for, as leader, with a
// compare-and-swap that also requires this broker's leadership term to be
// the current one: a deposed leader cannot overwrite newer state. It runs on
// the pool under the term's context, so a slow etcd write holds up neither
// other partitions nor the end of the term.
func (m *Manager) maybeChangeISR(p *Partition) {
	t := p.term.Load()
	if t == nil {
		return
	}
	l := t.leader
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	if l.Expanding() && !m.settleExpansion(ctx, p, l) {
		return // etcd cannot say yet whether the last expansion took effect
	}
	next, changed := m.proposeISR(p, l)
	if !changed {
		return
	}
	st, ok := m.cache.Partition(p.id, p.index)
	if !ok || st.Leader != m.cfg.NodeID || st.LeaderEpoch != l.Epoch() {
		return
	}
	old := st.ISR
	st.ISR = next
	st.PartitionEpoch++
	// The followers joining count for the high watermark from before the
	// write until its outcome is known (KIP-497's maximal ISR).
	l.ExpandingISR(next)
	rev, err := m.store.UpdatePartition(ctx, p.id, p.index, st)
	if err != nil {
		if !errors.Is(err, meta.ErrConflict) && t.ctx.Err() == nil {
			m.log.Warn("writing ISR change failed; will retry", "partition", p.String(), "err", err)
		}
		// A timed-out write may still have been applied; etcd says.
		m.settleExpansion(ctx, p, l)
		return
	}
	m.log.Info("ISR changed", "partition", p.String(), "from", old, "to", next, "leader_epoch", st.LeaderEpoch)
	if replicas, ok := m.cache.Replicas(p.id, p.index); ok {
		m.setMembership(p, l, replicas, next, st.PartitionEpoch)
	}
	p.updateHW()
	p.roleChanged()
	_ = m.cache.WaitRevision(ctx, rev)
}

// settleExpansion reads the partition's state from etcd after an ISR write
// whose outcome is unknown (failed, timed out, or lost a race) and applies
// its ISR, so followers the write would have added stop counting for the
// high watermark only once etcd shows they are not in the ISR. It reports
// whether it could.
func (m *Manager) settleExpansion(ctx context.Context, p *Partition, l *repl.Leader) bool {
	st, err := m.store.Partition(ctx, p.id, p.index)
	if err != nil {
		return false
	}
	if st.Leader == m.cfg.NodeID && st.LeaderEpoch == l.Epoch() {
		if replicas, ok := m.cache.Replicas(p.id, p.index); ok {
			m.setMembership(p, l, replicas, st.ISR, st.PartitionEpoch)
		}
	}
	// Either the ISR now holds them, or no write of this term adds them any
	// more (this call runs alone per partition), or the term is over.
	l.SettleISR()
	p.updateHW()
	return true
}

// proposeISR is the ISR Kafka's rules call for now, and whether it differs
// from the current one: no I/O, cheap enough for every tick.
func (m *Manager) proposeISR(p *Partition, l *repl.Leader) ([]int32, bool) {
	return l.ProposeISR(p.hw.Load(), func(id int32) bool {
		b, ok := m.cache.Broker(id)
		return ok && !b.ShuttingDown
	})
}

func isrCheckInterval(lag time.Duration) time.Duration {
	return max(min(lag/4, time.Second), 50*time.Millisecond)
}

// retain applies retention to p (on the pool) and logs what it deleted.
func (m *Manager) retain(p *Partition) {
	n, err := m.applyRetention(p)
	switch {
	case err != nil && m.ctx.Err() == nil:
		m.log.Error("retention failed", "partition", p.String(), "err", err)
	case n > 0:
		m.log.Info("retention deleted segments", "partition", p.String(), "segments", n,
			"log_start_offset", p.log.LogStartOffset())
	}
}

// applyRetention deletes old local segments: by retention.* for a local
// topic; for a tiered one by local.retention.* and only segments whose copy
// to the tier finished (the tier keeps them for retention.*).
func (m *Manager) applyRetention(p *Partition) (int, error) {
	t, ok := m.cache.TopicConfigsByID(p.id) // every partition, every check: no copy of the assignment
	if !ok {
		return p.log.ApplyRetention()
	}
	s, err := m.settings(t)
	if err != nil {
		return 0, err
	}
	if !s.Tiered {
		return p.log.ApplyRetention()
	}
	if !p.IsLeader() {
		// A follower learns what the leader uploaded from etcd.
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		err := m.refreshRemoteBounds(ctx, p)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	return p.log.ApplyLocalRetention(s.LocalRetention, s.LocalRetentionBytes, p.remoteEnd.Load())
}
