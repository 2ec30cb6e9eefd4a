package broker

// FindCoordinator, versions 0-6 (v4+: a batch of keys). The coordinator of a
// group is the leader of its __consumer_offsets partition, that of a
// transactional id the leader of its __transaction_state partition
// (hash(key) % N, as Kafka computes it). The first request of each kind
// creates its topic: offsets.topic.num.partitions and
// .replication.factor, or transaction.state.log.num.partitions and
// .replication.factor, the replication factor capped by the live brokers.

import (
	"context"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/txn"
	"github.com/sedimentio/sediment/meta"
)

func handleFindCoordinator(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	denied := c.coordinatorDenied(req)
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		keys := req.CoordinatorKeys
		if req.Version < 4 {
			keys = []string{req.CoordinatorKey}
		}
		for _, k := range keys {
			if fc, no := denied[k]; no {
				fc.Key = k
				resp.Coordinators = append(resp.Coordinators, fc)
				continue
			}
			fc := c.srv.findCoordinator(ctx, req.CoordinatorType, k, c.listenerName())
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

func (s *Server) findCoordinator(ctx context.Context, keyType int8, key, listenerName string) kmsg.FindCoordinatorResponseCoordinator {
	fc := kmsg.NewFindCoordinatorResponseCoordinator()
	fc.NodeID, fc.Port = -1, -1
	fail := func(k *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		fc.ErrorCode, fc.ErrorMessage = k.Code, &msg
		return fc
	}
	var (
		t     meta.Topic
		err   error
		index func(string, int32) int32
	)
	switch {
	case keyType != 0 && keyType != 1:
		return fail(kerr.InvalidRequest, "unknown coordinator key type "+strconv.Itoa(int(keyType)))
	case key == "" && keyType == 0:
		return fail(kerr.InvalidRequest, "empty group id")
	case key == "":
		return fail(kerr.InvalidRequest, "empty transactional id")
	case keyType == 0:
		t, err = s.ensureOffsetsTopic(ctx)
		index = group.PartitionFor
	default:
		t, err = s.ensureTxnTopic(ctx)
		index = txn.PartitionFor
	}
	if err != nil {
		return fail(kerr.CoordinatorNotAvailable, "creating the coordinator's topic: "+err.Error())
	}
	st, ok := s.cache.Partition(t.ID, index(key, int32(len(t.Partitions))))
	if !ok || st.Leader < 0 {
		return fail(kerr.CoordinatorNotAvailable, "the key's "+t.Name+" partition has no leader")
	}
	b, ok := s.cache.Broker(st.Leader)
	if !ok {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator is not registered")
	}
	host, port, ok := endpointOn(b, listenerName)
	if !ok {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator has no listener "+listenerName)
	}
	fc.NodeID, fc.Host, fc.Port = b.NodeID, host, port
	return fc
}

// ensureOffsetsTopic returns __consumer_offsets, creating it first if it
// does not exist.
func (s *Server) ensureOffsetsTopic(ctx context.Context) (meta.Topic, error) {
	return s.ensureInternalTopic(ctx, group.OffsetsTopic, s.cfg.OffsetsTopicPartitions, s.cfg.OffsetsTopicReplicationFactor,
		func(int16) map[string]string { return offsetsTopicConfigs(s.cfg) })
}

// ensureTxnTopic returns __transaction_state, creating it first if it does
// not exist.
func (s *Server) ensureTxnTopic(ctx context.Context) (meta.Topic, error) {
	return s.ensureInternalTopic(ctx, txn.StateTopic, s.cfg.Txn.NumPartitions, s.cfg.Txn.ReplicationFactor,
		func(rf int16) map[string]string { return txnTopicConfigs(s.cfg, rf) })
}

// ensureInternalTopic returns a coordinator's topic, creating it if it does
// not exist with partitions and replication factor rf capped by the live
// brokers; configs are its overrides for the replication factor it gets.
// Brokers racing to create it all return the winner's topic.
func (s *Server) ensureInternalTopic(ctx context.Context, name string, partitions int32, rf int16, configs func(rf int16) map[string]string) (meta.Topic, error) {
	if t, ok := s.cache.Topic(name); ok {
		return t, nil
	}
	rf = int16(max(min(int(rf), len(s.cache.Brokers())), 1))
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(0))
	defer cancel()
	t, err := s.createTopic(ctx, topicSpec{name: name, partitions: partitions, rf: rf, configs: configs(rf)}, false)
	var te *topicError
	if errors.As(err, &te) && te.code == kerr.TopicAlreadyExists.Code {
		if t, ok := s.cache.Topic(name); ok {
			return t, nil
		}
	}
	if err == nil {
		s.log.Info("created "+name, "partitions", len(t.Partitions), "replication_factor", rf)
	}
	return t, err
}

// offsetsTopicConfigs are the overrides __consumer_offsets is created with:
// compacted (the last record of each group and offset key is what counts),
// offsets.topic.segment.bytes.
func offsetsTopicConfigs(cfg Config) map[string]string {
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.FormatInt(cfg.OffsetsTopicSegmentBytes, 10)}
}

// txnTopicConfigs are the overrides __transaction_state is created with:
// Kafka's (txn.Config.TopicConfigs), except that min.insync.replicas is
// capped by the replication factor the topic gets, and compression.type is
// left at "producer", the only value Sediment has (batches are stored as
// sent, and the coordinator sends them uncompressed). Kafka leaves
// transaction.state.log.min.isr (2) above a single broker's replication
// factor, so that transactions fail until the setting is lowered; a
// one-broker Sediment runs them out of the box.
func txnTopicConfigs(cfg Config, rf int16) map[string]string {
	m := cfg.Txn.TopicConfigs()
	delete(m, "compression.type")
	m["min.insync.replicas"] = strconv.Itoa(int(min(cfg.Txn.MinISR, int32(rf))))
	return m
}
