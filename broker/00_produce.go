package broker

// Produce, versions 3-12 (v3 is the first that carries v2 record batches,
// the only format Sediment stores).
//
// Batches are validated at header level (magic, lengths, CRC-32C, record
// count, size), given offsets by the log and appended verbatim — never
// decompressed or re-encoded. acks=0 gets no response; acks=1 and acks=-1 are
// answered once the batch is durable per the topic's flush policy (group
// commit by default) and so visible below the high watermark.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/segment"
)

func handleProduce(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	type appended struct {
		p     *partition
		next  int64 // the offset after the appended batches
		epoch int32 // the leadership term it was appended in
	}
	var waits []appended
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1

	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			p, code := s.leaderFor(rt.Topic, rp.Partition)
			var l *repl.Leader
			if p != nil {
				l = p.leader.Load()
			}
			switch {
			case !acksOK:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			case req.TransactionID != nil:
				// Transactions arrive with the coordinators milestone.
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			case l == nil:
				if code == 0 {
					code = kerr.NotLeaderForPartition.Code
				}
				sp.ErrorCode = code
				s.leaderHint(rt.Topic, rp.Partition, &sp.CurrentLeader, resp)
			case len(rp.Records) == 0:
				sp.ErrorCode = kerr.CorruptMessage.Code
			case req.Acks == -1 && len(l.ISR()) < int(p.minISR.Load()):
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
			default:
				res, err := p.log.AppendLeader(rp.Records, l.Epoch())
				if err != nil {
					sp.ErrorCode = produceErrorCode(err)
					if sp.ErrorCode == kerr.KafkaStorageError.Code {
						c.log.Error("append failed", "partition", p.String(), "err", err)
					} else {
						c.log.Debug("produce rejected", "partition", p.String(), "err", err)
					}
					sp.LogStartOffset = p.log.LogStartOffset()
					break
				}
				if !res.Duplicate {
					s.metrics.bytesIn.Add(float64(len(rp.Records)))
				}
				sp.BaseOffset = res.FirstOffset
				sp.LogAppendTime = res.LogAppendTime
				sp.LogStartOffset = res.LogStartOffset
				// Followers fetch it now; the partition's flusher starts
				// syncing at once, in parallel with every other partition's;
				// durable-as-written (flush to the OS) may advance the
				// high watermark already.
				p.appended()
				p.updateHW()
				p.requestFlush()
				st.Partitions = append(st.Partitions, sp)
				waits = append(waits, appended{p: p, next: res.LastOffset + 1, epoch: l.Epoch()})
				continue
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return &pending{noResponse: true}, nil
	}
	if len(waits) == 0 {
		return immediate(resp)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, w := range waits {
			sp := findProducePartition(resp, w.p.topic, w.p.index)
			var err error
			if req.Acks == -1 {
				err = w.p.waitHW(ctx, w.next, w.epoch)
			} else {
				err = w.p.log.WaitDurable(ctx, w.next)
			}
			if err != nil {
				switch {
				case errors.Is(err, context.DeadlineExceeded):
					sp.ErrorCode = kerr.RequestTimedOut.Code
				case errors.Is(err, errNotLeader):
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				case errors.Is(err, errNotEnoughReplicasAfterAppend):
					sp.ErrorCode = kerr.NotEnoughReplicasAfterAppend.Code
				default:
					c.log.Error("making produce durable failed", "partition", w.p.String(), "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				}
			}
		}
		return outgoing{resp: resp}
	}}, nil
}

func findProducePartition(resp *kmsg.ProduceResponse, topic string, p int32) *kmsg.ProduceResponseTopicPartition {
	for i := range resp.Topics {
		if resp.Topics[i].Topic != topic {
			continue
		}
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].Partition == p {
				return &resp.Topics[i].Partitions[j]
			}
		}
	}
	return new(kmsg.ProduceResponseTopicPartition) // unreachable: every wait has an entry
}

func produceErrorCode(err error) int16 {
	switch {
	case errors.Is(err, segment.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, segment.ErrUnsupportedMagic):
		return kerr.InvalidRecord.Code
	case errors.Is(err, segment.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, segment.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, segment.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}
