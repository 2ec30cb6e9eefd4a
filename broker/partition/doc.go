// Package partition is Sediment's partition layer: the local replicas of the
// partitions this broker hosts, between the Kafka edge (broker/) and the log
// (segment), replication (repl), metadata (meta) and tiering (tier). The API
// files in broker/ and the coordinators (broker/group, broker/txn) act on
// partitions only through it: they decode, authorize, call, encode.
//
// # Contract
//
// Manager follows the metadata cache: Reconcile (run on every change by Run)
// opens the partitions this broker hosts, recovering their logs, makes each
// leader, follower or offline as its partition state in etcd says, applies
// topic config changes, and deletes the logs of deleted topics and of
// replicas reassigned away. Manager.Leader finds a partition this broker
// leads, fencing requests by leader epoch.
//
// A Partition offers, as leader:
//
//   - AppendLeader(records, acks): validates and appends record batches in
//     this broker's leadership term, then wakes followers and the flusher;
//     it does not wait. With AcksAll it refuses while the ISR is below
//     min.insync.replicas.
//   - Wait(ctx, result, acks), WaitDurable(ctx, next) and
//     WaitCommitted(ctx, next, epoch): an append is durable when the topic's
//     flush policy says so (group commit: one fdatasync covers every batch
//     that arrived meanwhile) and committed when the high watermark passed
//     it, which needs every ISR member to have it. A commit wait fails if
//     the term ends or the ISR shrinks below min.insync.replicas first.
//     Coordinators acknowledge their writes with AppendLeader and
//     WaitCommitted, exactly as acks=all produces.
//   - Read(ctx, offset, options): a byte range of a segment file (sent with
//     sendfile), below the high watermark for consumers and the log end for
//     followers, whose positions move the high watermark (FollowerFetch
//     records them and detects diverging epochs, KIP-320). Below the local
//     log start Read says InTier and ReadRemote reads the tier (for
//     read_committed with the aborted transactions from the uploaded
//     .txnindex objects, as Read has them from the local indexes).
//   - ListOffset, EndOffsetForEpoch, DeleteRecordsBefore: the answers of
//     ListOffsets, OffsetForLeaderEpoch and DeleteRecords over the whole log,
//     tier included.
//
// Errors are the sentinels in errors.go, or the log's and tier's, wrapped;
// Kafka error codes never appear here (broker/errors.go maps them).
//
// # Concurrency
//
// Produce and fetch never wait for a lock that is held across I/O. The
// Manager's lock guards only its map of partitions; reconcile passes plan
// under it and do their I/O (recovery, deletion, stopping fetchers and
// uploaders) afterwards on a bounded number of goroutines, so one
// partition's slow recovery holds up no other. An idle partition holds no
// goroutine: its flusher runs only while it is written to (flusher.go). A partition's role changes only in reconcile
// passes, one task at a time, and is published through atomics. While this
// broker leads a partition, work for the leader runs under the term's
// context, cancelled when the term ends: the uploader, and ISR changes
// written to etcd with a compare-and-swap. The periodic upkeep (ISR checks,
// retention, time-based rolls) runs on the same pool, at most one task per
// partition and kind at a time. Every goroutine is owned by the Manager and
// stopped by Close. The lock order is written at the top of manager.go.
package partition
