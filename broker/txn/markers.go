package txn

import "context"

// Marker is one WriteTxnMarkers entry: the COMMIT or ABORT control record
// that ends a producer's transaction in each of its partitions.
type Marker struct {
	ProducerID    int64
	ProducerEpoch int16
	Commit        bool
	// CoordinatorEpoch is the coordinator's epoch (the leader epoch of its
	// __transaction_state partition): partitions refuse markers of an older
	// coordinator epoch than one they saw (TRANSACTION_COORDINATOR_FENCED).
	CoordinatorEpoch int32
	// TransactionVersion is the client's transaction version (KIP-890),
	// WriteTxnMarkers v2's field.
	TransactionVersion int8
	Partitions         []TopicPartition
}

// MarkerWriter writes transaction markers: the broker sends WriteTxnMarkers
// to the leader of each partition (itself included) and reports what each
// answered.
type MarkerWriter interface {
	// WriteMarkers writes m to each of its partitions and returns one
	// Kafka error code per partition, in m.Partitions' order (0: written).
	// An error means the outcome is unknown for every partition; the
	// coordinator retries. ctx ends when the coordinator stops coordinating
	// the transaction.
	WriteMarkers(ctx context.Context, m Marker) ([]int16, error)
}
