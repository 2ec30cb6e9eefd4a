package partition

import "errors"

// Sentinel errors of the partition layer. Only the API files in broker/ map
// them to Kafka error codes; errors of the layers below (segment, tier) pass
// through wrapped and are mapped there too.
var (
	// ErrUnknownTopicOrPartition: the metadata names no such partition.
	ErrUnknownTopicOrPartition = errors.New("partition: unknown topic or partition")
	// ErrNotLeader: this broker does not lead the partition (now, or any
	// more when a wait began), or the requesting replica is not one of its
	// followers.
	ErrNotLeader = errors.New("partition: not the leader")
	// ErrUnknownLeaderEpoch: the requester knows a newer leader epoch than
	// this broker; retriable, this broker may be about to lead.
	ErrUnknownLeaderEpoch = errors.New("partition: leader epoch newer than this broker's")
	// ErrFencedLeaderEpoch: the requester's leader epoch is older than the
	// current one.
	ErrFencedLeaderEpoch = errors.New("partition: leader epoch fenced")
	// ErrNotEnoughReplicas: acks=all refused before appending, the ISR is
	// below min.insync.replicas.
	ErrNotEnoughReplicas = errors.New("partition: ISR below min.insync.replicas")
	// ErrNotEnoughReplicasAfterAppend: the batch was appended but the ISR
	// shrank below min.insync.replicas before it was committed.
	ErrNotEnoughReplicasAfterAppend = errors.New("partition: ISR shrank below min.insync.replicas after the append")
	// ErrOffsetNotAvailable: a new leader's high watermark has not yet
	// reached its term's start, so an offset answer could go backwards
	// (KIP-207).
	ErrOffsetNotAvailable = errors.New("partition: offset not available until the high watermark catches up")
	// ErrTierMetadata: what the tier holds is not known yet (reading it from
	// etcd failed); answering could hide the history, so the caller retries.
	ErrTierMetadata = errors.New("partition: remote segment metadata not loaded")
	// ErrOffsetMovedToTier: a follower asked for an offset below the leader's
	// local log start; it restarts its log there (KIP-405).
	ErrOffsetMovedToTier = errors.New("partition: offset moved to tiered storage")
	// ErrInvalidTimestamp: a ListOffsets timestamp that is neither a time nor
	// one of the special values.
	ErrInvalidTimestamp = errors.New("partition: invalid timestamp")
	// ErrOffsetOutOfRange: DeleteRecords beyond the high watermark.
	ErrOffsetOutOfRange = errors.New("partition: offset out of range")
	// ErrClosed: the partition was removed or the broker is stopping.
	ErrClosed = errors.New("partition: closed")
)
