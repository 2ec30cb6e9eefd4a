package s3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sedimentio/sediment/tier"
)

// ReadAt implements tier.ObjectStore with one ranged GET.
func (s *Store) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	if err := tier.CheckRead(key, off); err != nil {
		return err
	}
	if len(p) == 0 {
		_, err := s.Stat(ctx, key)
		return err
	}
	end := off + int64(len(p)) - 1 // inclusive, as in HTTP ranges
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    s.objectKey(key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
	})
	if err != nil {
		// 416: the range starts at or past the end (any range of an empty
		// object included), so not one byte is available.
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			return io.EOF
		}
		return s.wrap("read", key, err)
	}
	defer out.Body.Close()

	// Which bytes did the server send? A 206 says so in Content-Range; a
	// server that ignores Range answers 200 with the whole object.
	var first, last int64
	if out.ContentRange != nil {
		var total int64
		first, last, total, err = parseContentRange(aws.ToString(out.ContentRange))
		if err != nil {
			return fmt.Errorf("tier/s3: read %q: %w", key, err)
		}
		if first != off || last < first || last > end || (last < end && last != total-1) {
			return fmt.Errorf("tier/s3: read %q: asked for bytes %d-%d, got Content-Range %q", key, off, end, aws.ToString(out.ContentRange))
		}
	} else {
		if off != 0 || out.ContentLength == nil {
			return fmt.Errorf("tier/s3: read %q: server ignored the range bytes=%d-%d", key, off, end)
		}
		first, last = 0, min(aws.ToInt64(out.ContentLength)-1, end)
	}
	n := last - first + 1
	if out.ContentRange != nil && out.ContentLength != nil && aws.ToInt64(out.ContentLength) != n {
		return fmt.Errorf("tier/s3: read %q: Content-Length %d does not match Content-Range %q", key, aws.ToInt64(out.ContentLength), aws.ToString(out.ContentRange))
	}
	if got, err := io.ReadFull(out.Body, p[:n]); err != nil {
		// A connection cut mid-body: a transport failure, which must not
		// look like the end of the object (io.ErrUnexpectedEOF).
		return fmt.Errorf("tier/s3: read %q: body ended after %d of %d bytes: %v", key, got, n, err)
	}
	if n == 0 {
		return io.EOF // a server answering 200 for an empty object
	}
	if n < int64(len(p)) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// parseContentRange parses "bytes first-last/total".
func parseContentRange(v string) (first, last, total int64, err error) {
	bad := fmt.Errorf("malformed Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if first, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if tot == "*" {
		total = -1
	} else if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	return first, last, total, nil
}

// Stat implements tier.ObjectStore with HEAD.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	if err := tier.CheckKey(key); err != nil {
		return 0, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    s.objectKey(key),
	})
	if err != nil {
		if isNotFound(err) {
			// HEAD has no body to say NoSuchBucket: a 404 could be either.
			// A missing bucket must not pass for a missing key (an uploader
			// would "re-upload" into the void), so ask.
			if berr := s.checkBucket(ctx); berr != nil {
				return 0, fmt.Errorf("tier/s3: stat %q: %w", key, berr)
			}
		}
		return 0, s.wrap("stat", key, err)
	}
	if out.ContentLength == nil {
		return 0, fmt.Errorf("tier/s3: stat %q: no Content-Length", key)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// checkBucket returns an error if the bucket certainly does not exist. Any
// other answer (a 403 for credentials limited to a prefix, say) proves
// nothing, so it returns nil.
func (s *Store) checkBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err != nil && httpStatus(err) == http.StatusNotFound {
		return fmt.Errorf("bucket %q does not exist: %w", s.bucket, err)
	}
	return nil
}

// List implements tier.ObjectStore with ListObjectsV2, page by page. S3 lists
// keys in UTF-8 byte order, which is lexical order.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	// Every complete segment of prefix must be valid for a key to match;
	// MinIO rejects prefixes with "." or ".." segments outright.
	dir, last := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, last = prefix[:i+1], prefix[i+1:]
		if tier.CheckKey(prefix[:i]) != nil {
			return nil
		}
	}
	query := prefix
	if last == "." || last == ".." {
		// Could still start a valid segment ("..x"): list the parent and
		// filter here.
		query = dir
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + query),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("tier/s3: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			full := aws.ToString(o.Key)
			key, ok := strings.CutPrefix(full, s.prefix)
			if !ok {
				return fmt.Errorf("tier/s3: list %q: server returned key %q outside prefix %q", prefix, full, s.prefix)
			}
			if !strings.HasPrefix(key, prefix) || tier.CheckKey(key) != nil {
				continue // written by something else; not addressable here
			}
			if err := fn(key, aws.ToInt64(o.Size)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements tier.ObjectStore. S3 answers a DELETE of a missing key
// with 204 already; a 404 is tolerated for stores that differ.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := tier.CheckKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    s.objectKey(key),
	})
	if err != nil && !isNotFound(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}
