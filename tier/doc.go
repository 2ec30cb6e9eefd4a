// Package tier moves sealed segments to object storage and reads them back:
// Sediment's tiered storage (KIP-405).
//
// # Packages
//
//   - tier (this package) defines [ObjectStore], the small interface every
//     backend implements, and the key rules they share ([CheckKey],
//     [ErrNotExist], [ErrInvalidKey], [TempPrefix]); the remote segment model
//     and object names ([RemoteSegment], [ObjectKey], the manifest); the
//     [Uploader] and the [Reader]. It imports no backend.
//   - tier/file is the backend kept in a local directory, the embedded
//     default for development; tier/s3 the backend on AWS S3 or any
//     S3-compatible service such as MinIO. Each imports tier and checks
//     itself with var _ tier.ObjectStore = (*Store)(nil).
//   - tier/tierurl turns the --tier URL of `sediment serve` (file:///path,
//     s3://bucket/prefix?endpoint=...) into one of them: the only package
//     that knows every backend.
//   - tier/tiertest is the conformance suite every backend passes, with
//     helpers for tests.
//
// # Object stores
//
// Keys are slash-separated paths with the same rules for every backend
// ([CheckKey]). A missing key is reported by errors wrapping [ErrNotExist],
// which [ObjectStore.IsNotExist] recognises. ReadAt never returns a partial
// result without an error.
//
// # Uploads and reads
//
// The Uploader copies a leader's sealed segments (with their indexes,
// leader-epoch slice, producer snapshot and aborted-transaction index),
// optionally as zstd frames, and records them in etcd through the [Metadata]
// interface (COPY_STARTED → COPY_FINISHED → DELETE_STARTED → DELETE_FINISHED),
// every write fenced by the leader's term, mirroring them in a per-partition
// manifest; it also applies
// remote retention and cleans up the uploads of crashed or deposed leaders.
// The Reader serves record batches of remote segments through ranged GETs, a
// memory layer and a bounded on-disk chunk cache, with read-ahead for
// sequential consumers; every batch it returns has been checked, and batches
// read from a cache file come back as a pinned range of that file
// (ReadRecords) for the broker to sendfile. It also
// answers the aborted transactions of read_committed reads from the
// segments' txnindex objects.
//
// The broker uses both: its partition layer runs one Uploader per partition
// this broker leads, and one Reader per broker serves Fetch and ListOffsets by
// timestamp below the local log start. REMOTE.md specifies the
// objects, the manifest, the zstd frame format, the metadata life cycle and
// what the Reader checks.
package tier
