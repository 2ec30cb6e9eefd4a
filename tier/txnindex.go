package tier

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sedimentio/sediment/segment"
)

// The txnindex object: a segment's aborted-transaction index (segment/FORMAT.md, Kafka's
// TransactionIndex) uploaded byte for byte. tier reads it with its own strict decoder
// rather than trusting the bytes the way segment trusts its own files: the object comes
// from a bucket that anything may have written to.

// ErrCorruptTxnIndex is wrapped by ParseTxnIndex's errors.
var ErrCorruptTxnIndex = errors.New("tier: corrupt transaction index")

const (
	txnEntrySize    = 34 // version int16, producerId, firstOffset, lastOffset, lastStableOffset int64
	txnEntryVersion = 0
)

// TxnIndexEntry is one aborted transaction of a txnindex object: FirstOffset is the
// transaction's first offset (maybe in an earlier segment), LastOffset its ABORT marker's
// (in this segment), LastStable the partition's first unstable offset once it ended.
type TxnIndexEntry struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
	LastStable  int64
}

// ParseTxnIndex decodes the txnindex object of seg and checks every entry as
// segment/FORMAT.md states it: whole 34-byte entries of version 0, a producer id >= 0,
// 0 <= firstOffset <= lastOffset, markers inside [seg.BaseOffset, seg.EndOffset] in
// strictly increasing order, and 0 <= lastStableOffset <= lastOffset+1. It never panics;
// an accepted object re-encodes (EncodeTxnIndex) to the same bytes.
func ParseTxnIndex(b []byte, seg RemoteSegment) ([]TxnIndexEntry, error) {
	if len(b)%txnEntrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte entries", ErrCorruptTxnIndex, len(b), txnEntrySize)
	}
	out := make([]TxnIndexEntry, 0, len(b)/txnEntrySize)
	prev := seg.BaseOffset - 1
	for i := 0; i < len(b); i += txnEntrySize {
		e := b[i : i+txnEntrySize]
		if v := int16(binary.BigEndian.Uint16(e)); v != txnEntryVersion {
			return nil, fmt.Errorf("%w: entry %d has version %d", ErrCorruptTxnIndex, i/txnEntrySize, v)
		}
		t := TxnIndexEntry{
			ProducerID:  int64(binary.BigEndian.Uint64(e[2:])),
			FirstOffset: int64(binary.BigEndian.Uint64(e[10:])),
			LastOffset:  int64(binary.BigEndian.Uint64(e[18:])),
			LastStable:  int64(binary.BigEndian.Uint64(e[26:])),
		}
		switch {
		case t.ProducerID < 0 || t.FirstOffset < 0 || t.FirstOffset > t.LastOffset:
			return nil, fmt.Errorf("%w: entry %d %+v: bad producer id or first offset", ErrCorruptTxnIndex, i/txnEntrySize, t)
		case t.LastOffset <= prev || t.LastOffset > seg.EndOffset:
			return nil, fmt.Errorf("%w: entry %d %+v: marker out of order or outside offsets [%d, %d]",
				ErrCorruptTxnIndex, i/txnEntrySize, t, seg.BaseOffset, seg.EndOffset)
		case t.LastStable < 0 || t.LastStable > t.LastOffset+1:
			return nil, fmt.Errorf("%w: entry %d %+v: last stable offset", ErrCorruptTxnIndex, i/txnEntrySize, t)
		}
		prev = t.LastOffset
		out = append(out, t)
	}
	return out, nil
}

// EncodeTxnIndex writes entries in the txnindex format.
func EncodeTxnIndex(entries []TxnIndexEntry) []byte {
	b := make([]byte, 0, len(entries)*txnEntrySize)
	for _, t := range entries {
		b = binary.BigEndian.AppendUint16(b, txnEntryVersion)
		b = binary.BigEndian.AppendUint64(b, uint64(t.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(t.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(t.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(t.LastStable))
	}
	return b
}

// CollectAborted appends to out the entries of one segment's index whose transactions
// meet the offsets [fetchOffset, upperBound) (lastOffset >= fetchOffset and firstOffset
// < upperBound), in marker order, and reports whether the search is complete: it stops
// at the first entry whose lastStableOffset is at or above upperBound, after which no
// transaction started below upperBound can still have been open, so no later marker
// (in this segment or a later one) can abort one (Kafka's collectAbortedTxns).
func CollectAborted(out []segment.AbortedTxn, entries []TxnIndexEntry, fetchOffset, upperBound int64) ([]segment.AbortedTxn, bool) {
	for _, t := range entries {
		if t.LastOffset >= fetchOffset && t.FirstOffset < upperBound {
			out = append(out, segment.AbortedTxn{ProducerID: t.ProducerID, FirstOffset: t.FirstOffset})
		}
		if t.LastStable >= upperBound {
			return out, true
		}
	}
	return out, false
}
