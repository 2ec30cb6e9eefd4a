package broker

// DeleteRecords, versions 0-2: advance a partition's log start offset
// (-1 means the high watermark) and drop whole segments below it.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	allowed := c.topicCheck(kmsg.ACLOperationDelete)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if sp.ErrorCode = allowed.code(rt.Topic); sp.ErrorCode != 0 {
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := c.srv.parts.Leader(rt.Topic, rp.Partition, -1)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecordsBefore(rp.Offset)
			}
			if sp.ErrorCode = errorCode(err); sp.ErrorCode == kerr.KafkaStorageError.Code {
				c.log.Error("delete records failed", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.Offset, "err", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
