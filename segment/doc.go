// Package segment is the durable log of one partition, in Kafka's on-disk format.
//
// A Log owns one directory, <topic>-<partition>/, holding segments: %020d.log files of
// v2 record batches stored verbatim, each with a sparse %020d.index (offset → file
// position) and %020d.timeindex (timestamp → offset) and, once a transaction in it was
// aborted, a %020d.txnindex, plus %020d.snapshot files of producer state, a leader-epoch-checkpoint, a log-start-offset checkpoint and,
// between a clean Close and the next Open, a clean-shutdown marker. FORMAT.md specifies
// every file byte for byte.
//
// What it does:
//
//   - Produce: AppendLeader validates batches at the header level plus CRC-32C (records are
//     never decoded or re-encoded), enforces idempotent-producer sequences and epochs
//     (duplicates return their original offsets), assigns offsets by rewriting baseOffset
//     in place, and appends with one write. All batches of a call go in, or none.
//   - Transactions (KIP-98): AppendMarker writes the COMMIT or ABORT control batch that
//     ends a producer's transaction (fenced by epoch); producer state tracks ongoing
//     transactions, FirstUnstableOffset bounds the last stable offset,
//     OngoingTransactions and Producers (DescribeProducers) list them; markers from an
//     older coordinator are fenced; ABORT markers fill the aborted-transaction index
//     (.txnindex, Kafka's format) that AbortedTransactions serves to read_committed
//     fetches. Followers and recovery apply markers by the same code path.
//   - Durability: WaitDurable implements group commit without a goroutine: one fdatasync
//     covers every append that arrived before it. FlushOS leaves flushing to the OS, as
//     Kafka does. Rolls sync the finished segment before starting the next one.
//   - Fetch: Read returns a byte range of whole batches of one segment for sendfile, with a
//     refcount that keeps the file open across retention. Reads at the tail are answered
//     from a ring of recent batch positions without scanning or taking the append lock.
//   - ListOffsets: OffsetForTimestamp and MaxTimestamp (the time index, then record
//     timestamps, decompressing when needed).
//   - Replication: AppendFollower, TruncateTo, the leader-epoch cache and EndOffsetForEpoch
//     (KIP-101/279).
//   - Retention and DeleteRecords: ApplyRetention (retention.ms, retention.bytes),
//     DeleteRecordsBefore, and rolling on segment.bytes, segment.ms and full indexes.
//   - Compaction (cleanup.policy=compact, Kafka's log cleaner): Cleanable says how dirty a log
//     is; Clean builds an OffsetMap (key hash → latest offset, of fixed memory) from the dirty
//     section and rewrites the sealed segments keeping each key's last record, tombstones
//     until delete.retention.ms after the first clean that kept them (KIP-534), and the
//     batches producers' sequences need; offsets, timestamps and headers stay. Cleaned
//     segments are swapped in crash-safely (.cleaned, .swap, rename), and Open finishes or
//     rolls back an interrupted swap. Appends to a compacted log must have keys (ErrNoKey).
//     DecodeRecords and EncodeBatch are the record-level codec.
//   - Recovery: Open trusts sealed segments and, after an unclean stop, CRC-scans the
//     active one, truncating a torn tail and rebuilding indexes; producer state comes back
//     from the latest snapshot plus a replay, so deduplication and ongoing transactions
//     survive kill -9, and the replay rebuilds the active segment's aborted-transaction
//     index.
//
// The package never touches the network, etcd or object storage, owns no goroutines (Clean
// runs on its caller's, and neither blocks reads nor holds appends beyond a swap's renames), and
// returns errors instead of panicking on bad input or I/O failures; after a failed fsync
// the Log refuses writes until it is reopened. Errors wrap the sentinels (ErrCorruptBatch,
// ErrOutOfOrderSequence, ErrNoKey, ...) that the broker maps to Kafka error codes.
//
// Every file operation goes through Options.FS, the seam package vfs defines: the
// operating system in production (fdatasync, and Slices whose File can be sendfile'd),
// and in tests vfs.MemFS, which keeps only what was synced when it simulates a power loss.
// The power-loss tests append from several producers and cut the power at random file
// operations: with group commit no acknowledged batch is ever lost, with FlushOS some are,
// and recovery always succeeds without serving a torn batch. The cleaner's power-loss
// tests cut the power at every step of a clean and of the recovery of a swap.
//
// Package segmenttest builds valid batches for tests.
package segment
