package broker

// ListOffsets, versions 1-9: -1 latest (the high watermark), -2 earliest
// (the log start, in the tier when tiered), -3 the offset of the largest
// timestamp (KIP-734), -4 earliest local (KIP-405), -5 latest tiered
// (KIP-1005; -1 when nothing is tiered), and otherwise the first offset whose
// timestamp is at least the one asked for, searching the tier below the
// local log start (partition.ListOffset). The answer is built on the
// connection's writer goroutine, as a search in the tier may wait for GETs.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
)

func handleListOffsets(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	allowed := c.topicCheck(kmsg.ACLOperationDescribe).decided(func(yield func(string) bool) {
		for _, rt := range req.Topics {
			yield(rt.Topic)
		}
	})
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, c.listOffset(ctx, rt.Topic, rp, partition.Isolation(req.IsolationLevel), allowed.code(rt.Topic)))
			}
			resp.Topics = append(resp.Topics, st)
		}
		return outgoing{resp: resp}
	}}, nil
}

func (c *conn) listOffset(ctx context.Context, topic string, rp kmsg.ListOffsetsRequestTopicPartition, iso partition.Isolation, denied int16) kmsg.ListOffsetsResponseTopicPartition {
	sp := kmsg.NewListOffsetsResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
	if sp.ErrorCode = denied; denied != 0 {
		return sp
	}
	p, err := c.srv.parts.Leader(topic, rp.Partition, rp.CurrentLeaderEpoch)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp
	}
	o, err := p.ListOffset(ctx, rp.Timestamp, iso)
	sp.LeaderEpoch = o.LeaderEpoch
	if err != nil {
		sp.ErrorCode = errorCode(err)
		switch {
		case errors.Is(err, partition.ErrTierMetadata):
			c.log.Warn("reading remote segment metadata failed", "partition", p.String(), "err", err)
		case sp.ErrorCode == kerr.KafkaStorageError.Code:
			c.log.Error("offset for timestamp failed", "partition", p.String(), "err", err)
		}
		return sp
	}
	sp.Offset, sp.Timestamp = o.Offset, o.Timestamp
	return sp
}
