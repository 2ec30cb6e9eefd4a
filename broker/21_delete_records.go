package broker

// DeleteRecords, versions 0-2: advance a partition's log start offset
// (-1 means the high watermark) and drop whole segments below it.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, code := s.leaderFor(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = code
			default:
				off := rp.Offset
				hw := p.hw.Load()
				if off == -1 {
					off = hw
				}
				if off < 0 || off > hw {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				low, err := p.log.DeleteRecordsBefore(off)
				if err != nil {
					c.log.Error("delete records failed", "partition", p.String(), "offset", off, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
					break
				}
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
