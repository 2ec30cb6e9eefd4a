package broker

// Metadata, versions 0-12. Brokers come from the live registrations in etcd,
// topics and partition leadership from the metadata cache. Unknown topics
// are created when the request allows it (v4+) and auto.create.topics.enable
// is on, with num.partitions and default.replication.factor, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/txn"
	"github.com/sedimentio/sediment/meta"
)

func handleMetadata(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = s.metadataBrokers(c.listenerName())
	id := s.store.ClusterID()
	resp.ClusterID = &id
	resp.ControllerID = s.controllerID()

	allowCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range s.cache.Topics() {
			if c.visible(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name) { // authz.go
				resp.Topics = append(resp.Topics, s.metadataTopic(t))
			}
		}
		return c.metadataOps(req, resp)
	}
	for _, rt := range req.Topics {
		if st, denied := c.metadataDenied(rt, allowCreate); denied {
			resp.Topics = append(resp.Topics, st)
			continue
		}
		var (
			t  meta.Topic
			ok bool
		)
		if rt.Topic != nil {
			t, ok = s.cache.Topic(*rt.Topic)
		} else {
			t, ok = s.cache.TopicByID(meta.TopicID(rt.TopicID))
		}
		if !ok && rt.Topic != nil && allowCreate {
			ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(0))
			created, err := s.createTopic(ctx, topicSpec{name: *rt.Topic, partitions: -1, rf: -1}, false)
			cancel()
			if err == nil {
				t, ok = created, true
			} else if tt, exists := s.cache.Topic(*rt.Topic); exists {
				t, ok = tt, true // lost a race with another creator
			} else {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = rt.Topic
				st.ErrorCode, _ = errorCodeMessage(err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
		}
		if !ok {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(t))
	}
	return c.metadataOps(req, resp)
}

// metadataBrokers are the live brokers as clients of the named listener
// reach them; brokers without that listener are left out, as in Kafka.
func (s *Server) metadataBrokers(listenerName string) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, b := range s.cache.Brokers() {
		host, port, ok := endpointOn(b, listenerName)
		if !ok {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID = b.NodeID
		mb.Host = host
		mb.Port = port
		mb.Rack = rackPtr(b)
		out = append(out, mb)
	}
	return out
}

// controllerID is the broker elected controller through etcd.
func (s *Server) controllerID() int32 { return s.cache.ControllerID() }

func (s *Server) metadataTopic(t meta.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic = &name
	st.TopicID = t.ID
	st.IsInternal = t.Name == group.OffsetsTopic || t.Name == txn.StateTopic
	live := map[int32]bool{}
	for _, b := range s.cache.Brokers() {
		live[b.NodeID] = true
	}
	for i, replicas := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = int32(i)
		sp.Replicas = replicas
		sp.Leader = -1
		if ps, ok := s.cache.Partition(t.ID, int32(i)); ok {
			sp.Leader = ps.Leader
			sp.LeaderEpoch = ps.LeaderEpoch
			sp.ISR = ps.ISR
		}
		for _, r := range replicas {
			if !live[r] {
				sp.OfflineReplicas = append(sp.OfflineReplicas, r)
			}
		}
		if sp.Leader < 0 || !live[sp.Leader] {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
