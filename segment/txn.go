package segment

import (
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions (KIP-98), the log's side: transaction markers, the last stable offset and
// the aborted-transaction index.
//
// A transactional producer's data batches (attributes bit 4) open a transaction at the
// first one's offset; a control batch (bits 4 and 5) of the same producer, the marker the
// coordinator has the leader write with AppendMarker, ends it. Producer state tracks the
// first offset of every ongoing transaction; the smallest is FirstUnstableOffset, which
// bounds what read_committed consumers may read. An ABORT marker that ends a transaction
// adds an entry to the .txnindex of the segment holding the marker (txnindex.go), which
// AbortedTransactions serves to read_committed fetches so that consumers drop the
// aborted records.
//
// Markers reach followers through AppendFollower as ordinary batches, and recovery replays
// them: producer state and the aborted-transaction index are updated from a batch by one
// code path (Log.applyBatchLocked) on the leader, on followers and in recovery.

// markerKind says what a batch is to transactions.
type markerKind int8

const (
	notMarker    markerKind = iota // a data batch
	markerCommit                   // a control batch with a COMMIT record
	markerAbort                    // a control batch with an ABORT record
)

// marker is what a batch is to transactions: for a marker, its kind and the epoch of the
// coordinator that wrote it.
type marker struct {
	kind             markerKind
	coordinatorEpoch int32
}

// parseMarker decodes the control record of the whole control batch b (header h): its key
// is a ControlRecordKey of type ABORT (0) or COMMIT (1), its value an EndTxnMarker. Other
// control records (KRaft's) have no place in a partition log. Errors wrap ErrCorruptBatch.
func parseMarker(h *BatchHeader, b []byte) (marker, error) {
	if !h.Control() {
		return marker{}, nil
	}
	bad := func(format string, args ...any) (marker, error) {
		return marker{}, fmt.Errorf("%w: control batch at offset %d: %s", ErrCorruptBatch, h.BaseOffset, fmt.Sprintf(format, args...))
	}
	if h.RecordCount < 1 || int64(len(b)) < h.Size() {
		return bad("%d records", h.RecordCount)
	}
	recs, err := decompress(nil, h, b)
	if err != nil {
		return bad("%v", err)
	}
	r, _, err := nextRecord(recs)
	if err != nil {
		return bad("%v", err)
	}
	var key kmsg.ControlRecordKey
	if err := key.ReadFrom(r.key); err != nil || key.Version < 0 {
		return bad("control record key %x", r.key)
	}
	var val kmsg.EndTxnMarker
	if err := val.ReadFrom(r.value); err != nil || val.Version < 0 {
		return bad("end transaction marker %x", r.value)
	}
	switch key.Type {
	case kmsg.ControlRecordKeyTypeAbort:
		return marker{markerAbort, val.CoordinatorEpoch}, nil
	case kmsg.ControlRecordKeyTypeCommit:
		return marker{markerCommit, val.CoordinatorEpoch}, nil
	}
	return bad("control record type %d", key.Type)
}

// markersOf appends to dst what each batch of records (described by hdrs) is to
// transactions.
func markersOf(records []byte, hdrs []BatchHeader, dst []marker) ([]marker, error) {
	pos := int64(0)
	for i := range hdrs {
		h := &hdrs[i]
		mk, err := parseMarker(h, records[pos:pos+h.Size()])
		if err != nil {
			return nil, err
		}
		dst = append(dst, mk)
		pos += h.Size()
	}
	return dst, nil
}

// encodeMarker builds the control batch of a transaction marker as Kafka's
// MemoryRecords.withEndTransactionMarker does: attributes transactional|control, no
// sequence, one record whose key is a ControlRecordKey and value an EndTxnMarker (both
// version 0), timestamp ts. Its base offset is 0 until the append assigns one.
func encodeMarker(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, ts int64, logAppendTime bool) ([]byte, error) {
	key := kmsg.NewControlRecordKey()
	key.Type = kmsg.ControlRecordKeyTypeAbort
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	val := kmsg.NewEndTxnMarker()
	val.CoordinatorEpoch = coordinatorEpoch
	h := BatchHeader{
		Attributes:    attrTransactional | attrControl,
		MaxTimestamp:  ts,
		ProducerID:    producerID,
		ProducerEpoch: producerEpoch,
		BaseSequence:  -1,
	}
	if logAppendTime {
		h.Attributes |= attrLogAppendTime
	}
	return EncodeBatch(h, []Record{{Timestamp: ts, Key: key.AppendTo(nil), Value: val.AppendTo(nil)}})
}

// AppendMarker appends a transaction marker (WriteTxnMarkers on the partition leader): a
// control batch ending producerID's ongoing transaction, committing it or aborting it,
// written by the coordinator of epoch coordinatorEpoch, at leader epoch leaderEpoch. It
// returns the marker's offset as FirstOffset and LastOffset.
//
// A marker whose producerEpoch is older than the producer's current epoch is refused
// (ErrInvalidProducerEpoch): the producer was fenced. A newer producer epoch is taken, as
// the coordinator bumps the epoch when it aborts a transaction on its own. A marker whose
// coordinatorEpoch is older than that of the producer's last marker is refused
// (ErrCoordinatorFenced): it comes from a deposed coordinator (Kafka checks this on the
// leader only; followers take what the leader wrote). A marker for a producer with no
// ongoing transaction is written all the same (the coordinator retries markers until they
// are acknowledged) but ends nothing: no index entry, no change to the last stable offset.
// An ABORT that ends a transaction adds its entry to the aborted-transaction index of the
// segment the marker goes to. Like AppendLeader it does not wait for durability.
func (l *Log) AppendMarker(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, leaderEpoch int32) (AppendResult, error) {
	if producerID < 0 || producerEpoch < 0 {
		return AppendResult{}, fmt.Errorf("%w: transaction marker for producer %d epoch %d", ErrInvalidProducerEpoch, producerID, producerEpoch)
	}
	cfg := l.config()
	now := l.now().UnixMilli()
	b, err := encodeMarker(producerID, producerEpoch, commit, coordinatorEpoch, now, cfg.LogAppendTime)
	if err != nil {
		return AppendResult{}, err
	}
	h := decodeHeader(b)
	mk := marker{markerAbort, coordinatorEpoch}
	if commit {
		mk.kind = markerCommit
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return AppendResult{}, err
	}
	first := l.leo.Load()
	h.BaseOffset, h.PartitionLeaderEpoch = first, leaderEpoch
	if e := l.producers.m[producerID]; e != nil {
		if _, err := e.check(&h, true); err != nil {
			return AppendResult{}, err
		}
		if coordinatorEpoch < e.coordinatorEpoch {
			return AppendResult{}, fmt.Errorf("%w: marker of coordinator epoch %d for producer %d, which had one of epoch %d",
				ErrCoordinatorFenced, coordinatorEpoch, producerID, e.coordinatorEpoch)
		}
	}
	if err := l.maybeRollLocked(cfg, int64(len(b)), first, first); err != nil {
		return AppendResult{}, err
	}
	if leaderEpoch >= 0 && l.epochs.assign(leaderEpoch, first) {
		if err := l.epochs.write(); err != nil {
			return AppendResult{}, err
		}
	}
	setOffsetAndEpoch(b, first, leaderEpoch)
	hdrs := []BatchHeader{h}
	if err := l.writeLocked(cfg, b, hdrs); err != nil {
		return AppendResult{}, err
	}
	l.applyBatchLocked(l.active, &hdrs[0], mk)
	l.publishUnstableLocked()
	res := AppendResult{FirstOffset: first, LastOffset: first, LogAppendTime: -1, LogStartOffset: l.logStart.Load()}
	if cfg.LogAppendTime {
		res.LogAppendTime = now
	}
	return res, nil
}

// applyBatchLocked updates producer state from batch h (written, offsets assigned) and,
// when it is an ABORT marker that ended a transaction and s is not nil, adds the
// transaction to s's aborted-transaction index (s holds the marker). The one path by which
// markers change state: leader (AppendMarker), followers and recovery. mu held.
func (l *Log) applyBatchLocked(s *segment, h *BatchHeader, mk marker) {
	if h.Control() {
		l.dropGuardLocked(h.ProducerID)
	}
	done, ok := l.producers.apply(h, mk)
	if !ok || mk.kind != markerAbort || s == nil {
		return
	}
	s.idxMu.Lock()
	s.txn.append(done)
	s.idxMu.Unlock()
}

// lowerUnstableLocked lowers the published first unstable offset to the first offset of
// any transactional data batch in hdrs, before they are published by writeLocked: a reader
// must never see the log end move past a transaction's start while the first unstable
// offset does not know it yet. publishUnstableLocked sets the exact value afterwards. mu held.
func (l *Log) lowerUnstableLocked(hdrs []BatchHeader) {
	for i := range hdrs {
		h := &hdrs[i]
		if !h.Transactional() || h.Control() || !h.HasProducer() {
			continue
		}
		if cur := l.unstable.Load(); cur < 0 || h.BaseOffset < cur {
			l.unstable.Store(h.BaseOffset)
		}
	}
}

// publishUnstableLocked publishes producer state's first unstable offset. mu held.
func (l *Log) publishUnstableLocked() { l.unstable.Store(l.producers.firstUnstable()) }

// FirstUnstableOffset is the first offset of the oldest ongoing transaction, or the log
// end offset when no transaction is ongoing; never below the log start offset. The
// partition layer's last stable offset (LSO) is the smaller of it and the high watermark:
// read_committed consumers read below the LSO. It takes no lock.
func (l *Log) FirstUnstableOffset() int64 {
	// The log end first: appends lower unstable before they publish a new log end, so
	// an end seen here comes with an unstable at least as recent.
	leo := l.leo.Load()
	u := l.unstable.Load()
	if u < 0 || u > leo {
		u = leo
	}
	return max(u, l.logStart.Load())
}

// OngoingTxn describes a transaction in progress in this log.
type OngoingTxn struct {
	ProducerID    int64
	ProducerEpoch int16
	FirstOffset   int64 // of the transaction's first batch in this log
	// LastTimestamp is the maxTimestamp (ms) of the producer's last batch or marker: the
	// producer's last activity here as Kafka's DescribeProducers reports it.
	LastTimestamp int64
}

// OngoingTransactions lists the transactions in progress, oldest first (DescribeProducers,
// and the expiry of hanging transactions).
func (l *Log) OngoingTransactions() []OngoingTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := l.producers
	out := make([]OngoingTxn, 0, len(ps.ongoing))
	for id, first := range ps.ongoing {
		e := ps.m[id]
		out = append(out, OngoingTxn{ProducerID: id, ProducerEpoch: e.epoch, FirstOffset: first, LastTimestamp: e.lastTimestamp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstOffset < out[j].FirstOffset })
	return out
}

// ProducerInfo describes a producer whose state the log keeps, as DescribeProducers
// reports it.
type ProducerInfo struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32 // of its last data batch in this epoch, -1 when none
	LastTimestamp int64 // maxTimestamp (ms) of its last batch or marker
	// CoordinatorEpoch is that of the coordinator that wrote its last marker, -1 when none.
	CoordinatorEpoch      int32
	CurrentTxnStartOffset int64 // first offset of its ongoing transaction, -1 when none
}

// Producers lists the producers whose state the log keeps, by producer id
// (DescribeProducers).
func (l *Log) Producers() []ProducerInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ProducerInfo, 0, len(l.producers.m))
	for id, e := range l.producers.m {
		p := ProducerInfo{ProducerID: id, ProducerEpoch: e.epoch, LastSequence: -1, LastTimestamp: e.lastTimestamp,
			CoordinatorEpoch: e.coordinatorEpoch, CurrentTxnStartOffset: e.txnFirstOffset}
		if e.n > 0 {
			p.LastSequence = e.batches[e.n-1].lastSeq
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// AbortedTxn is an aborted transaction as a read_committed Fetch response lists it: the
// consumer drops the producer's records from FirstOffset up to the producer's ABORT marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// AbortedTransactions returns the aborted transactions whose offsets intersect
// [fetchOffset, upperBound): every entry of the aborted-transaction indexes with
// lastOffset >= fetchOffset and firstOffset < upperBound, from the segment holding
// fetchOffset on, oldest marker first. As in Kafka (collectAbortedTransactions) the search
// stops at the first entry whose lastStableOffset is >= upperBound: no transaction ongoing
// below upperBound was left open after it, so no later marker can end one. It takes no
// log-wide lock, does no I/O (the indexes are in memory), and allocates nothing but the
// result, nil when empty. Only local segments are searched: entries of segments that
// retention left only in the tier are the tier's to serve (from their uploaded .txnindex).
func (l *Log) AbortedTransactions(fetchOffset, upperBound int64) []AbortedTxn {
	if fetchOffset >= upperBound {
		return nil
	}
	segs := *l.segs.Load()
	from := segmentFor(segs, fetchOffset)
	visit := func(fn func(t completedTxn)) { eachAbortedTxn(segs[from:], fetchOffset, upperBound, fn) }
	n := 0
	visit(func(completedTxn) { n++ })
	if n == 0 {
		return nil
	}
	// Entries may have been appended between the passes: keep to the count.
	out := make([]AbortedTxn, 0, n)
	visit(func(t completedTxn) {
		if len(out) < n {
			out = append(out, AbortedTxn{ProducerID: t.producerID, FirstOffset: t.firstOffset})
		}
	})
	return out
}

// eachAbortedTxn calls fn with every entry of the aborted-transaction indexes of segs, in
// order, whose lastOffset >= from and firstOffset < to, stopping after the first entry
// whose lastStableOffset is >= to (see AbortedTransactions). Each segment's idxMu is
// taken for reading while fn runs.
func eachAbortedTxn(segs []*segment, from, to int64, fn func(t completedTxn)) {
	for _, s := range segs {
		s.idxMu.RLock()
		done := false
		for i := range s.txn.len() {
			t := s.txn.entry(i)
			if t.lastOffset >= from && t.firstOffset < to {
				fn(t)
			}
			if t.lastStable >= to {
				done = true
				break
			}
		}
		s.idxMu.RUnlock()
		if done {
			return
		}
	}
}
