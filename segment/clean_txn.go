package segment

import "errors"

// Transactions in a clean (KIP-98's rules for compacted logs, Kafka's
// CleanedTransactionMetadata); the rules are listed at the top of clean.go.
//
// A clean reads batches in offset order, first from FirstDirty to build the offset map,
// then from the first segment to rewrite the groups. What it needs of transactions:
//
//   - whether a data batch is aborted: transactional, of producer P, at an offset inside
//     [firstOffset, lastOffset] of an aborted-transaction index entry of P. The entries are
//     those of every segment of the log (a marker may lie past the cleaned range) whose
//     transactions intersect the range the clean reads; they are complete since the range
//     ends at or below the first unstable offset.
//   - whether a marker's transaction still has a batch in the log: the batches of a
//     producer's transaction come before its marker and after its previous one, so it is
//     enough to remember, per producer, that this clean kept one (maybe empty) since that
//     producer's last marker.
//   - which markers carry the epoch of a producer that has no data batch in that epoch
//     (the coordinator bumped it when aborting): they stay, as the last data batch of a
//     producer does.

// errEmptyMarker reports a control batch without its marker record.
var errEmptyMarker = errors.New("control batch without a record")

// abortedRange spans an aborted transaction: from its first offset to its ABORT marker.
type abortedRange struct{ first, last int64 }

// txnClean is what one clean knows and learns of transactions. Owned by the clean.
type txnClean struct {
	aborted map[int64][]abortedRange // by producer, in offset order
	next    map[int64]int            // by producer: aborted[p][:next[p]] end before the batch read
	// live holds the producers whose transaction (ended by their next marker) has a
	// batch that this clean keeps.
	live map[int64]bool
	// epochMarkers maps the producers with no data batch in their current epoch to that
	// epoch: their markers of that epoch stay.
	epochMarkers map[int64]int16
	dropped      []int64 // offsets of the markers dropped from the group being rewritten
}

// newTxnClean collects the aborted transactions of segs intersecting [from, to).
func newTxnClean(segs []*segment, from, to int64, epochMarkers map[int64]int16) *txnClean {
	tc := &txnClean{aborted: map[int64][]abortedRange{}, next: map[int64]int{}, live: map[int64]bool{}, epochMarkers: epochMarkers}
	eachAbortedTxn(segs, from, to, func(t completedTxn) {
		tc.aborted[t.producerID] = append(tc.aborted[t.producerID], abortedRange{t.firstOffset, t.lastOffset})
	})
	return tc
}

// rewind starts a new pass over the log: batches are read from a lower offset again.
func (tc *txnClean) rewind() { clear(tc.next) }

// isAborted reports whether the data batch h belongs to an aborted transaction. Batches
// must be asked about in offset order within a pass.
func (tc *txnClean) isAborted(h *BatchHeader) bool {
	if !h.Transactional() || !h.HasProducer() {
		return false
	}
	rs := tc.aborted[h.ProducerID]
	if len(rs) == 0 {
		return false
	}
	i := tc.next[h.ProducerID]
	for i < len(rs) && rs[i].last < h.BaseOffset {
		i++
	}
	tc.next[h.ProducerID] = i
	return i < len(rs) && rs[i].first <= h.BaseOffset
}

// keptData notes that the rewrite keeps data batch h (maybe empty).
func (tc *txnClean) keptData(h *BatchHeader) {
	if h.Transactional() && h.HasProducer() {
		tc.live[h.ProducerID] = true
	}
}

// marker reads marker h in the rewrite: done reports that its transaction has no batch
// left in the log (the marker may go once its delete horizon passed), carries that it
// holds the epoch of a producer with no data in that epoch (it stays).
func (tc *txnClean) marker(h *BatchHeader) (done, carries bool) {
	done = !tc.live[h.ProducerID]
	delete(tc.live, h.ProducerID)
	e, ok := tc.epochMarkers[h.ProducerID]
	return done, ok && e == h.ProducerEpoch
}

// keepEntries returns the entries of txn (a group's aborted-transaction index) whose
// marker the group kept, in place.
func (tc *txnClean) keepEntries(txn []byte) []byte {
	if len(tc.dropped) == 0 {
		return txn
	}
	out := txn[:0]
	d := tc.dropped
	for i := 0; i+txnEntrySize <= len(txn); i += txnEntrySize {
		last := decodeTxnEntry(txn[i:]).lastOffset
		for len(d) > 0 && d[0] < last {
			d = d[1:]
		}
		if len(d) > 0 && d[0] == last {
			continue
		}
		out = append(out, txn[i:i+txnEntrySize]...)
	}
	return out
}

// filterMarker decides what marker h (bytes b) becomes in the cleaned segment, as filter
// does for data: kept whole while its transaction has a batch in the log or it carries
// its producer's epoch; else it gets a delete horizon, now + delete.retention.ms (KIP-534,
// as tombstones do), and a clean after the horizon drops it, unless it is the group's
// last batch (kept whole then).
func (cw *cleanWork) filterMarker(h *BatchHeader, b []byte, last bool) ([]byte, BatchHeader, error) {
	cw.stats.RecordsRead += int64(h.RecordCount)
	done, carries := cw.txn.marker(h)
	horizon, hasHorizon := h.DeleteHorizon()
	switch {
	case !done || carries:
		cw.stats.RecordsKept += int64(h.RecordCount)
		return b, *h, nil
	case hasHorizon && cw.now >= horizon:
		if last {
			cw.stats.RecordsKept += int64(h.RecordCount)
			return b, *h, nil
		}
		cw.txn.dropped = append(cw.txn.dropped, h.BaseOffset)
		return nil, *h, nil
	case hasHorizon:
		cw.noteHorizon(horizon)
		cw.stats.RecordsKept += int64(h.RecordCount)
		return b, *h, nil
	}
	recs, err := decompress(cw.dec, h, b)
	if err != nil {
		return nil, *h, err
	}
	if h.Compression() != CompressionNone {
		cw.dec = recs
	}
	cw.kept = cw.kept[:0]
	if err := eachRawRecord(recs, h.RecordCount, func(r *rawRecord) error {
		cw.kept = append(cw.kept, *r)
		return nil
	}); err != nil {
		return nil, *h, err
	}
	if len(cw.kept) == 0 {
		return nil, *h, errEmptyMarker
	}
	cw.stats.RecordsKept += int64(len(cw.kept))
	horizon = cw.now + cw.cfg.DeleteRetention.Milliseconds()
	cw.noteHorizon(horizon)
	return cw.encodeKept(h, horizon, true)
}
