package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/sedimentio/sediment/tier"
)

// MinPartSize is S3's smallest multipart part (except the last).
const MinPartSize = 5 << 20

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// Config says where a Store keeps its objects and how it talks to S3.
type Config struct {
	// Bucket must exist unless CreateBucket is set.
	Bucket string
	// CreateBucket makes New create the bucket when it does not exist
	// (for development: a fresh MinIO has no buckets).
	CreateBucket bool
	// Prefix is prepended to every key. If non-empty it must be a valid
	// key prefix without a trailing '/'; the Store adds the '/'.
	Prefix string
	// Endpoint is the service's base URL (http://127.0.0.1:9000 for a local
	// MinIO); empty means AWS S3 itself.
	Endpoint string
	// Region signs requests. Empty takes the region of the AWS config chain
	// (AWS_REGION, ~/.aws/config); if that is empty too, a Store with an
	// Endpoint uses us-east-1 and one without fails.
	Region string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key. MinIO needs it unless MINIO_DOMAIN is set.
	PathStyle bool
	// MaxAttempts bounds the attempts of each request, the first included.
	MaxAttempts int
	// MaxBackoff caps the delay between attempts.
	MaxBackoff time.Duration
	// RequestTimeout bounds each HTTP attempt, including reading its body.
	RequestTimeout time.Duration
	// PartSize is the largest object sent with one PutObject and the part
	// size of larger ones. At least MinPartSize.
	PartSize int64
	// PartConcurrency is how many parts of one object are uploaded at once.
	PartConcurrency int
	// Credentials overrides the AWS credential chain when non-nil.
	Credentials aws.CredentialsProvider
	// SignPayload makes uploads over plain HTTP sign the SHA-256 of their
	// bodies (SigV4's signed payload). Without it (the default) they are
	// sent as UNSIGNED-PAYLOAD with a CRC32C checksum header, which the
	// server verifies before it stores the object (write.go). Over HTTPS the
	// SDK always sends an unsigned payload with a trailing checksum, and
	// this setting changes nothing.
	SignPayload bool
}

// DefaultConfig returns the defaults for a Store in bucket.
func DefaultConfig(bucket string) Config {
	return Config{
		Bucket:          bucket,
		MaxAttempts:     5,
		MaxBackoff:      10 * time.Second,
		RequestTimeout:  2 * time.Minute,
		PartSize:        64 << 20,
		PartConcurrency: 4,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("tier/s3: empty bucket name")
	case strings.ContainsAny(c.Bucket, "/?#"):
		return fmt.Errorf("tier/s3: invalid bucket name %q", c.Bucket)
	case c.MaxAttempts < 1:
		return fmt.Errorf("tier/s3: MaxAttempts %d < 1", c.MaxAttempts)
	case c.MaxBackoff <= 0:
		return fmt.Errorf("tier/s3: MaxBackoff %v <= 0", c.MaxBackoff)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("tier/s3: RequestTimeout %v <= 0", c.RequestTimeout)
	case c.PartSize < MinPartSize:
		return fmt.Errorf("tier/s3: PartSize %d below S3's minimum %d", c.PartSize, MinPartSize)
	case c.PartConcurrency < 1:
		return fmt.Errorf("tier/s3: PartConcurrency %d < 1", c.PartConcurrency)
	}
	if c.Prefix != "" {
		if err := tier.CheckKey(c.Prefix); err != nil {
			return fmt.Errorf("tier/s3: prefix: %w", err)
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return fmt.Errorf("tier/s3: endpoint: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tier/s3: endpoint %q: want http://host[:port] or https://host[:port]", c.Endpoint)
		}
	}
	return nil
}

// Store is an object store in one S3 bucket under one prefix. It is safe for
// concurrent use.
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends in '/'
	partSize int64
	partConc int
	logger   *slog.Logger
	// upload is the per-operation option of PutObject and UploadPart (nil:
	// none): the unsigned payload (write.go).
	upload []func(*s3.Options)
}

var _ tier.ObjectStore = (*Store)(nil)

// New returns a Store for cfg. It sends no request: a missing bucket or bad
// credentials show up on the first operation.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	httpClient := awshttp.NewBuildableClient().WithTimeout(cfg.RequestTimeout)
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithLogger(sdkLogger(logger)),
		// Reads are ranged GETs, which S3 returns without a checksum
		// (checksums cover whole objects or parts), so asking for one only
		// costs a header and a debug message per read.
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = cfg.MaxBackoff
				// No client-side retry quota: a broker retries uploads
				// itself, and a quota drained during a storage outage
				// would keep failing requests after it ends.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tier/s3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("tier/s3: no region: set region= in the URL or AWS_REGION")
		}
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	prefix := cfg.Prefix
	if prefix != "" {
		prefix += "/"
	}
	st := &Store{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   prefix,
		partSize: cfg.PartSize,
		partConc: cfg.PartConcurrency,
		logger:   logger,
	}
	if !cfg.SignPayload {
		st.upload = []func(*s3.Options){unsignedPayload}
	}
	if cfg.CreateBucket {
		if err := st.createBucket(ctx); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// createBucket creates the bucket if it does not exist yet.
func (s *Store) createBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	switch status := httpStatus(err); {
	case err == nil:
		return nil
	case status == 0:
		// No answer at all (connection refused, DNS, timeout): whether the
		// bucket exists is unknown, so this is an error, not "it is there".
		return fmt.Errorf("tier/s3: checking bucket %q: %w", s.bucket, err)
	case status != http.StatusNotFound:
		return nil // there, or not ours to know (a 403 for a prefix-limited key, say)
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("tier/s3: create bucket %q: %w", s.bucket, err)
	}
	s.logger.Info("tier/s3: created bucket", "bucket", s.bucket)
	return nil
}

// Client returns the SDK client, for tests and tools.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// Prefix returns the prefix prepended to every key: "" or ending in '/'.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) objectKey(key string) *string { return aws.String(s.prefix + key) }

// IsNotExist implements tier.ObjectStore.
func (s *Store) IsNotExist(err error) bool { return errors.Is(err, tier.ErrNotExist) }

// wrap turns an SDK error into a Store error that names the operation and key,
// matching tier.ErrNotExist for a missing key.
func (s *Store) wrap(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("tier/s3: %s %q: %w: %w", op, key, tier.ErrNotExist, err)
	}
	return fmt.Errorf("tier/s3: %s %q: %w", op, key, err)
}

// isNotFound reports a missing object: NoSuchKey from GET, NotFound or a bare
// 404 from HEAD (which has no body to carry an error code). NoSuchBucket is
// not a missing object: it is a misconfiguration and must not look like one.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	return httpStatus(err) == 404
}

// sdkLogger sends the SDK's log lines to logger: warnings as warnings, the
// rest at debug level.
func sdkLogger(logger *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		logger.Log(context.Background(), level, "tier/s3: aws sdk: "+fmt.Sprintf(format, v...))
	})
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
