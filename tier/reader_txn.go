package tier

import (
	"context"
	"fmt"

	"github.com/sedimentio/sediment/segment"
)

// remoteTxnIndex is a segment's txnindex object, parsed and checked, as the reader caches
// it next to the log objects' descriptions.
type remoteTxnIndex struct {
	key     string
	entries []TxnIndexEntry
}

func (x *remoteTxnIndex) metaKey() string { return x.key }

func (x *remoteTxnIndex) memSize() int64 { return int64(len(x.key)) + int64(len(x.entries))*32 + 64 }

// AbortedTransactions returns the aborted transactions of seg's txnindex object that meet
// the offsets [fetchOffset, upperBound) (CollectAborted), oldest marker first, and whether
// the search is complete (no later segment can add one). A segment without the object
// (seg.TxnIndex false: no aborted transaction, or uploaded before the object existed)
// gives nothing and false, without I/O.
//
// The object is fetched once and kept, parsed, in the memory that holds the segments'
// .index objects; concurrent callers share the GET. Errors: a missing object wraps
// ErrNotExist (remote retention deleted the segment meanwhile, as for Read), a corrupt one
// ErrRemoteCorrupt (and ErrCorruptTxnIndex); ctx's error.
func (r *Reader) AbortedTransactions(ctx context.Context, seg RemoteSegment, fetchOffset, upperBound int64) ([]segment.AbortedTxn, bool, error) {
	if !seg.TxnIndex || fetchOffset >= upperBound || seg.EndOffset < fetchOffset {
		// Markers are in the segment, so none is at or above fetchOffset.
		return nil, false, nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, false, ErrReaderClosed
	}
	key := r.key(seg, KindTxnIndex)
	v, err := r.meta(ctx, key, func(ctx context.Context) (metaEntry, error) {
		b, err := r.readWhole(ctx, key)
		if err != nil {
			return nil, err
		}
		entries, err := ParseTxnIndex(b, seg)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRemoteCorrupt, key, err)
		}
		return &remoteTxnIndex{key: key, entries: entries}, nil
	})
	if err != nil {
		return nil, false, err
	}
	out, complete := CollectAborted(nil, v.(*remoteTxnIndex).entries, fetchOffset, upperBound)
	return out, complete, nil
}
