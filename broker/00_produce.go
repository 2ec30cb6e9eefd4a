package broker

// Produce, versions 3-12 (v3 is the first that carries v2 record batches,
// the only format Sediment stores).
//
// Batches are validated at header level (magic, lengths, CRC-32C, record
// count, size), given offsets by the log and appended verbatim — never
// decompressed or re-encoded — through the partition layer. acks=0 gets no
// response; acks=1 is answered once the batch is durable per the topic's
// flush policy (group commit by default), acks=-1 once it is committed
// (below the high watermark). Transactional batches are taken like any
// other (the log tracks the producer's open transaction until its marker),
// once the first batch of a transaction in a partition has been verified
// with the transaction coordinator (KIP-890 part 1, txn_verify.go).

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/broker/txn"
	"github.com/sedimentio/sediment/segment"
)

// produced is an append whose acknowledgement the response waits for.
type produced struct {
	p   *partition.Partition
	res partition.AppendResult
	sp  *kmsg.ProduceResponseTopicPartition // its entry in the response
}

func handleProduce(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var waits []produced
	denied := c.produceCheck(req.TransactionID)
	// Sized up front, so the entries' addresses stay valid for the waits.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt, st := &req.Topics[i], &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			if w, ok := c.produce(req, resp, rt.Topic, &rt.Partitions[j], &st.Partitions[j], denied(rt.Topic)); ok {
				waits = append(waits, w)
			}
		}
	}
	switch {
	case req.Acks == 0:
		return &pending{noResponse: true}, nil
	case len(waits) == 0:
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
			if err := w.p.Wait(ctx, w.res, partition.Acks(req.Acks)); err != nil {
				w.sp.ErrorCode = errorCode(err)
				if w.sp.ErrorCode == kerr.KafkaStorageError.Code {
					c.log.Error("making produce durable failed", "partition", w.p.String(), "err", err)
				}
			}
		}
		return outgoing{resp: resp}
	}}, nil
}

// produce appends one partition's batches and fills in its response entry.
// It reports whether the response must wait for the append.
func (c *conn) produce(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, topic string,
	rp *kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition, denied int16) (produced, bool) {
	s := c.srv
	*sp = kmsg.NewProduceResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	switch req.Acks {
	case 0, 1, -1:
	default:
		sp.ErrorCode = kerr.InvalidRequiredAcks.Code
		return produced{}, false
	}
	if denied != 0 { // authorization (authz.go)
		sp.ErrorCode = denied
		return produced{}, false
	}
	if topic == group.OffsetsTopic || topic == txn.StateTopic {
		// Only the coordinators write their internal topics, as in Kafka.
		sp.ErrorCode = kerr.InvalidTopicException.Code
		return produced{}, false
	}
	p, err := s.parts.Leader(topic, rp.Partition, -1)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		s.leaderHint(topic, rp.Partition, &sp.CurrentLeader, resp)
		return produced{}, false
	}
	if len(rp.Records) == 0 {
		sp.ErrorCode = kerr.CorruptMessage.Code
		return produced{}, false
	}
	guard, code := c.verifyProduce(req, topic, rp.Partition, p, rp.Records)
	if code != 0 {
		sp.ErrorCode = code
		c.log.Debug("produce refused: its transaction was not verified", "partition", p.String(), "error_code", code)
		return produced{}, false
	}
	res, err := p.AppendVerified(rp.Records, partition.Acks(req.Acks), guard)
	sp.LogStartOffset = res.LogStartOffset
	if err != nil {
		sp.ErrorCode = errorCode(err)
		if errors.Is(err, segment.ErrTxnNotVerified) {
			sp.ErrorCode = produceVerifyCode(sp.ErrorCode, req.Version)
		}
		if sp.ErrorCode == kerr.KafkaStorageError.Code {
			c.log.Error("append failed", "partition", p.String(), "err", err)
		} else {
			c.log.Debug("produce rejected", "partition", p.String(), "err", err)
		}
		return produced{}, false
	}
	if !res.Duplicate {
		s.metrics.bytesIn.Add(float64(len(rp.Records)))
	}
	sp.BaseOffset, sp.LogAppendTime = res.FirstOffset, res.LogAppendTime
	return produced{p: p, res: res, sp: sp}, true
}
