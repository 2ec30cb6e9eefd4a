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
// The uploader, the remote segment index and the remote reader build on
// ObjectStore and will live here too.
package tier
