package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/sedimentio/sediment/segment/vfs"
)

// The aborted-transaction index, %020d.txnindex: one entry per transaction aborted by a
// marker in the segment, in Kafka's format (TransactionIndex), 34 bytes, big-endian:
//
//	version int16 = 0 | producerId int64 | firstOffset int64 | lastOffset int64 |
//	lastStableOffset int64
//
// firstOffset is the transaction's first offset (maybe in an earlier segment), lastOffset
// the ABORT marker's, lastStableOffset the first unstable offset once the transaction was
// complete. Entries are in marker order, so lastOffset strictly increases.
//
// Like Kafka's, the file exists only for segments that had an aborted transaction: a
// missing file is an empty index. Unlike the other indexes it cannot be rebuilt from its
// segment alone (firstOffset may lie before it): recovery rebuilds it by replaying producer
// state from a snapshot taken before the segment.
const (
	txnIndexSuffix    = ".txnindex"
	txnEntrySize      = 34
	txnEntryVersion   = 0
	txnOffProducerID  = 2
	txnOffFirstOffset = 10
	txnOffLastOffset  = 18
	txnOffLastStable  = 26
)

// txnIndex is a segment's aborted-transaction index, in memory exactly as on disk.
// Guarded by segment.idxMu.
type txnIndex struct {
	b       []byte
	written int  // bytes of b already in the file
	onDisk  bool // the file exists (else it is created only once there is an entry)
}

func (x *txnIndex) len() int { return len(x.b) / txnEntrySize }

func (x *txnIndex) entry(i int) completedTxn { return decodeTxnEntry(x.b[i*txnEntrySize:]) }

func decodeTxnEntry(e []byte) completedTxn {
	be := binary.BigEndian
	return completedTxn{
		producerID:  int64(be.Uint64(e[txnOffProducerID:])),
		firstOffset: int64(be.Uint64(e[txnOffFirstOffset:])),
		lastOffset:  int64(be.Uint64(e[txnOffLastOffset:])),
		lastStable:  int64(be.Uint64(e[txnOffLastStable:])),
	}
}

func appendTxnEntry(b []byte, t completedTxn) []byte {
	be := binary.BigEndian
	b = be.AppendUint16(b, txnEntryVersion)
	b = be.AppendUint64(b, uint64(t.producerID))
	b = be.AppendUint64(b, uint64(t.firstOffset))
	b = be.AppendUint64(b, uint64(t.lastOffset))
	return be.AppendUint64(b, uint64(t.lastStable))
}

func (x *txnIndex) append(t completedTxn) { x.b = appendTxnEntry(x.b, t) }

// truncate drops the entries whose marker is at or after off.
func (x *txnIndex) truncate(off int64) {
	n := x.len()
	for n > 0 && x.entry(n-1).lastOffset >= off {
		n--
	}
	x.b = x.b[:n*txnEntrySize]
	x.written = min(x.written, len(x.b))
}

// checkTxnIndex reports whether b is a well-formed aborted-transaction index for a segment
// holding offsets [base, next): whole entries of version 0, a producer id, 0 <= firstOffset
// <= lastOffset, markers inside the segment in increasing order, and 0 <= lastStableOffset
// <= lastOffset+1 (the smallest first offset still ongoing, or the offset after the marker).
func checkTxnIndex(b []byte, base, next int64) error {
	if len(b)%txnEntrySize != 0 {
		return fmt.Errorf("%w: transaction index of %d bytes is not a multiple of %d", errIndex, len(b), txnEntrySize)
	}
	prev := base - 1
	for i := range len(b) / txnEntrySize {
		e := b[i*txnEntrySize:]
		if v := int16(binary.BigEndian.Uint16(e)); v != txnEntryVersion {
			return fmt.Errorf("%w: transaction index entry %d has version %d", errIndex, i, v)
		}
		t := decodeTxnEntry(e)
		if t.producerID < 0 || t.firstOffset < 0 || t.firstOffset > t.lastOffset || t.lastOffset <= prev || t.lastOffset >= next ||
			t.lastStable < 0 || t.lastStable > t.lastOffset+1 {
			return fmt.Errorf("%w: transaction index entry %d %+v out of order or outside offsets [%d, %d)", errIndex, i, t, base, next)
		}
		prev = t.lastOffset
	}
	return nil
}

func (s *segment) txnIndexPath() string { return s.path[:len(s.path)-len(logSuffix)] + txnIndexSuffix }

// loadTxnIndex reads the segment's .txnindex (a missing one is empty) and checks it against
// the segment's offsets. On error the in-memory index is left empty. Log.mu held.
func (s *segment) loadTxnIndex(fsys vfs.FS) error {
	b, err := vfs.ReadFile(fsys, s.txnIndexPath())
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	s.txn = txnIndex{}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = checkTxnIndex(b, s.base, s.next.Load())
	}
	if err != nil {
		return err
	}
	s.txn = txnIndex{b: b, written: len(b), onDisk: true}
	return nil
}

// writeTxnIndexLocked writes the in-memory aborted-transaction index to its file when it
// has entries or the file exists. idxMu held.
func (s *segment) writeTxnIndexLocked(fsys vfs.FS, sync bool) error {
	if len(s.txn.b) == 0 && !s.txn.onDisk {
		return nil
	}
	if err := writeIndexFile(fsys, s.txnIndexPath(), s.txn.b, &s.txn.written, sync); err != nil {
		return err
	}
	s.txn.onDisk = true
	return nil
}
