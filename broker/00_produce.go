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
	"runtime"
	"sync"
	"sync/atomic"
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

// toAppend is one partition of a Produce request: its batches, its entry in
// the response, and once appended the append the response waits for (ok).
type toAppend struct {
	topic  string
	rp     *kmsg.ProduceRequestTopicPartition
	sp     *kmsg.ProduceResponseTopicPartition
	denied int16
	w      produced
	ok     bool
}

func handleProduce(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	denied := c.produceCheck(req.TransactionID)
	// Sized up front, so the entries' addresses stay valid for the waits.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	var all []toAppend
	size := 0
	for i := range req.Topics {
		rt, st := &req.Topics[i], &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		code := denied(rt.Topic)
		for j := range rt.Partitions {
			all = append(all, toAppend{topic: rt.Topic, rp: &rt.Partitions[j], sp: &st.Partitions[j], denied: code})
			size += len(rt.Partitions[j].Records)
		}
	}
	c.appendAll(req, resp, all, size)
	var waits []produced
	for _, a := range all {
		if a.ok {
			waits = append(waits, a.w)
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

// parallelAppendBytes is the size of a Produce request's records from which
// its partitions are appended by several goroutines (appendAll).
const parallelAppendBytes = 256 << 10

// appendAll appends the batches of every partition of a Produce request and
// fills in their response entries. A request of several partitions and at
// least parallelAppendBytes is appended by up to GOMAXPROCS goroutines, the
// connection's own among them, one partition at a time each: the copy of a
// partition's bytes into the page cache is most of the broker's CPU on the
// produce path (BENCH.md, "The broker's share"), so the request's appends
// end, and their syncs start, sooner than one after the other, and the
// connection reads the next request sooner. Appends to different partitions
// share nothing but the response's list of brokers (leader hints, under a
// lock). A transactional request (its verification may wait for the
// coordinator) and one naming a partition twice (whose appends keep the
// request's order) are appended one partition after the other.
func (c *conn) appendAll(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, all []toAppend, size int) {
	workers := min(runtime.GOMAXPROCS(0), len(all))
	if workers < 2 || size < parallelAppendBytes || req.TransactionID != nil || repeatsPartition(all) {
		for i := range all {
			a := &all[i]
			a.w, a.ok = c.produce(req, resp, a.topic, a.rp, a.sp, a.denied, nil)
		}
		return
	}
	var hints sync.Mutex
	var next atomic.Int64
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(all)); i = next.Add(1) - 1 {
			a := &all[i]
			a.w, a.ok = c.produce(req, resp, a.topic, a.rp, a.sp, a.denied, &hints)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// repeatsPartition reports whether a partition appears twice in all.
func repeatsPartition(all []toAppend) bool {
	type key struct {
		topic string
		part  int32
	}
	seen := make(map[key]struct{}, len(all))
	for _, a := range all {
		k := key{a.topic, a.rp.Partition}
		if _, ok := seen[k]; ok {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// produce appends one partition's batches and fills in its response entry.
// It reports whether the response must wait for the append. hints, when not
// nil, guards the response's broker list (appendAll's goroutines share it).
func (c *conn) produce(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, topic string,
	rp *kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition, denied int16, hints *sync.Mutex) (produced, bool) {
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
		if hints != nil {
			hints.Lock()
			defer hints.Unlock()
		}
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
