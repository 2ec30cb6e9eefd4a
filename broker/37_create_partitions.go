package broker

// CreatePartitions, versions 0-3: grows a topic to the requested count, with
// the client's assignment or a round-robin one.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

func handleCreatePartitions(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(req.TimeoutMillis))
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !c.authorizedTopic(kmsg.ACLOperationAlter, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		err := s.updateTopic(ctx, rt.Topic, func(t *meta.Topic) (map[int32]meta.PartitionState, error) {
			cur := int32(len(t.Partitions))
			switch {
			case rt.Count <= cur:
				return nil, newTopicError(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", rt.Topic, cur, rt.Count)
			case rt.Count > maxPartitionsPerTopic:
				return nil, newTopicError(kerr.InvalidPartitions, "partition count %d exceeds the limit of %d", rt.Count, maxPartitionsPerTopic)
			}
			add := rt.Count - cur
			var assign [][]int32
			if rt.Assignment != nil {
				if int32(len(rt.Assignment)) != add {
					return nil, newTopicError(kerr.InvalidReplicaAssignment, "%d assignments given for %d new partitions", len(rt.Assignment), add)
				}
				for _, a := range rt.Assignment {
					assign = append(assign, a.Replicas)
				}
				if err := validateAssignment(assign, s.cache.Brokers()); err != nil {
					return nil, newTopicError(kerr.InvalidReplicaAssignment, "%v", err)
				}
				if len(assign[0]) != len(t.Partitions[0]) {
					return nil, newTopicError(kerr.InvalidReplicaAssignment, "new partitions need %d replicas like the existing ones", len(t.Partitions[0]))
				}
			} else {
				var err error
				assign, err = assignReplicas(s.cache.Brokers(), cur, add, int16(len(t.Partitions[0])))
				if err != nil {
					return nil, newTopicError(kerr.InvalidReplicationFactor, "%v", err)
				}
			}
			if req.ValidateOnly {
				return nil, errValidateOnly
			}
			states := map[int32]meta.PartitionState{}
			for i, st := range initialStates(assign) {
				states[cur+int32(i)] = st
			}
			t.Partitions = append(t.Partitions, assign...)
			return states, nil
		})
		st.ErrorCode, st.ErrorMessage = errorCodeMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
