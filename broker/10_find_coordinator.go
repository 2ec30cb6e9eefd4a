package broker

// FindCoordinator, versions 0-6 (v4+: a batch of keys). The coordinator of a
// group is the leader of its __consumer_offsets partition (hash(group) % N,
// as Kafka computes it); the first request creates the topic
// (offsets.topic.num.partitions, offsets.topic.replication.factor capped by
// the live brokers). Transactional ids wait for the transactions milestone.

import (
	"context"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/meta"
)

func handleFindCoordinator(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		keys := req.CoordinatorKeys
		if req.Version < 4 {
			keys = []string{req.CoordinatorKey}
		}
		for _, k := range keys {
			fc := c.srv.findCoordinator(ctx, req.CoordinatorType, k)
			fc.Key = k
			resp.Coordinators = append(resp.Coordinators, fc)
		}
		if req.Version < 4 {
			fc := resp.Coordinators[0]
			resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = fc.ErrorCode, fc.ErrorMessage, fc.NodeID, fc.Host, fc.Port
			resp.Coordinators = nil
		}
		return outgoing{resp: resp}
	}}, nil
}

func (s *Server) findCoordinator(ctx context.Context, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	fc := kmsg.NewFindCoordinatorResponseCoordinator()
	fc.NodeID, fc.Port = -1, -1
	fail := func(k *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		fc.ErrorCode, fc.ErrorMessage = k.Code, &msg
		return fc
	}
	switch {
	case keyType == 1:
		return fail(kerr.TransactionalIDAuthorizationFailed, "transactions are not supported yet")
	case keyType != 0:
		return fail(kerr.InvalidRequest, "unknown coordinator key type "+strconv.Itoa(int(keyType)))
	case key == "":
		return fail(kerr.InvalidRequest, "empty group id")
	}
	t, err := s.ensureOffsetsTopic(ctx)
	if err != nil {
		return fail(kerr.CoordinatorNotAvailable, "creating "+group.OffsetsTopic+": "+err.Error())
	}
	st, ok := s.cache.Partition(t.ID, group.PartitionFor(key, int32(len(t.Partitions))))
	if !ok || st.Leader < 0 {
		return fail(kerr.CoordinatorNotAvailable, "the group's "+group.OffsetsTopic+" partition has no leader")
	}
	b, ok := s.cache.Broker(st.Leader)
	if !ok {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator is not registered")
	}
	fc.NodeID, fc.Host, fc.Port = b.NodeID, b.Host, b.Port
	return fc
}

// ensureOffsetsTopic returns __consumer_offsets, creating it first if it
// does not exist.
func (s *Server) ensureOffsetsTopic(ctx context.Context) (meta.Topic, error) {
	if t, ok := s.cache.Topic(group.OffsetsTopic); ok {
		return t, nil
	}
	rf := min(int(s.cfg.OffsetsTopicReplicationFactor), len(s.cache.Brokers()))
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(0))
	defer cancel()
	t, err := s.createTopic(ctx, topicSpec{name: group.OffsetsTopic, partitions: s.cfg.OffsetsTopicPartitions,
		rf: int16(max(rf, 1)), configs: offsetsTopicConfigs(s.cfg)}, false)
	var te *topicError
	if errors.As(err, &te) && te.code == kerr.TopicAlreadyExists.Code {
		if t, ok := s.cache.Topic(group.OffsetsTopic); ok {
			return t, nil
		}
	}
	if err == nil {
		s.log.Info("created "+group.OffsetsTopic, "partitions", len(t.Partitions), "replication_factor", rf)
	}
	return t, err
}

// offsetsTopicConfigs are the overrides __consumer_offsets is created with:
// compacted (the last record of each group and offset key is what counts),
// offsets.topic.segment.bytes.
func offsetsTopicConfigs(cfg Config) map[string]string {
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.FormatInt(cfg.OffsetsTopicSegmentBytes, 10)}
}
