// Package txn is Sediment's transaction coordinator (KIP-98, with KIP-360's
// producer recovery, KIP-588's PRODUCER_FENCED and KIP-890 part 1's
// verification): it hands out producer ids and epochs to transactional
// producers, records which partitions each transaction wrote to, and ends
// transactions by having COMMIT or ABORT markers written to those
// partitions. The API files in broker/ decode InitProducerId (with a
// transactional id), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// DescribeTransactions and ListTransactions and hand them here; the
// coordinator answers with Kafka's error codes.
//
// # Where transactions live
//
// The state of a transactional id is a record of the internal compacted
// topic __transaction_state, written through the partition layer with
// acks=all like the group coordinator's __consumer_offsets: a transition
// takes effect once it is committed (below the high watermark). The
// coordinator of an id is the leader of partition PartitionFor(id, N),
// Kafka's hash; its coordinator epoch is that partition's leader epoch.
// When this broker becomes the leader, the partition layer calls Elected
// and the coordinator replays the partition (the last record of a key wins,
// a tombstone deletes), answering COORDINATOR_LOAD_IN_PROGRESS meanwhile;
// Resigned drops the partition's ids. Nothing of this goes to etcd, except
// the blocks of producer ids, which come from the same cluster-wide
// allocator as idempotent producers' (ProducerIDs).
//
// # Records
//
// Kafka's own encoding, so that Kafka's tools read them: key
// TxnMetadataKey v0 (the transactional id); value TxnMetadataValue v0
// (producer id and epoch, timeout, state, partitions, start and update
// times), or v1, flexible, with KIP-890's tagged fields, for a producer of
// transaction version 2; a null value is the tombstone of an expired id.
// Each transition is one uncompressed v2 batch of one record.
//
// # States
//
// Kafka's TransactionMetadata:
//
//	Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//	  ▲                        │  │                                                      │
//	  │                        │  └──EndTxn(abort), timeout, fence──▶ PrepareAbort ──markers──▶ CompleteAbort
//	  │                        └──AddPartitions (more)──▶ Ongoing                        │
//	  └──InitProducerId (epoch bump)── Empty, CompleteCommit, CompleteAbort ◀───────────┘
//	Empty, CompleteCommit, CompleteAbort ──idle past transactional.id.expiration.ms──▶ Dead (tombstone)
//
// PrepareEpochFence is Kafka's in-memory step when InitProducerId (a new
// producer) or the timeout reaper meets an Ongoing transaction: the epoch
// is bumped and the transaction aborted with it, so that the markers fence
// the old producer in every partition; here that is one write, PrepareAbort
// with the bumped epoch, and the new producer is told
// CONCURRENT_TRANSACTIONS until the abort completed, then gets the next
// epoch. EndTxn is answered once the Prepare state is committed; the
// markers are then written through MarkerWriter to every partition (retried
// until each took it; partitions of deleted topics are skipped) and the
// Complete state is written. A coordinator that takes over a partition
// completes the transactions it finds prepared, which is how a transaction
// survives a coordinator failing mid-commit.
//
// Epochs: InitProducerId without a producer id bumps the epoch; with one
// (KIP-360) it bumps only if the producer presents the current epoch, and
// answers a retry (the previous epoch) with the same epoch again; an
// exhausted epoch (32766) moves the id to a new producer id, remembering the
// previous one so that a retry is still recognised. Requests with an older
// epoch get PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before KIP-588's
// versions), with an unknown producer id INVALID_PRODUCER_ID_MAPPING, and
// while a transition is being written or markers are being sent
// CONCURRENT_TRANSACTIONS. AddPartitionsToTxn and AddOffsetsToTxn, which a
// producer sends as soon as its last EndTxn is answered, first wait up to
// 5 s for that transaction to complete instead (add.go): clients back off
// 20 ms after CONCURRENT_TRANSACTIONS, longer than the completion takes.
//
// # What the broker supplies
//
// Deps: ProducerIDs (the etcd-backed block allocator idempotent producers
// use), a MarkerWriter (WriteTxnMarkers to each partition's leader, this
// broker included, with the coordinator epoch), the partition counts of
// __transaction_state and of every topic (from the metadata cache), and the
// coordinator as a RoleObserver of the partition layer. The broker creates
// __transaction_state on the first FindCoordinator of key type 1, with
// Config.NumPartitions, Config.ReplicationFactor (capped by the live
// brokers) and Config.TopicConfigs, less compression.type (Sediment's
// topics take only "producer") and with min.insync.replicas capped at the
// replication factor the topic gets. This coordinator speaks transaction
// version 1 (KIP-890 part 1): the broker must not advertise the
// transaction.version feature at level 2, so that clients keep EndTxn at v4
// and add partitions themselves.
//
// # Concurrency
//
// Each transactional id has its own lock; a request decides under it and
// starts its write there, marking the id pending (so that transitions of
// one id are written one at a time, in order), then waits for the commit
// with no lock held. The outcome is awaited in the partition's term, not
// the request's: memory follows the log even when the requester gave up.
// Lock order: txn.mu → shard.mu; Coordinator.mu alone. Every goroutine
// (loads, write waits, marker senders, the two reapers) is owned by the
// Coordinator and waited for by Close.
package txn
