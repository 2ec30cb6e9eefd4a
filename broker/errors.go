package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// errorCode maps an error of the partition layer, or of the layers below it
// that it passes through, to the Kafka error code a client gets. Anything
// unknown is a storage error (retriable for clients; the caller logs it).
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return kerr.KafkaStorageError.Code
}

var errorCodes = []struct {
	err  error
	code int16
}{
	{partition.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition.Code},
	{partition.ErrNotLeader, kerr.NotLeaderForPartition.Code},
	{partition.ErrClosed, kerr.NotLeaderForPartition.Code},
	{partition.ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch.Code},
	{partition.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch.Code},
	{partition.ErrNotEnoughReplicas, kerr.NotEnoughReplicas.Code},
	{partition.ErrNotEnoughReplicasAfterAppend, kerr.NotEnoughReplicasAfterAppend.Code},
	{partition.ErrOffsetNotAvailable, kerr.OffsetNotAvailable.Code},
	{partition.ErrTierMetadata, kerr.LeaderNotAvailable.Code},
	{partition.ErrOffsetMovedToTier, kerr.OffsetMovedToTieredStorage.Code},
	{partition.ErrInvalidTimestamp, kerr.InvalidRequest.Code},
	{partition.ErrOffsetOutOfRange, kerr.OffsetOutOfRange.Code},
	{segment.ErrOffsetOutOfRange, kerr.OffsetOutOfRange.Code},
	{tier.ErrNotExist, kerr.OffsetOutOfRange.Code}, // deleted by remote retention meanwhile
	{segment.ErrCorruptBatch, kerr.CorruptMessage.Code},
	{segment.ErrUnsupportedMagic, kerr.InvalidRecord.Code},
	{segment.ErrNoKey, kerr.InvalidRecord.Code}, // a record without a key in a compacted topic
	{segment.ErrRecordTooLarge, kerr.MessageTooLarge.Code},
	{segment.ErrAppendTooLarge, kerr.RecordListTooLarge.Code},
	{segment.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber.Code},
	{segment.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch.Code},
	{segment.ErrCoordinatorFenced, kerr.TransactionCoordinatorFenced.Code},
	{segment.ErrControlBatch, kerr.InvalidRecord.Code}, // clients never write markers
	{segment.ErrInvalidTxnState, kerr.InvalidTxnState.Code},
	{segment.ErrTxnNotVerified, kerr.InvalidTxnState.Code}, // Produce v11+ answers TRANSACTION_ABORTABLE (txn_verify.go)
	{context.DeadlineExceeded, kerr.RequestTimedOut.Code},
}
