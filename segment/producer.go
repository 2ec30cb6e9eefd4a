package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/sedimentio/sediment/segment/vfs"
)

// maxProducerBatches is how many recent batches per producer are remembered for duplicate
// detection: Kafka's max.in.flight.requests.per.connection limit for idempotence.
const maxProducerBatches = 5

// batchMeta is what is remembered of one batch of an idempotent producer.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	timestamp               int64 // the batch's maxTimestamp (its log-append time with LogAppendTime)
}

// producerEntry is the state of one producer id. A plain value: copied into the pending
// set of an append and written back when the append succeeded.
type producerEntry struct {
	epoch          int16 // -1 before any batch
	n              int   // batches[:n] are valid, oldest first
	batches        [maxProducerBatches]batchMeta
	txnFirstOffset int64 // first offset of the ongoing transaction, -1 when none
	lastTimestamp  int64
	// coordinatorEpoch is that of the transaction coordinator that wrote the producer's
	// last marker, -1 before any: a leader refuses markers from an older coordinator.
	coordinatorEpoch int32
}

func newProducerEntry() producerEntry {
	return producerEntry{epoch: -1, txnFirstOffset: -1, lastTimestamp: -1, coordinatorEpoch: -1}
}

func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// check validates batch h of this producer for a leader append, with known telling whether
// e is existing state. It returns the remembered batch when h is a duplicate of one.
// Rules (Kafka's ProducerAppendInfo): an older epoch is fenced; a newer epoch must start at
// 0; the same epoch must continue the last sequence (wrapping at MaxInt32); an unknown
// producer may start at any sequence (KIP-360: its state may have gone with retention, or
// with history that only the tier holds). Control batches (transaction
// markers) carry no sequence and are checked for fencing only. A producer with a
// transaction ongoing may only write transactional batches (ErrInvalidTxnState, Kafka's
// ProducerAppendInfo.appendDataBatch).
func (e *producerEntry) check(h *BatchHeader, known bool) (*batchMeta, error) {
	if known && h.ProducerEpoch < e.epoch {
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	}
	if h.Control() {
		return nil, nil
	}
	if known && e.txnFirstOffset >= 0 && !h.Transactional() {
		return nil, fmt.Errorf("%w: producer %d wrote a non-transactional batch in its transaction from offset %d", ErrInvalidTxnState, h.ProducerID, e.txnFirstOffset)
	}
	if known && h.ProducerEpoch == e.epoch {
		last := h.LastSequence()
		for i := range e.n {
			if b := &e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
				return b, nil
			}
		}
		prev := int32(-1)
		if e.n > 0 {
			prev = e.batches[e.n-1].lastSeq
		}
		if !inSequence(prev, h.BaseSequence) {
			return nil, fmt.Errorf("%w: producer %d epoch %d: sequence %d after %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, prev)
		}
		return nil, nil
	}
	if known && h.BaseSequence != 0 {
		return nil, fmt.Errorf("%w: new epoch %d of producer %d must start at sequence 0, not %d", ErrOutOfOrderSequence, h.ProducerEpoch, h.ProducerID, h.BaseSequence)
	}
	return nil, nil
}

// apply records batch h (its offsets assigned) in e, without checks: the leader calls it
// after check, followers and recovery call it alone. For a control batch (a transaction
// marker) it returns the first offset of the transaction the marker ends, -1 when none was
// ongoing.
func (e *producerEntry) apply(h *BatchHeader) (endedTxnFirst int64) {
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.n = 0
	}
	e.lastTimestamp = h.MaxTimestamp
	if h.Control() {
		// A transaction marker ends the ongoing transaction, if any; one for a producer
		// with none (a retried marker) changes no transaction state (Kafka's
		// ProducerAppendInfo.appendEndTxnMarker).
		first := e.txnFirstOffset
		e.txnFirstOffset = -1
		return first
	}
	if e.n == maxProducerBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = batchMeta{
		firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
		timestamp: h.MaxTimestamp,
	}
	e.n++
	if h.Transactional() && e.txnFirstOffset < 0 {
		e.txnFirstOffset = h.BaseOffset
	}
	return -1
}

// producerState maps producer ids to their state. Guarded by Log.mu.
//
// ongoing indexes the producers with a transaction in progress by id, with its first
// offset: the last stable offset is bounded by the smallest of them, and there are few of
// them (one per transactional producer at most) while m may hold thousands of idempotent
// producers.
type producerState struct {
	m       map[int64]*producerEntry
	ongoing map[int64]int64
	minTxn  int64 // smallest first offset in ongoing, -1 when none; valid unless dirty
	dirty   bool
}

func newProducerState() *producerState {
	return &producerState{m: make(map[int64]*producerEntry), ongoing: make(map[int64]int64), minTxn: -1}
}

// track updates ongoing after producer id's entry changed.
func (ps *producerState) track(id int64, e *producerEntry) {
	old, had := ps.ongoing[id]
	switch {
	case e.txnFirstOffset >= 0 && (!had || old != e.txnFirstOffset):
		ps.ongoing[id] = e.txnFirstOffset
		ps.dirty = true
	case e.txnFirstOffset < 0 && had:
		delete(ps.ongoing, id)
		ps.dirty = true
	}
}

// firstUnstable is the smallest first offset of an ongoing transaction, -1 when none.
func (ps *producerState) firstUnstable() int64 {
	if ps.dirty {
		ps.minTxn = -1
		for _, first := range ps.ongoing {
			if ps.minTxn < 0 || first < ps.minTxn {
				ps.minTxn = first
			}
		}
		ps.dirty = false
	}
	return ps.minTxn
}

// completedTxn describes a transaction a marker ended.
type completedTxn struct {
	producerID  int64
	firstOffset int64 // of the transaction's first batch
	lastOffset  int64 // the marker's offset
	// lastStable is the first unstable offset once the transaction is complete: the
	// smallest first offset of the transactions still ongoing, or the offset after the
	// marker when none is (Kafka's ProducerStateManager.lastStableOffset).
	lastStable int64
}

// apply records h without checks (replication, recovery, and markers on the leader once
// checked); mk is what h is to transactions. For a marker that ended an ongoing
// transaction it returns that transaction.
func (ps *producerState) apply(h *BatchHeader, mk marker) (completedTxn, bool) {
	if !h.HasProducer() {
		return completedTxn{}, false
	}
	e := ps.m[h.ProducerID]
	if e == nil {
		ne := newProducerEntry()
		e = &ne
		ps.m[h.ProducerID] = e
	}
	first := e.apply(h)
	if h.Control() {
		e.coordinatorEpoch = mk.coordinatorEpoch
	}
	ps.track(h.ProducerID, e)
	if first < 0 {
		return completedTxn{}, false
	}
	done := completedTxn{producerID: h.ProducerID, firstOffset: first, lastOffset: h.LastOffset(), lastStable: ps.firstUnstable()}
	if done.lastStable < 0 {
		done.lastStable = h.LastOffset() + 1
	}
	return done, true
}

// pendingProducer is a producer's state as it will be once the append being checked
// succeeds; several batches of one append may belong to the same producer.
type pendingProducer struct {
	id    int64
	known bool
	e     producerEntry
}

func (ps *producerState) pending(pend []pendingProducer, id int64) ([]pendingProducer, *pendingProducer) {
	for i := range pend {
		if pend[i].id == id {
			return pend, &pend[i]
		}
	}
	p := pendingProducer{id: id, e: newProducerEntry()}
	if e := ps.m[id]; e != nil {
		p.known, p.e = true, *e
	}
	pend = append(pend, p)
	return pend, &pend[len(pend)-1]
}

func (ps *producerState) commit(pend []pendingProducer) {
	for i := range pend {
		e := ps.m[pend[i].id]
		if e != nil {
			*e = pend[i].e
		} else {
			ne := pend[i].e
			e = &ne
			ps.m[pend[i].id] = e
		}
		ps.track(pend[i].id, e)
	}
}

// Snapshot file format (big-endian; see FORMAT.md):
//
//	magic "SDPS" | version int16 = 2 | offset int64 | count int32 |
//	count × { producerId int64 | epoch int16 | coordinatorEpoch int32 | txnFirstOffset int64 |
//	          lastTimestamp int64 | nbatches int8 | nbatches × { firstSeq int32 | lastSeq int32 |
//	          firstOffset int64 | lastOffset int64 | timestamp int64 } } |
//	crc uint32 (CRC-32C of everything before it)
//
// Version 2 added coordinatorEpoch and orders producers by increasing id, so that a
// snapshot has exactly one encoding. Version 1 (no coordinatorEpoch, producers in any
// order) is still read.
const (
	snapshotMagic    = "SDPS"
	snapshotVersion  = 2
	snapshotVersion1 = 1
	snapshotHeader   = 4 + 2 + 8 + 4
	snapshotEntry    = 8 + 2 + 4 + 8 + 8 + 1
	snapshotEntryV1  = snapshotEntry - 4
	snapshotBatch    = 4 + 4 + 8 + 8 + 8
)

var errSnapshot = errors.New("segment: corrupt producer snapshot")

func (ps *producerState) encode(offset int64) []byte {
	be := binary.BigEndian
	ids := make([]int64, 0, len(ps.m))
	for id := range ps.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := make([]byte, 0, snapshotHeader+len(ps.m)*(snapshotEntry+maxProducerBatches*snapshotBatch)+4)
	b = append(b, snapshotMagic...)
	b = be.AppendUint16(b, snapshotVersion)
	b = be.AppendUint64(b, uint64(offset))
	b = be.AppendUint32(b, uint32(len(ps.m)))
	for _, id := range ids {
		b = appendSnapshotEntry(b, id, ps.m[id], snapshotVersion)
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// appendSnapshotEntry appends producer id's entry e as snapshot version v has it.
func appendSnapshotEntry(b []byte, id int64, e *producerEntry, v uint16) []byte {
	be := binary.BigEndian
	b = be.AppendUint64(b, uint64(id))
	b = be.AppendUint16(b, uint16(e.epoch))
	if v >= snapshotVersion {
		b = be.AppendUint32(b, uint32(e.coordinatorEpoch))
	}
	b = be.AppendUint64(b, uint64(e.txnFirstOffset))
	b = be.AppendUint64(b, uint64(e.lastTimestamp))
	b = append(b, byte(e.n))
	for _, m := range e.batches[:e.n] {
		b = be.AppendUint32(b, uint32(m.firstSeq))
		b = be.AppendUint32(b, uint32(m.lastSeq))
		b = be.AppendUint64(b, uint64(m.firstOffset))
		b = be.AppendUint64(b, uint64(m.lastOffset))
		b = be.AppendUint64(b, uint64(m.timestamp))
	}
	return b
}

// decodeSnapshot decodes a snapshot of version 1 or 2. It allocates at most in proportion
// to len(b).
func decodeSnapshot(b []byte) (offset int64, ps *producerState, err error) {
	be := binary.BigEndian
	if len(b) < snapshotHeader+4 || string(b[:4]) != snapshotMagic {
		return 0, nil, fmt.Errorf("%w: bad magic or size", errSnapshot)
	}
	body, sum := b[:len(b)-4], be.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, fmt.Errorf("%w: bad crc", errSnapshot)
	}
	v := be.Uint16(b[4:])
	entrySize := snapshotEntry
	switch v {
	case snapshotVersion:
	case snapshotVersion1:
		entrySize = snapshotEntryV1
	default:
		return 0, nil, fmt.Errorf("%w: version %d", errSnapshot, v)
	}
	offset = int64(be.Uint64(b[6:]))
	count := int64(be.Uint32(b[14:]))
	p := body[snapshotHeader:]
	if count > int64(len(p))/int64(entrySize) {
		return 0, nil, fmt.Errorf("%w: %d producers in %d bytes", errSnapshot, count, len(p))
	}
	ps = newProducerState()
	ps.m = make(map[int64]*producerEntry, count)
	prev := int64(math.MinInt64)
	for i := range count {
		if len(p) < entrySize {
			return 0, nil, fmt.Errorf("%w: truncated", errSnapshot)
		}
		e := newProducerEntry()
		id := int64(be.Uint64(p))
		if v == snapshotVersion && i > 0 && id <= prev {
			return 0, nil, fmt.Errorf("%w: producer %d after %d", errSnapshot, id, prev)
		}
		if ps.m[id] != nil {
			return 0, nil, fmt.Errorf("%w: producer %d twice", errSnapshot, id)
		}
		prev = id
		e.epoch = int16(be.Uint16(p[8:]))
		q := p[10:]
		if v == snapshotVersion {
			e.coordinatorEpoch = int32(be.Uint32(q))
			q = q[4:]
		}
		e.txnFirstOffset = int64(be.Uint64(q))
		e.lastTimestamp = int64(be.Uint64(q[8:]))
		e.n = int(q[16])
		p = p[entrySize:]
		if e.n > maxProducerBatches || len(p) < e.n*snapshotBatch {
			return 0, nil, fmt.Errorf("%w: producer %d has %d batches", errSnapshot, id, e.n)
		}
		if e.txnFirstOffset < -1 {
			return 0, nil, fmt.Errorf("%w: producer %d: transaction at offset %d", errSnapshot, id, e.txnFirstOffset)
		}
		for i := range e.n {
			e.batches[i] = batchMeta{
				firstSeq:    int32(be.Uint32(p)),
				lastSeq:     int32(be.Uint32(p[4:])),
				firstOffset: int64(be.Uint64(p[8:])),
				lastOffset:  int64(be.Uint64(p[16:])),
				timestamp:   int64(be.Uint64(p[24:])),
			}
			p = p[snapshotBatch:]
		}
		ps.m[id] = &e
		ps.track(id, &e)
	}
	if len(p) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", errSnapshot, len(p))
	}
	return offset, ps, nil
}

// writeSnapshot writes the snapshot file atomically but does not sync the directory: a roll
// syncs it right after, creating the next segment, and a lost snapshot only means a longer
// replay.
func (ps *producerState) writeSnapshot(fsys vfs.FS, dir string, offset int64) error {
	return vfs.WriteFileAtomic(fsys, fileName(dir, offset, snapshotSuffix), ps.encode(offset), false)
}

func readSnapshot(fsys vfs.FS, path string, want int64) (*producerState, error) {
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		return nil, err
	}
	off, ps, err := decodeSnapshot(b)
	if err != nil {
		return nil, err
	}
	if off != want {
		return nil, fmt.Errorf("%w: covers offset %d, named %d", errSnapshot, off, want)
	}
	return ps, nil
}
