package broker

// OffsetForLeaderEpoch, versions 0-4: for a leader epoch, the largest epoch
// this leader knows that is not above it and where that epoch ends (the start
// of the next epoch, or the log end). A returning follower truncates a
// divergent tail with it (KIP-101, KIP-279); consumers detect truncation with
// it (KIP-320).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, code := s.leaderForEpoch(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			if p == nil {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			cur := p.leader.Load().Epoch()
			switch le := rp.CurrentLeaderEpoch; {
			case le >= 0 && le < cur:
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case le > cur:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				s.ensureRemote(c.ctx, p) // on failure: the local epochs alone
				sp.LeaderEpoch, sp.EndOffset = p.endOffsetForEpoch(rp.LeaderEpoch)
				if rp.LeaderEpoch == cur && sp.LeaderEpoch < cur {
					// The current term has no batch yet: it ends at the log end.
					sp.LeaderEpoch, sp.EndOffset = cur, p.log.LogEndOffset()
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
