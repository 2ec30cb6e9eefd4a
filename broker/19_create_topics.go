package broker

// CreateTopics, versions 2-7. Topics are written to etcd (topic id,
// assignment, configs, partition states in one transaction); the response is
// sent once this broker has opened its local partitions. v5+ returns the
// resolved configs, partition count and replication factor.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateTopics(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(req.TimeoutMillis))
	defer cancel()
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			code, msg := errorCodeMessage(newTopicError(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic))
			st.ErrorCode, st.ErrorMessage = code, msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !c.authorizedCreateTopic(rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		spec := topicSpec{name: rt.Topic, partitions: rt.NumPartitions, rf: rt.ReplicationFactor, configs: map[string]string{}}
		for _, a := range rt.ReplicaAssignment {
			for int(a.Partition) >= len(spec.assignment) && len(spec.assignment) <= maxPartitionsPerTopic {
				spec.assignment = append(spec.assignment, nil)
			}
			if int(a.Partition) < len(spec.assignment) && a.Partition >= 0 {
				spec.assignment[a.Partition] = a.Replicas
			}
		}
		for _, cfg := range rt.Configs {
			if cfg.Value != nil {
				spec.configs[cfg.Name] = *cfg.Value
			}
		}
		t, err := s.createTopic(ctx, spec, req.ValidateOnly)
		st.ErrorCode, st.ErrorMessage = errorCodeMessage(err)
		if err == nil {
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			st.ReplicationFactor = int16(len(t.Partitions[0]))
			st.Configs = s.createTopicConfigs(t.Configs)
			if !c.authorizedTopic(kmsg.ACLOperationDescribeConfigs, t.Name) { // as Kafka: configs need DESCRIBE_CONFIGS
				st.Configs, st.ConfigErrorCode = nil, kerr.TopicAuthorizationFailed.Code
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}

func (s *Server) createTopicConfigs(overrides map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, tc := range topicConfigs {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = tc.name
		v, ok := overrides[tc.name]
		c.Source = int8(kmsg.ConfigSourceDefaultConfig)
		if ok {
			c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		} else {
			v = tc.def(s)
		}
		c.Value = &v
		out = append(out, c)
	}
	return out
}
