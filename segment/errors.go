package segment

import (
	"errors"
	"fmt"
)

// Sentinel errors. The broker maps them to Kafka error codes; test them with errors.Is.
var (
	// ErrCorruptBatch reports a record batch that fails header validation or its CRC:
	// a bad length, a bad CRC-32C, a negative record count, an unknown compression codec...
	ErrCorruptBatch = errors.New("segment: corrupt record batch")
	// ErrUnsupportedMagic reports a batch whose magic byte is not 2 (message format v0/v1
	// are not accepted).
	ErrUnsupportedMagic = errors.New("segment: unsupported record batch magic")
	// ErrRecordTooLarge reports a batch larger than Config.MaxMessageBytes
	// (Kafka's MESSAGE_TOO_LARGE).
	ErrRecordTooLarge = errors.New("segment: record batch too large")
	// ErrAppendTooLarge reports an append larger than Config.SegmentBytes: it
	// could fit in no segment (Kafka's RECORD_LIST_TOO_LARGE, code 18).
	ErrAppendTooLarge = errors.New("segment: append larger than a segment")
	// ErrOutOfOrderSequence reports an idempotent producer sequence that does not follow
	// the last one this log holds for that producer and epoch.
	ErrOutOfOrderSequence = errors.New("segment: out of order sequence number")
	// ErrInvalidProducerEpoch reports a producer epoch older than the current one
	// (the producer has been fenced).
	ErrInvalidProducerEpoch = errors.New("segment: invalid producer epoch")
	// ErrOffsetOutOfRange reports an offset below the log start or above the log end.
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrControlBatch reports a control batch (a transaction marker) in a produce: only
	// the transaction coordinator writes markers, through AppendMarker (Kafka answers
	// INVALID_RECORD).
	ErrControlBatch = errors.New("segment: control batch from a client")
	// ErrCoordinatorFenced reports a transaction marker from a coordinator older than the
	// one that wrote the producer's last marker (Kafka's TRANSACTION_COORDINATOR_FENCED).
	ErrCoordinatorFenced = errors.New("segment: transaction coordinator fenced")
	// ErrInvalidTxnState reports a non-transactional batch from a producer whose
	// transaction is ongoing (Kafka's INVALID_TXN_STATE).
	ErrInvalidTxnState = errors.New("segment: invalid transaction state")
	// ErrTxnNotVerified reports transactional data that would start a transaction under a
	// verification guard (TxnGuard) that a marker invalidated, or that this log never gave.
	ErrTxnNotVerified = errors.New("segment: transaction not verified")
	// ErrClosed is returned by every method of a Log after Close or Delete.
	ErrClosed = errors.New("segment: log closed")
)

// CorruptionError locates corruption found in a segment file. It wraps ErrCorruptBatch
// (or ErrUnsupportedMagic), so errors.Is(err, ErrCorruptBatch) holds.
type CorruptionError struct {
	Segment string // path of the .log (or index) file
	Offset  int64  // file position of the bad batch or entry
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("segment: corruption in %s at position %d: %v", e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// ErrNoKey reports a record without a key appended to a compacted log (cleanup.policy
// includes compact): compaction keeps the last record of each key, so every record needs
// one. Kafka answers INVALID_RECORD.
var ErrNoKey = errors.New("segment: record without a key in a compacted log")
