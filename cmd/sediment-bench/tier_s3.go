package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sedimentio/sediment/tier"
)

// newBenchS3 is an aws-sdk-go-v2 client of the bench's MinIO, configured
// as tier/s3 configures the broker's: the SDK's default HTTP client and
// retryer, path-style addressing, no response checksum validation unless
// required (ranged GETs carry none).
func newBenchS3(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(tierAccessKey, tierSecretKey, ""),
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		HTTPClient:                 awshttp.NewBuildableClient(),
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}

// tierObject is one .log object to read.
type tierObject struct {
	key        string // in the bucket
	size       int64  // as stored
	batchBytes int64  // of record batches it holds (the manifest's size)
	zstd       bool   // zstd frames, else the batches verbatim
	partition  int32
	base       int64 // the base offset of its first batch
}

// tierLogObjects lists the bucket and returns the topic's .log objects,
// sorted by partition and base offset, after checking them against each
// partition's manifest (the broker's own record of its finished copies):
// the manifest's segments cover [0, end) without gaps or overlaps, each
// has its .log object (of the size recorded, unless zstd frames). Listed .log
// objects of the topic the manifest does not name (an upload that did not
// finish) are not read: no consumer would read them either.
func tierLogObjects(ctx context.Context, c *s3.Client, topicID [16]byte, partitions int, ends []int64) ([]tierObject, error) {
	idText := tier.TopicIDText(topicID)
	listed := map[string]int64{}
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(tierBucket), Prefix: aws.String(tierPrefix + "/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s/: %w", tierBucket, tierPrefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), tierPrefix+"/")
			id, _, _, _, _, kind, err := tier.ParseObjectKey(key)
			if err == nil && id == idText && kind == tier.KindLog {
				listed[key] = aws.ToInt64(o.Size)
			}
		}
	}
	var objs []tierObject
	for p := range partitions {
		mkey := tier.ManifestKey(idText, int32(p))
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tierBucket), Key: aws.String(tierPrefix + "/" + mkey)})
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s: %w", mkey, err)
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s: %w", mkey, err)
		}
		m, err := tier.ParseManifest(b)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", mkey, err)
		}
		next := int64(0)
		for _, seg := range m.Segments {
			key := tier.SegmentObjectKey(seg, tier.KindLog)
			size, ok := listed[key]
			switch {
			case seg.BaseOffset != next:
				return nil, fmt.Errorf("manifest %s: segment at offset %d, want %d (a gap or an overlap)", mkey, seg.BaseOffset, next)
			case seg.Compression != "" && seg.Compression != "none" && seg.Compression != "zstd-frames":
				return nil, fmt.Errorf("manifest %s: segment %d has compression %q, unknown to the bench", mkey, seg.BaseOffset, seg.Compression)
			case !ok:
				return nil, fmt.Errorf("manifest %s names %s, which the bucket listing does not have", mkey, key)
			case seg.Compression != "zstd-frames" && size != seg.Size:
				return nil, fmt.Errorf("%s: %d bytes in the bucket, %d in the manifest", key, size, seg.Size)
			}
			delete(listed, key)
			objs = append(objs, tierObject{key: tierPrefix + "/" + key, size: size, batchBytes: seg.Size,
				zstd: seg.Compression == "zstd-frames", partition: int32(p), base: seg.BaseOffset})
			next = seg.EndOffset + 1
		}
		if next != ends[p] {
			return nil, fmt.Errorf("manifest %s: segments end at offset %d, the partition at %d", mkey, next, ends[p])
		}
	}
	return objs, nil
}

// rawRead GETs every byte of objs in ranges of chunk bytes, parallel at a
// time, the way the broker's remote reader does (tier.Reader: chunk-sized
// ranged GETs, at most MaxParallel in flight across partitions), but into
// reused buffers and with nothing else done with the bytes. The ranges are
// handed out partition by partition in turn, each partition's in order:
// one sequential stream per partition, as a catch-up consumer reads.
// Timing runs from the first GET to the last byte.
func rawRead(ctx context.Context, c *s3.Client, objs []tierObject, chunk int64, parallel int) (phaseResult, error) {
	type span struct {
		obj      *tierObject
		off, len int64
	}
	perPartition := map[int32][]span{}
	var parts []int32
	var total int64
	for i := range objs {
		o := &objs[i]
		if _, ok := perPartition[o.partition]; !ok {
			parts = append(parts, o.partition)
		}
		for off := int64(0); off < o.size; off += chunk {
			perPartition[o.partition] = append(perPartition[o.partition], span{o, off, min(chunk, o.size-off)})
		}
		total += o.size
	}
	var order []span
	for i := 0; ; i++ {
		n := len(order)
		for _, p := range parts {
			if i < len(perPartition[p]) {
				order = append(order, perPartition[p][i])
			}
		}
		if len(order) == n {
			break
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range parallel {
		wg.Go(func() {
			buf := make([]byte, chunk)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(order) || rctx.Err() != nil {
					return
				}
				s := order[i]
				if err := rawGet(rctx, c, s.obj, s.off, buf[:s.len]); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return phaseResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return phaseResult{}, err
	}
	return phaseResult{records: len(order), bytes: total, elapsed: elapsed}, nil
}

// rawGet reads len(p) bytes at off of o with one ranged GET. The first
// range of an object must start with a batch whose base offset is the
// segment's, or with a zstd frame: the bytes are the log, not an error page.
func rawGet(ctx context.Context, c *s3.Client, o *tierObject, off int64, p []byte) error {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(tierBucket),
		Key:    aws.String(o.key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)),
	})
	if err != nil {
		return fmt.Errorf("GET %s [%d, %d): %w", o.key, off, off+int64(len(p)), err)
	}
	defer out.Body.Close()
	if n, err := io.ReadFull(out.Body, p); err != nil {
		return fmt.Errorf("GET %s [%d, %d): %d bytes: %w", o.key, off, off+int64(len(p)), n, err)
	}
	switch {
	case off != 0 || len(p) < 8:
	case o.zstd && binary.LittleEndian.Uint32(p) != 0xFD2FB528:
		return fmt.Errorf("GET %s: does not start with a zstd frame (% x)", o.key, p[:4])
	case !o.zstd && int64(binary.BigEndian.Uint64(p)) != o.base:
		return fmt.Errorf("GET %s: first batch has base offset %d, want %d", o.key, int64(binary.BigEndian.Uint64(p)), o.base)
	}
	return nil
}
