package broker

// WriteTxnMarkers, versions 0-1 (v2's transaction version belongs to
// KIP-890 part 2): a transaction coordinator, on this broker or another,
// has this broker write COMMIT or ABORT markers to partitions it leads. Each
// partition's marker is appended with acks=all and answered once committed,
// with its own error code (NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH,
// TRANSACTION_COORDINATOR_FENCED, ...). Kafka requires CLUSTER_ACTION;
// Sediment has no authorizer yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleWriteTxnMarkers(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	var writes []*markerWrite
	allowed := c.authorizedCluster(kmsg.ACLOperationClusterAction)
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(req.Markers))
	for i, m := range req.Markers {
		rm := &resp.Markers[i]
		*rm = kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		rm.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for j, t := range m.Topics {
			rt := &rm.Topics[j]
			*rt = kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for k, p := range t.Partitions {
				rp := &rt.Partitions[k]
				*rp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				if !allowed {
					rp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
					continue
				}
				writes = append(writes, &markerWrite{topic: t.Topic, partition: p, producerID: m.ProducerID,
					producerEpoch: m.ProducerEpoch, commit: m.Committed, coordinatorEpoch: m.CoordinatorEpoch, code: &rp.ErrorCode})
			}
		}
	}
	c.srv.appendMarkers(writes)
	return &pending{complete: func(ctx context.Context) outgoing {
		c.srv.awaitMarkers(ctx, writes)
		return outgoing{resp: resp}
	}}, nil
}
