// Package group is Sediment's group coordinator: consumer groups of the
// classic protocol (JoinGroup/SyncGroup/Heartbeat) and of KIP-848
// (ConsumerGroupHeartbeat), and their committed offsets. The API files in
// broker/ decode the requests and hand them here.
//
// # Where groups live
//
// Group state and committed offsets are records of the internal topic
// __consumer_offsets, written through the partition layer (broker/partition)
// like any produce with acks=all: a write is acknowledged only once it is
// committed (below the high watermark). The coordinator of a group is the
// leader of partition PartitionFor(group, N) — Kafka's hash, so a group
// lands where Kafka would put it. When this broker becomes the leader of
// such a partition, the partition layer calls Elected and the coordinator
// loads the partition (the last record of each key wins; a null value
// deletes), answering COORDINATOR_LOAD_IN_PROGRESS until it is done; Resigned
// drops its groups, and their members find the new coordinator. Nothing of
// this goes to etcd.
//
// # Records
//
// Keys start with a version, as Kafka's do:
//
//	0, 1   offset commit: group, topic, partition → OffsetCommitValue v3
//	        (offset, leader epoch, metadata, commit time)
//	2      classic group metadata: group → GroupMetadataValue v3
//	        (protocol type, generation, protocol, leader, members with
//	        their subscriptions and assignments)
//	1000   Sediment's KIP-848 consumer group state: group → JSON {"v":1,
//	        epoch, assignment epoch, assignor, members with subscriptions,
//	        epochs, assigned, revoking and target partitions}
//
// The first three are Kafka's own encoding (kmsg's OffsetCommitKey/Value and
// GroupMetadataKey/Value), so Kafka's tools read them. Kafka spreads a
// consumer group over key versions 3 to 8; Sediment keeps it in one record so
// that every change of a group is one atomic write. A loader skips key
// versions it does not know. Records are uncompressed v2 batches.
//
// # Offsets in transactions
//
// TxnOffsetCommit (KIP-98; members fenced as KIP-447 asks) writes ordinary
// offset-commit records in a transactional batch of the producer's id and
// epoch. They are pending — OffsetFetch answers the last committed offset,
// or UNSTABLE_OFFSET_COMMIT with require_stable — until the transaction's
// marker is committed in the partition and the broker calls
// CompleteTransaction: a COMMIT makes them the groups' offsets, except where
// a plain commit later in the log is there already; an ABORT drops them. A
// loader replays the same from the batches and the markers that follow;
// transactions open at the log's end stay pending. Kafka writes these
// batches without sequence numbers and exempts its coordinator's appends
// from sequence checks; the log here checks every producer batch, so the
// coordinator numbers them as the log expects. Expiry keeps an offset
// with a transactional one pending, and a group with open transactions;
// DeleteGroups and OffsetDelete delete pending offsets too (Kafka 4).
//
// # Classic groups
//
// Kafka's state machine: Empty → PreparingRebalance → CompletingRebalance →
// Stable, and Dead when the group is deleted or its partition unloaded.
// group.initial.rebalance.delay.ms delays the first rebalance of an empty
// group, extended by each member joining meanwhile up to the rebalance
// timeout; a rebalance completes when every member rejoined or at the
// longest rebalance timeout without those that did not. New dynamic members
// get MEMBER_ID_REQUIRED first (KIP-394); static members (group.instance.id,
// KIP-345) come back without a rebalance and fence the instance they
// replace. The leader's SyncGroup assignment is written before any member
// gets its part. Commits are fenced by generation: ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS while the group completes a
// rebalance; a group without members takes commits of generation -1.
//
// # Consumer groups (KIP-848)
//
// Members heartbeat with their subscriptions (names and an RE2 regex
// matched against whole topic names) and the partitions they own. The group
// epoch moves when membership, subscriptions or the subscribed topics'
// partitions change; the target assignment is then computed by the server
// side assignor (uniform: balanced and sticky; range: per topic, contiguous
// ranges). A member first gives up what it must (its epoch stays until it
// reports those partitions released, or it is fenced after its rebalance
// timeout), then moves to the target epoch and receives the partitions no
// other member still owns. Commits carry the member epoch
// (STALE_MEMBER_EPOCH). An empty group may change protocol; a group with
// members of one protocol refuses the other (INCONSISTENT_GROUP_PROTOCOL for
// JoinGroup, GROUP_ID_NOT_FOUND for ConsumerGroupHeartbeat).
//
// # Concurrency
//
// Lock order: Coordinator.mu → shard.mu → group.mu → shard.txnMu. A
// request takes effect under its group's lock in arrival order (appending
// its records there);
// waiting for the write to be committed happens after the lock is released.
// Timers (sessions, rebalances) take the group's lock and check that what
// they were armed for still holds. Every goroutine is owned by the
// Coordinator and waited for by Close.
package group
