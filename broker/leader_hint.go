package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

// KIP-951: a NOT_LEADER_OR_FOLLOWER answer to Produce (v10+) and Fetch (v16+)
// names the current leader and its endpoint, so the client can move without
// a metadata round trip.

// currentLeader is the leader etcd names for a partition, its epoch and, when
// it is live, its registration.
func (s *Server) currentLeader(topic string, part int32) (id, epoch int32, b meta.BrokerInfo, live, ok bool) {
	tid, found := s.cache.TopicID(topic)
	if !found {
		return -1, -1, meta.BrokerInfo{}, false, false
	}
	st, found := s.cache.Partition(tid, part)
	if !found || st.Leader < 0 {
		return -1, -1, meta.BrokerInfo{}, false, false
	}
	b, live = s.cache.Broker(st.Leader)
	return st.Leader, st.LeaderEpoch, b, live, true
}

func rackPtr(b meta.BrokerInfo) *string {
	if b.Rack == "" {
		return nil
	}
	r := b.Rack
	return &r
}

func (s *Server) leaderHint(topic string, part int32, cl *kmsg.ProduceResponseTopicPartitionCurrentLeader, resp *kmsg.ProduceResponse) {
	id, epoch, b, live, ok := s.currentLeader(topic, part)
	if !ok {
		return
	}
	cl.LeaderID, cl.LeaderEpoch = id, epoch
	if live && !slices.ContainsFunc(resp.Brokers, func(x kmsg.ProduceResponseBroker) bool { return x.NodeID == id }) {
		resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: id, Host: b.Host, Port: b.Port, Rack: rackPtr(b)})
	}
}

func (s *Server) fetchLeaderHint(topic string, part int32, cl *kmsg.FetchResponseTopicPartitionCurrentLeader, resp *kmsg.FetchResponse) {
	id, epoch, b, live, ok := s.currentLeader(topic, part)
	if !ok {
		return
	}
	cl.LeaderID, cl.LeaderEpoch = id, epoch
	if live && !slices.ContainsFunc(resp.Brokers, func(x kmsg.FetchResponseBroker) bool { return x.NodeID == id }) {
		resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: id, Host: b.Host, Port: b.Port, Rack: rackPtr(b)})
	}
}
