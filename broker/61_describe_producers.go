package broker

// DescribeProducers, version 0: the producers whose state a partition's log
// keeps (id, epoch, last sequence and timestamp, the coordinator epoch of
// their last marker, the first offset of their open transaction), answered
// by the partition's leader as Kafka answers it (NOT_LEADER_OR_FOLLOWER
// elsewhere); a way to find a transaction left hanging.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeProducers(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	allowed := c.topicCheck(kmsg.ACLOperationRead)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, i := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = i
			if sp.ErrorCode = allowed.code(rt.Topic); sp.ErrorCode != 0 {
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := c.srv.parts.Leader(rt.Topic, i, -1)
			if err != nil {
				sp.ErrorCode = errorCode(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, pi := range p.Log().Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp = pi.ProducerID, int32(pi.ProducerEpoch), pi.LastSequence, pi.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordinatorEpoch, pi.CurrentTxnStartOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
