package broker

// ElectLeaders, versions 0-2: preferred election (the first assigned replica
// takes over when it is live and in the ISR) or unclean election (any live
// replica of a partition without a leader). All partitions when Topics is
// null. Writes are compare-and-swaps on the partition state.

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

func handleElectLeaders(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ElectLeadersRequest)
	if !c.authorizedCluster(kmsg.ACLOperationAlter) {
		return deny(req, kerr.ClusterAuthorizationFailed.Code)
	}
	s := c.srv
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(req.TimeoutMillis))
	defer cancel()
	unclean := req.Version >= 1 && req.ElectionType == 1
	if req.Version >= 1 && req.ElectionType != 0 && req.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return immediate(resp)
	}
	targets := map[string][]int32{}
	if req.Topics == nil {
		for _, t := range s.cache.Topics() {
			for i := range t.Partitions {
				targets[t.Name] = append(targets[t.Name], int32(i))
			}
		}
	} else {
		for _, t := range req.Topics {
			targets[t.Topic] = append(targets[t.Topic], t.Partitions...)
		}
	}
	for topic, parts := range targets {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = topic
		for _, p := range parts {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition = p
			rp.ErrorCode, rp.ErrorMessage = errorCodeMessage(s.electLeader(ctx, topic, p, unclean))
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return immediate(resp)
}

func (s *Server) usableBrokers() map[int32]bool {
	usable := map[int32]bool{}
	for _, b := range s.cache.Brokers() {
		if !b.ShuttingDown {
			usable[b.NodeID] = true
		}
	}
	return usable
}

// electLeader runs one preferred or unclean election.
func (s *Server) electLeader(ctx context.Context, topic string, part int32, unclean bool) error {
	t, ok := s.cache.Topic(topic)
	if !ok || part < 0 || int(part) >= len(t.Partitions) {
		return newTopicError(kerr.UnknownTopicOrPartition, "%s-%d does not exist", topic, part)
	}
	st, ok := s.cache.Partition(t.ID, part)
	if !ok {
		return newTopicError(kerr.UnknownTopicOrPartition, "%s-%d has no state", topic, part)
	}
	usable := s.usableBrokers()
	replicas := t.Partitions[part]
	next := st
	if unclean {
		if st.Leader >= 0 && usable[st.Leader] {
			return newTopicError(kerr.ElectionNotNeeded, "%s-%d has a leader", topic, part)
		}
		i := slices.IndexFunc(replicas, func(id int32) bool { return usable[id] })
		if i < 0 {
			return newTopicError(kerr.EligibleLeadersNotAvailable, "no replica of %s-%d is live", topic, part)
		}
		next.Leader, next.ISR = replicas[i], []int32{replicas[i]}
	} else {
		pref := replicas[0]
		if st.Leader == pref {
			return newTopicError(kerr.ElectionNotNeeded, "broker %d already leads %s-%d", pref, topic, part)
		}
		if !usable[pref] || !slices.Contains(st.ISR, pref) {
			return newTopicError(kerr.PreferredLeaderNotAvailable, "preferred replica %d of %s-%d is not live (%v) or not in the ISR %v", pref, topic, part, usable[pref], st.ISR)
		}
		next.Leader = pref
	}
	next.LeaderEpoch++
	next.PartitionEpoch++
	rev, err := s.store.UpdatePartition(ctx, t.ID, part, next)
	if errors.Is(err, meta.ErrConflict) {
		return newTopicError(kerr.RequestTimedOut, "%s-%d changed meanwhile; try again", topic, part)
	}
	if err != nil {
		return newTopicError(kerr.KafkaStorageError, "writing the election failed: %v", err)
	}
	s.log.Info("leader elected on request", "topic", topic, "partition", part, "leader", next.Leader,
		"leader_epoch", next.LeaderEpoch, "unclean", unclean)
	return s.syncMeta(ctx, rev)
}
