package broker

// The controller: one broker at a time, elected through etcd
// (meta.Election), keeps partition leadership valid. It learns of changes by
// watching etcd through the metadata cache, never by RPCs from brokers:
//
//   - a partition whose leader is gone (its registration lease expired or
//     was revoked because its listener refuses connections, see probeDead) or
//     shutting down gets a new leader from its ISR, first in replica order,
//     with the leader epoch bumped;
//   - brokers that are gone or shutting down leave every ISR (but an ISR is
//     never emptied: its last member is the only safe leader);
//   - a partition without an eligible leader stays offline (leader -1) until
//     an ISR member returns, unless unclean.leader.election.enable allows any
//     live replica;
//   - a reassignment (KIP-455) finishes once every new replica is in the ISR;
//   - with auto.leader.rebalance.enable, every
//     leader.imbalance.check.interval the preferred replica (first assigned)
//     takes leadership back when it is live and in the ISR.
//
// Every write is a compare-and-swap on the partition key's revision that also
// requires this broker's election key to stand, so a deposed controller can
// never overwrite newer state.

import (
	"context"
	"errors"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/sedimentio/sediment/meta"
)

// runController campaigns for the controllership for as long as ctx lives,
// and acts as controller whenever elected.
func (s *Server) runController(ctx context.Context, reg *meta.Registration) {
	for ctx.Err() == nil {
		el, err := s.store.NewElection(s.cfg.NodeID, reg)
		if err != nil {
			s.log.Error("controller election unavailable", "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		if err := el.Campaign(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("controller campaign failed; retrying", "err", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		s.log.Info("elected controller", "node_id", s.cfg.NodeID, "controller_epoch", el.Epoch())
		s.lead(ctx, el)
		select {
		case <-reg.Done():
			return // the registration is gone; so is the candidacy
		default:
		}
	}
}

// lead reconciles leadership until ctx ends or the controllership is lost.
func (s *Server) lead(ctx context.Context, el *meta.Election) {
	s.metrics.kafka.controller.Store(true) // ActiveControllerCount
	defer s.metrics.kafka.controller.Store(false)
	ch, cancel := s.cache.Subscribe()
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var rebalance <-chan time.Time
	if s.cfg.AutoLeaderRebalance {
		t := time.NewTicker(s.cfg.LeaderImbalanceCheckInterval)
		defer t.Stop()
		rebalance = t.C
	}
	for {
		if err := s.reconcileLeadership(ctx, el); err != nil && ctx.Err() == nil {
			s.log.Warn("controller pass incomplete; retrying", "err", err)
		}
		select {
		case <-rebalance:
			s.rebalancePreferred(ctx, el)
			continue
		case <-ctx.Done():
			if s.shuttingDown.Load() {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				el.Resign(rctx)
				cancel()
			}
			return
		case <-el.Done():
			s.log.Warn("lost the controllership")
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-tick.C:
		}
	}
}

// reconcileLeadership makes one pass over every partition.
func (s *Server) reconcileLeadership(ctx context.Context, el *meta.Election) error {
	usable := map[int32]bool{} // registered, not shutting down, not known dead
	for _, b := range s.cache.Brokers() {
		if !b.ShuttingDown && !s.probeDead(ctx, b) {
			usable[b.NodeID] = true
		}
	}
	var errs []error
	for _, t := range s.cache.Topics() {
		unclean := t.Configs["unclean.leader.election.enable"] == "true"
		for i, replicas := range t.Partitions {
			st, ok := s.cache.Partition(t.ID, int32(i))
			if !ok {
				continue
			}
			next, changed := electLeader(st, replicas, usable, unclean)
			if !changed {
				if nt, ns, done := finishReassignment(t, int32(i), st, usable); done {
					wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := s.store.UpdateTopicIf(wctx, nt, map[int32]meta.PartitionState{int32(i): ns},
						s.store.PartitionUnchanged(t.ID, int32(i), st.Revision), el.Guard())
					cancel()
					if err == nil {
						s.log.Info("reassignment finished", "topic", t.Name, "partition", i,
							"replicas", nt.Partitions[i], "leader", ns.Leader, "isr", ns.ISR)
						// The topic's revision moved: later partitions of
						// it wait for the next pass.
						break
					} else if !errors.Is(err, meta.ErrConflict) {
						errs = append(errs, err)
					}
				}
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.store.UpdatePartitionIf(wctx, t.ID, int32(i), next, el.Guard())
			cancel()
			switch {
			case errors.Is(err, meta.ErrConflict):
				// Someone wrote first (a leader's ISR change, or we are no
				// longer controller): the next pass sees the new state.
			case err != nil:
				errs = append(errs, err)
			default:
				s.log.Info("partition leadership changed", "topic", t.Name, "partition", i,
					"leader", next.Leader, "leader_epoch", next.LeaderEpoch, "isr", next.ISR,
					"previous_leader", st.Leader)
			}
		}
	}
	return errors.Join(errs...)
}

// rebalancePreferred hands leadership back to preferred replicas.
func (s *Server) rebalancePreferred(ctx context.Context, el *meta.Election) {
	usable := s.usableBrokers()
	for _, t := range s.cache.Topics() {
		for i, replicas := range t.Partitions {
			st, ok := s.cache.Partition(t.ID, int32(i))
			if !ok || st.Reassigning() || len(replicas) == 0 {
				continue
			}
			pref := replicas[0]
			if st.Leader == pref || !usable[pref] || !slices.Contains(st.ISR, pref) {
				continue
			}
			next := st
			next.Leader = pref
			next.LeaderEpoch++
			next.PartitionEpoch++
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.store.UpdatePartitionIf(wctx, t.ID, int32(i), next, el.Guard())
			cancel()
			if err == nil {
				s.log.Info("preferred leader restored", "topic", t.Name, "partition", i, "leader", pref, "leader_epoch", next.LeaderEpoch)
			}
		}
	}
}

// electLeader returns the state Kafka's rules call for, given which brokers
// are usable, and whether it differs from st.
func electLeader(st meta.PartitionState, replicas []int32, usable map[int32]bool, unclean bool) (meta.PartitionState, bool) {
	next := st
	isr := slices.DeleteFunc(slices.Clone(st.ISR), func(id int32) bool { return !usable[id] })
	if len(isr) == 0 {
		// Keep the last members: only they hold every committed record.
		isr = slices.Clone(st.ISR)
	}
	leader := st.Leader
	if leader < 0 || !usable[leader] || !slices.Contains(isr, leader) {
		leader = -1
		for _, r := range replicas {
			if usable[r] && slices.Contains(isr, r) {
				leader = r
				break
			}
		}
		if leader < 0 && unclean {
			for _, r := range replicas {
				if usable[r] {
					leader, isr = r, []int32{r}
					break
				}
			}
		}
	}
	next.ISR = isr
	next.Leader = leader
	leaderChanged := leader != st.Leader
	isrChanged := !slices.Equal(isr, st.ISR)
	if !leaderChanged && !isrChanged {
		return st, false
	}
	if leaderChanged {
		// Every change of leader, also to none, starts a new term: a
		// deposed leader's acks=all waits and fetch epochs are fenced.
		next.LeaderEpoch++
	}
	next.PartitionEpoch++
	return next, true
}

// probeDead reports whether a registered broker's process is certainly gone:
// its inter-broker listener refuses connections. It then revokes the
// broker's registration lease. A killed broker's registration would outlive
// it by the session timeout, and longer when the etcd leader died with it
// (etcd renews every lease on a leader change); revoking it lets leadership
// (and the controllership) move within a second instead. Only an explicit
// refusal counts: a timeout (a paused or partitioned broker) waits for the
// session to expire, as Kafka's controller does. A live broker whose lease
// is revoked by mistake simply registers again.
func (s *Server) probeDead(ctx context.Context, b meta.BrokerInfo) bool {
	if b.NodeID == s.cfg.NodeID {
		return false
	}
	addr, ok := s.resolveBroker(b.NodeID)
	if !ok {
		return false
	}
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err == nil {
		c.Close()
		return false
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	s.log.Info("broker refuses connections; ending its registration", "node_id", b.NodeID, "addr", addr)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.RevokeBrokerLease(rctx, b.Lease); err != nil {
		s.log.Warn("revoking a dead broker's lease failed", "node_id", b.NodeID, "err", err)
	}
	return true
}

// watchController probes the controller once a second while this broker is
// not the controller, so a dead controller is replaced at once.
func (s *Server) watchController(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := s.cache.ControllerID()
		if id < 0 || id == s.cfg.NodeID {
			continue
		}
		if b, ok := s.cache.Broker(id); ok {
			s.probeDead(ctx, b)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
