package s3

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/sedimentio/sediment/tier"
)

// Put implements tier.ObjectStore: one PutObject up to the part size, a
// multipart upload above it.
func (s *Store) Put(ctx context.Context, key string, r io.ReaderAt, size int64) error {
	if err := tier.CheckKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("tier/s3: put %q: negative size %d", key, size)
	}
	if size > s.partSize {
		return s.putMultipart(ctx, key, r, size)
	}
	// A SectionReader is seekable, so the SDK can compute the checksum (and,
	// with SignPayload, the payload hash) and rewind the body on a retry.
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:            aws.String(s.bucket),
		Key:               s.objectKey(key),
		Body:              io.NewSectionReader(r, 0, size),
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	}, s.upload...)
	if err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// putMultipart uploads r in parts of partSize (the last one shorter), up to
// partConc at a time, and completes the upload; on any failure it aborts the
// upload so no parts linger (and bill) in the bucket.
func (s *Store) putMultipart(ctx context.Context, key string, r io.ReaderAt, size int64) error {
	partSize := s.partSize
	if (size+partSize-1)/partSize > maxParts {
		// Grow parts rather than fail: S3 allows at most 10,000.
		partSize = (size + maxParts - 1) / maxParts
	}
	nparts := int((size + partSize - 1) / partSize)

	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.bucket),
		Key:               s.objectKey(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	})
	if err != nil {
		return s.wrap("put: create multipart upload", key, err)
	}
	uploadID := created.UploadId

	parts := make([]types.CompletedPart, nparts)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.partConc)
	for i := range nparts {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		num := aws.Int32(int32(i + 1))
		g.Go(func() error {
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:            aws.String(s.bucket),
				Key:               s.objectKey(key),
				UploadId:          uploadID,
				PartNumber:        num,
				Body:              io.NewSectionReader(r, off, n),
				ContentLength:     aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			}, s.upload...)
			if err != nil {
				return fmt.Errorf("part %d: %w", *num, err)
			}
			parts[i] = types.CompletedPart{
				PartNumber:     num,
				ETag:           out.ETag,
				ChecksumCRC32C: out.ChecksumCRC32C,
			}
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(s.bucket),
			Key:             s.objectKey(key),
			UploadId:        uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		s.abort(ctx, key, uploadID)
		return s.wrap("put: multipart upload", key, err)
	}
	return nil
}

// abort aborts a multipart upload, even when ctx is already cancelled (the
// usual reason to abort).
func (s *Store) abort(ctx context.Context, key string, uploadID *string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      s.objectKey(key),
		UploadId: uploadID,
	})
	if err != nil {
		// The bucket's lifecycle rule for incomplete uploads is the backstop.
		s.logger.Warn("tier/s3: abort multipart upload failed; parts remain until a lifecycle rule removes them",
			"bucket", s.bucket, "key", s.prefix+key, "upload_id", aws.ToString(uploadID), "err", err)
	}
}

// Unsigned payloads. SigV4 over plain HTTP signs the SHA-256 of the body by
// default, and aws-sdk-go-v2 computes it in its flexible-checksum middleware
// (alongside the CRC) unless a payload hash is already set: SHA-256 of every
// uploaded byte was the largest single cost of tiering in the broker's
// profile (BENCH.md). Setting the hash to UNSIGNED-PAYLOAD before that
// middleware runs leaves it computing only the CRC32C, which it sends as
// x-amz-checksum-crc32c; that header is signed, and the server checks the
// body against it before storing the object (a mismatch is BadDigest), so
// a body corrupted on the way is still refused. What is given up is only
// SHA-256's protection against a body *forged* on a plaintext link, where
// anyone on the path can read the reads anyway. Over HTTPS the middleware
// switches to a trailing checksum whatever is set here.

// unsignedPayloadID names the middleware in the SDK's stack.
const unsignedPayloadID = "sediment:UnsignedPayload"

// checksumMiddlewareID is the SDK's flexible-checksum middleware
// (service/internal/checksum), which the unsigned payload must precede.
const checksumMiddlewareID = "AWSChecksum:ComputeInputPayloadChecksum"

// unsignedPayload is a per-operation option of uploads (see above).
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc(unsignedPayloadID,
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if v4.GetPayloadHash(ctx) == "" {
					ctx = v4.SetPayloadHash(ctx, unsignedPayloadHash)
				}
				return next.HandleFinalize(ctx, in)
			}), checksumMiddlewareID, middleware.Before)
	})
}

// unsignedPayloadHash is SigV4's x-amz-content-sha256 for an unsigned body.
const unsignedPayloadHash = "UNSIGNED-PAYLOAD"
