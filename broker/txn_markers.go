package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/broker/txn"
)

// markerWrite is one transaction marker for one partition this broker
// leads: appended by appendMarkers, awaited by awaitMarkers, which leave the
// partition's Kafka error code in *code.
type markerWrite struct {
	topic            string
	partition        int32
	producerID       int64
	producerEpoch    int16
	commit           bool
	coordinatorEpoch int32
	code             *int16

	p   *partition.Partition // nil: refused, *code says why
	res partition.AppendResult
}

// appendMarkers appends each marker to its partition (AppendMarker does not
// wait); a partition this broker does not lead, or that refuses the marker,
// gets its code at once.
func (s *Server) appendMarkers(ws []*markerWrite) {
	for _, w := range ws {
		p, err := s.parts.Leader(w.topic, w.partition, -1)
		if err == nil {
			w.res, err = p.AppendMarker(w.producerID, w.producerEpoch, w.commit, w.coordinatorEpoch)
		}
		if err != nil {
			*w.code = errorCode(err)
			s.logMarkerError(w, err)
			continue
		}
		w.p = p
	}
}

// awaitMarkers waits until each appended marker is committed (acks=all, at
// most the request timeout), and then tells the group coordinator of
// transactions ended in __consumer_offsets.
func (s *Server) awaitMarkers(ctx context.Context, ws []*markerWrite) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(0))
	defer cancel()
	for _, w := range ws {
		if w.p == nil {
			continue
		}
		if err := w.p.Wait(ctx, w.res, partition.AcksAll); err != nil {
			*w.code = errorCode(err)
			s.logMarkerError(w, err)
			continue
		}
		s.markerCommitted(w)
	}
}

// markerCommitted runs once a marker is committed in a partition led here:
// in __consumer_offsets, the group coordinator makes the producer's pending
// transactional offsets visible (COMMIT) or drops them (ABORT).
func (s *Server) markerCommitted(w *markerWrite) {
	if w.topic == group.OffsetsTopic {
		s.groups.CompleteTransaction(w.partition, w.producerID, w.producerEpoch, w.commit)
	}
}

func (s *Server) logMarkerError(w *markerWrite, err error) {
	if *w.code == kerr.KafkaStorageError.Code {
		s.log.Error("writing a transaction marker failed", "topic", w.topic, "partition", w.partition, "producer_id", w.producerID, "err", err)
		return
	}
	s.log.Debug("transaction marker refused", "topic", w.topic, "partition", w.partition, "producer_id", w.producerID, "err", err)
}

// markerWriter is the transaction coordinator's txn.MarkerWriter: markers
// for partitions this broker leads are written directly, the others are
// sent in one WriteTxnMarkers per leader over the inter-broker listener.
//
// Safe for concurrent use.
type markerWriter struct {
	s *Server

	mu     sync.Mutex
	peers  map[int32]*peer // by node id
	closed bool
}

var _ txn.MarkerWriter = (*markerWriter)(nil)

// peer is a client of another broker's inter-broker listener.
type peer struct {
	addr string
	cl   *kgo.Client
}

func newMarkerWriter(s *Server) *markerWriter {
	return &markerWriter{s: s, peers: map[int32]*peer{}}
}

// WriteMarkers writes m to each of its partitions, the leaders' shares
// concurrently, and returns each partition's code. A leader that cannot be
// reached fails its share with a retriable code; it never fails the whole.
func (w *markerWriter) WriteMarkers(ctx context.Context, m txn.Marker) ([]int16, error) {
	codes := make([]int16, len(m.Partitions))
	byLeader := map[int32][]int{} // indexes into m.Partitions
	for i, tp := range m.Partitions {
		leader, code := w.s.leaderOf(tp.Topic, tp.Partition)
		if code != 0 {
			codes[i] = code
			continue
		}
		byLeader[leader] = append(byLeader[leader], i)
	}
	var wg sync.WaitGroup
	for leader, idx := range byLeader {
		if leader == w.s.cfg.NodeID {
			wg.Go(func() { w.writeLocal(ctx, m, idx, codes) })
		} else {
			wg.Go(func() { w.writeRemote(ctx, leader, m, idx, codes) })
		}
	}
	wg.Wait()
	return codes, nil
}

// writeLocal writes the markers of m.Partitions[idx], which this broker
// leads, setting their codes.
func (w *markerWriter) writeLocal(ctx context.Context, m txn.Marker, idx []int, codes []int16) {
	ws := make([]*markerWrite, len(idx))
	for j, i := range idx {
		tp := m.Partitions[i]
		ws[j] = &markerWrite{topic: tp.Topic, partition: tp.Partition, producerID: m.ProducerID, producerEpoch: m.ProducerEpoch,
			commit: m.Commit, coordinatorEpoch: m.CoordinatorEpoch, code: &codes[i]}
	}
	w.s.appendMarkers(ws)
	w.s.awaitMarkers(ctx, ws)
}

// writeRemote sends the markers of m.Partitions[idx] to their leader in one
// WriteTxnMarkers and sets their codes from its answer.
func (w *markerWriter) writeRemote(ctx context.Context, leader int32, m txn.Marker, idx []int, codes []int16) {
	fail := func(code int16) {
		for _, i := range idx {
			codes[i] = code
		}
	}
	cl, err := w.client(leader)
	if err != nil {
		w.s.log.Warn("no client for a transaction marker's leader", "leader", leader, "err", err)
		fail(kerr.BrokerNotAvailable.Code)
		return
	}
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = m.ProducerID, m.ProducerEpoch, m.Commit
	mk.CoordinatorEpoch, mk.TransactionVersion = m.CoordinatorEpoch, m.TransactionVersion
	topics := map[string]int{} // index in mk.Topics
	for _, i := range idx {
		tp := m.Partitions[i]
		j, ok := topics[tp.Topic]
		if !ok {
			j = len(mk.Topics)
			topics[tp.Topic] = j
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.Topic
			mk.Topics = append(mk.Topics, t)
		}
		mk.Topics[j].Partitions = append(mk.Topics[j].Partitions, tp.Partition)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{mk}
	rctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	kresp, err := cl.SeedBrokers()[0].Request(rctx, req)
	if err != nil {
		if ctx.Err() == nil {
			w.s.log.Warn("sending transaction markers failed", "leader", leader, "err", err)
		}
		code := kerr.NetworkException.Code
		if errors.Is(err, context.DeadlineExceeded) {
			code = kerr.RequestTimedOut.Code
		}
		fail(code)
		return
	}
	got := map[txn.TopicPartition]int16{}
	for _, rm := range kresp.(*kmsg.WriteTxnMarkersResponse).Markers {
		if rm.ProducerID != m.ProducerID {
			continue
		}
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				got[txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = rp.ErrorCode
			}
		}
	}
	for _, i := range idx {
		code, ok := got[m.Partitions[i]]
		if !ok {
			code = kerr.UnknownServerError.Code // not answered: sent again
		}
		codes[i] = code
	}
}

// peerTimeout bounds one request to another broker: a leader waits up to
// the request timeout (timeoutOr(0), 30 s) for its markers to be committed.
const peerTimeout = 35 * time.Second

// client returns the client of a broker's inter-broker listener, made anew
// when the broker's address changed.
func (w *markerWriter) client(id int32) (*kgo.Client, error) {
	addr, ok := w.s.resolveBroker(id)
	if !ok {
		return nil, errors.New("broker: broker not registered")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("broker: shutting down")
	}
	if p, ok := w.peers[id]; ok {
		if p.addr == addr {
			return p.cl, nil
		}
		p.cl.Close()
		delete(w.peers, id)
	}
	cl, err := kgo.NewClient(append(w.s.interBrokerClientOpts(), kgo.SeedBrokers(addr), kgo.ClientID("sediment-broker"), kgo.RequestTimeoutOverhead(peerTimeout))...)
	if err != nil {
		return nil, err
	}
	w.peers[id] = &peer{addr: addr, cl: cl}
	return cl, nil
}

// Close closes the clients of other brokers; requests in flight fail.
func (w *markerWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, p := range w.peers {
		p.cl.Close()
	}
	w.peers = nil
}

// leaderOf is the leader of a partition, or the code saying there is none.
func (s *Server) leaderOf(topic string, index int32) (int32, int16) {
	// Per partition of a transaction: no copy of the topic's assignment.
	id, ok := s.cache.TopicID(topic)
	n, _ := s.cache.PartitionCount(topic)
	if !ok || index < 0 || int(index) >= n {
		return -1, kerr.UnknownTopicOrPartition.Code
	}
	st, ok := s.cache.Partition(id, index)
	if !ok || st.Leader < 0 {
		return -1, kerr.LeaderNotAvailable.Code
	}
	return st.Leader, 0
}
