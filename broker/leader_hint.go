package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-951: a NOT_LEADER_OR_FOLLOWER answer to Produce (v10+) and Fetch (v16+)
// names the current leader and its endpoint, so the client can move without
// a metadata round trip.

// currentLeader is the leader and epoch etcd names for a partition.
func (s *Server) currentLeader(topic string, part int32) (int32, int32, bool) {
	t, ok := s.cache.Topic(topic)
	if !ok {
		return -1, -1, false
	}
	st, ok := s.cache.Partition(t.ID, part)
	if !ok || st.Leader < 0 {
		return -1, -1, false
	}
	return st.Leader, st.LeaderEpoch, true
}

func (s *Server) leaderHint(topic string, part int32, cl *kmsg.ProduceResponseTopicPartitionCurrentLeader, resp *kmsg.ProduceResponse) {
	id, epoch, ok := s.currentLeader(topic, part)
	if !ok {
		return
	}
	cl.LeaderID, cl.LeaderEpoch = id, epoch
	if slices.ContainsFunc(resp.Brokers, func(b kmsg.ProduceResponseBroker) bool { return b.NodeID == id }) {
		return
	}
	if b, ok := s.cache.Broker(id); ok {
		rb := kmsg.NewProduceResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, b.Host, b.Port
		if b.Rack != "" {
			rack := b.Rack
			rb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
}

func (s *Server) fetchLeaderHint(topic string, part int32, cl *kmsg.FetchResponseTopicPartitionCurrentLeader, resp *kmsg.FetchResponse) {
	id, epoch, ok := s.currentLeader(topic, part)
	if !ok {
		return
	}
	cl.LeaderID, cl.LeaderEpoch = id, epoch
	if slices.ContainsFunc(resp.Brokers, func(b kmsg.FetchResponseBroker) bool { return b.NodeID == id }) {
		return
	}
	if b, ok := s.cache.Broker(id); ok {
		rb := kmsg.NewFetchResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, b.Host, b.Port
		if b.Rack != "" {
			rack := b.Rack
			rb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
}
