package broker

// OffsetForLeaderEpoch, versions 0-4: for a leader epoch, the largest epoch
// this leader knows that is not above it and where that epoch ends (the start
// of the next epoch, or the log end), over the whole log including the tier.
// A returning follower truncates a divergent tail with it (KIP-101, KIP-279);
// consumers detect truncation with it (KIP-320).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	allowed := c.replicaCheck(kmsg.ACLOperationDescribe, req.ReplicaID, kerr.ClusterAuthorizationFailed.Code)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, err := c.srv.parts.Leader(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			if code := allowed.code(rt.Topic); code != 0 {
				sp.ErrorCode = code
			} else if err != nil {
				sp.ErrorCode = errorCode(err)
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(c.ctx, rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
