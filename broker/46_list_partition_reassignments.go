package broker

// ListPartitionReassignments, version 0: the partitions with a reassignment
// in progress (all topics when Topics is null), with their full replica
// list and the replicas being added and removed.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListPartitionReassignments(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	if !c.authorizedCluster(kmsg.ACLOperationDescribe) {
		return deny(req, kerr.ClusterAuthorizationFailed.Code)
	}
	s := c.srv
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	want := func(topic string, p int32) bool {
		if req.Topics == nil {
			return true
		}
		for _, t := range req.Topics {
			if t.Topic == topic && slices.Contains(t.Partitions, p) {
				return true
			}
		}
		return false
	}
	if req.Topics != nil {
		for _, t := range req.Topics {
			if _, ok := s.cache.Topic(t.Topic); !ok {
				resp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "topic " + t.Topic + " does not exist"
				resp.ErrorMessage = &msg
				return immediate(resp)
			}
		}
	}
	for _, t := range s.cache.Topics() {
		rt := kmsg.NewListPartitionReassignmentsResponseTopic()
		rt.Topic = t.Name
		for i, replicas := range t.Partitions {
			st, ok := s.cache.Partition(t.ID, int32(i))
			if !ok || !st.Reassigning() || !want(t.Name, int32(i)) {
				continue
			}
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition = int32(i)
			rp.Replicas = replicas
			rp.AddingReplicas = st.AddingReplicas
			rp.RemovingReplicas = st.RemovingReplicas
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return immediate(resp)
}
