// Package tier moves sealed segments to object storage and reads them back.
//
// This package defines [ObjectStore], the small interface every backend
// implements, and [Open], which turns a --tier URL into a backend:
//
//   - tier/file: a local directory (file:///abs/path or file:rel/path), the
//     embedded default for development;
//   - tier/s3: AWS S3 or any S3-compatible service such as MinIO
//     (s3://bucket/prefix?endpoint=http://127.0.0.1:9000).
//
// Keys are slash-separated paths with the same rules for every backend
// ([CheckKey]). A missing key is reported by errors wrapping [ErrNotExist],
// which [ObjectStore.IsNotExist] recognises. The shared conformance suite in
// tier/tiertest holds every backend to the same contract.
//
// On top of ObjectStore: the Uploader copies a leader's sealed segments (with
// their indexes, leader-epoch slice and producer snapshot) and records them
// in etcd through the Metadata interface (COPY_STARTED → COPY_FINISHED →
// DELETE_STARTED → DELETE_FINISHED), mirroring them in a per-partition
// manifest; the Reader serves record batches of remote segments through a
// bounded on-disk chunk cache with read-ahead. REMOTE.md specifies the
// objects, the manifest and the zstd frame format. The broker does not use
// them yet: wiring them into produce, fetch and retention is the next step.
package tier
