package broker

// AlterPartitionReassignments, versions 0-1 (KIP-455). A reassignment is
// started by writing the union of old and new replicas as the topic's
// assignment, with the adding and removing replicas in the partition state,
// in one transaction that also requires both keys unchanged. New replicas
// then follow the leader; once all of them are in the ISR the controller
// finishes it (controller.go). Null replicas cancel a reassignment in
// progress.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

func handleAlterPartitionReassignments(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	if !c.authorizedCluster(kmsg.ACLOperationAlter) {
		return deny(req, kerr.ClusterAuthorizationFailed.Code)
	}
	s := c.srv
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	resp.AllowReplicationFactorChange = allowRF
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(req.TimeoutMillis))
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := s.reassign(ctx, rt.Topic, rp.Partition, rp.Replicas, allowRF)
			sp.ErrorCode, sp.ErrorMessage = errorCodeMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}

// reassign starts (target non-nil) or cancels (nil) a reassignment.
func (s *Server) reassign(ctx context.Context, topic string, part int32, target []int32, allowRF bool) error {
	live := map[int32]bool{}
	for _, b := range s.cache.Brokers() {
		live[b.NodeID] = true
	}
	if target != nil {
		if len(target) == 0 {
			return newTopicError(kerr.InvalidReplicaAssignment, "the new replica list is empty")
		}
		seen := map[int32]bool{}
		for _, id := range target {
			if seen[id] {
				return newTopicError(kerr.InvalidReplicaAssignment, "broker %d appears twice", id)
			}
			seen[id] = true
			if !live[id] {
				return newTopicError(kerr.InvalidReplicaAssignment, "broker %d is not live", id)
			}
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		t, ok := s.cache.Topic(topic)
		if !ok || part < 0 || int(part) >= len(t.Partitions) {
			return newTopicError(kerr.UnknownTopicOrPartition, "%s-%d does not exist", topic, part)
		}
		st, ok := s.cache.Partition(t.ID, part)
		if !ok {
			return newTopicError(kerr.UnknownTopicOrPartition, "%s-%d has no state", topic, part)
		}
		current := t.Partitions[part]
		original := slices.DeleteFunc(slices.Clone(current), func(id int32) bool { return slices.Contains(st.AddingReplicas, id) })
		next := st
		next.PartitionEpoch++
		switch {
		case target == nil:
			if !st.Reassigning() {
				return newTopicError(kerr.NoReassignmentInProgress, "no reassignment of %s-%d is in progress", topic, part)
			}
			t.Partitions[part] = original
			next.AddingReplicas, next.RemovingReplicas = nil, nil
		case !allowRF && len(target) != len(original):
			return newTopicError(kerr.InvalidReplicationFactor, "the reassignment changes the replication factor from %d to %d", len(original), len(target))
		case sameSet(target, original):
			t.Partitions[part] = slices.Clone(target)
			next.AddingReplicas, next.RemovingReplicas = nil, nil
		default:
			full := slices.Clone(target)
			for _, id := range original {
				if !slices.Contains(full, id) {
					full = append(full, id)
				}
			}
			t.Partitions[part] = full
			next.AddingReplicas = slices.DeleteFunc(slices.Clone(target), func(id int32) bool { return slices.Contains(original, id) })
			next.RemovingReplicas = slices.DeleteFunc(slices.Clone(original), func(id int32) bool { return slices.Contains(target, id) })
		}
		// Keep the ISR within the assignment.
		next.ISR = slices.DeleteFunc(slices.Clone(next.ISR), func(id int32) bool { return !slices.Contains(t.Partitions[part], id) })
		rev, err := s.store.UpdateTopicIf(ctx, t, map[int32]meta.PartitionState{part: next},
			s.store.PartitionUnchanged(t.ID, part, st.Revision))
		if errors.Is(err, meta.ErrConflict) {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			s.cache.WaitRevision(wctx, s.cache.Revision()+1)
			cancel()
			continue
		}
		if err != nil {
			return newTopicError(kerr.KafkaStorageError, "writing the reassignment failed: %v", err)
		}
		s.log.Info("partition reassignment", "topic", topic, "partition", part, "target", target,
			"adding", next.AddingReplicas, "removing", next.RemovingReplicas)
		return s.syncMeta(ctx, rev)
	}
	return newTopicError(kerr.RequestTimedOut, "%s-%d kept changing; try again", topic, part)
}

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// finishReassignment is the controller's step once every new replica is in
// the ISR: the assignment becomes the target, removed replicas leave the ISR,
// and a leader being removed hands over to a target replica in the ISR.
func finishReassignment(t meta.Topic, part int32, st meta.PartitionState, usable map[int32]bool) (meta.Topic, meta.PartitionState, bool) {
	if !st.Reassigning() {
		return t, st, false
	}
	full := t.Partitions[part]
	target := slices.DeleteFunc(slices.Clone(full), func(id int32) bool { return slices.Contains(st.RemovingReplicas, id) })
	for _, id := range target {
		if !slices.Contains(st.ISR, id) {
			return t, st, false // still catching up
		}
	}
	next := st
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	next.ISR = slices.DeleteFunc(slices.Clone(st.ISR), func(id int32) bool { return !slices.Contains(target, id) })
	if !slices.Contains(target, st.Leader) {
		next.Leader = -1
		for _, id := range target {
			if usable[id] && slices.Contains(next.ISR, id) {
				next.Leader = id
				break
			}
		}
		next.LeaderEpoch++
	}
	next.PartitionEpoch++
	parts := slices.Clone(t.Partitions)
	parts[part] = target
	t.Partitions = parts
	return t, next, true
}
