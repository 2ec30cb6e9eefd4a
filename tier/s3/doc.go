// Package s3 is the tier object store on S3 and S3-compatible services
// (MinIO, Ceph RGW, ...), built on aws-sdk-go-v2.
//
// Every key is stored as Config.Prefix + key in Config.Bucket; List strips
// the prefix again. Requests retry with the SDK's standard retryer
// (exponential backoff with jitter on 5xx, throttling such as SlowDown, and
// connection errors) up to Config.MaxAttempts, and every HTTP attempt is
// bounded by Config.RequestTimeout.
//
// Put sends objects up to Config.PartSize with one PutObject and larger ones
// as a multipart upload whose parts are read from the io.ReaderAt in
// parallel and checksummed with CRC32C; a failed multipart upload is
// aborted. S3 makes an object visible only once PutObject or
// CompleteMultipartUpload succeeds, so readers never see a partial object.
//
// ReadAt is a ranged GET whose Content-Range and Content-Length are checked
// against the request; a short body is an error, never short data.
//
// Credentials come from Config.Credentials or else the standard AWS chain
// (environment, shared config and credentials files, SSO, web identity,
// container and instance roles).
package s3
