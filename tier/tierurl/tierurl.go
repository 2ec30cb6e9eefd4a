package tierurl

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	"github.com/sedimentio/sediment/tier/s3"
)

// Open returns the object store a --tier URL names:
//
//	file:///abs/path            a local directory (created if missing)
//	file:rel/path               a directory relative to the working directory
//	s3://bucket[/prefix][?endpoint=URL&region=R&path-style=true|false&create-bucket=true|false&sign-payload=true|false]
//
// file://host/path is rejected (except host "localhost"): it reads like a
// relative path but RFC 8089 makes "host" a machine name.
//
// For s3, prefix (without leading or trailing '/') is prepended to every key.
// endpoint selects an S3-compatible service such as MinIO
// (endpoint=http://127.0.0.1:9000); without it the store talks to AWS S3.
// region defaults to the AWS config chain's, and to us-east-1 when an endpoint
// is given. path-style defaults to true with an endpoint (MinIO's default
// addressing) and false without (AWS's virtual-hosted style). Credentials come
// from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE and ~/.aws, SSO, web identity, container and instance roles).
// Open sends no request, so a missing bucket or bad credentials surface on
// the first operation, unless create-bucket=true (for a fresh development
// MinIO), which creates a missing bucket at once. sign-payload=true makes
// uploads over plain HTTP sign the SHA-256 of their bodies; by default they
// go as UNSIGNED-PAYLOAD with a CRC32C checksum the server verifies
// (s3.Config.SignPayload). logger (nil: discard) goes to the s3 backend.
func Open(ctx context.Context, rawURL string, logger *slog.Logger) (tier.ObjectStore, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("tier: bad URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		return openFile(u)
	case "s3":
		return openS3(ctx, u, logger)
	case "":
		return nil, fmt.Errorf("tier: URL %q has no scheme: want file:///path or s3://bucket/prefix", rawURL)
	default:
		return nil, fmt.Errorf("tier: URL %q: unsupported scheme %q: want file or s3", rawURL, u.Scheme)
	}
}

func openFile(u *url.URL) (tier.ObjectStore, error) {
	if len(u.Query()) > 0 || u.Fragment != "" {
		return nil, fmt.Errorf("tier: file URL %q: takes no query or fragment", u.Redacted())
	}
	var dir string
	switch {
	case u.Opaque != "": // file:rel/path
		dir = u.Opaque
		if p, err := url.PathUnescape(dir); err == nil {
			dir = p
		}
	case u.Host != "" && u.Host != "localhost":
		return nil, fmt.Errorf("tier: file URL %q names host %q: use file:///abs/path, or file:rel/path for a path relative to the working directory", u.Redacted(), u.Host)
	default: // file:///abs/path
		dir = u.Path
	}
	if dir == "" {
		return nil, fmt.Errorf("tier: file URL %q: no directory", u.Redacted())
	}
	st, err := file.New(filepath.FromSlash(dir))
	if err != nil {
		return nil, fmt.Errorf("tier: %w", err)
	}
	return st, nil
}

func openS3(ctx context.Context, u *url.URL, logger *slog.Logger) (tier.ObjectStore, error) {
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("tier: s3 URL %q: no bucket: want s3://bucket[/prefix]", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("tier: s3 URL %q: credentials do not go in the URL; use the AWS environment or config files", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("tier: s3 URL %q: unexpected fragment", u.Redacted())
	}
	cfg := s3.DefaultConfig(u.Host)
	cfg.Prefix = strings.Trim(u.Path, "/")
	q := u.Query()
	pathStyle := ""
	for name, vals := range q {
		if len(vals) != 1 {
			return nil, fmt.Errorf("tier: s3 URL: parameter %q given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path-style":
			pathStyle = v
		case "create-bucket":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("tier: s3 URL: create-bucket=%q: want true or false", v)
			}
			cfg.CreateBucket = b
		case "sign-payload":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("tier: s3 URL: sign-payload=%q: want true or false", v)
			}
			cfg.SignPayload = b
		default:
			return nil, fmt.Errorf("tier: s3 URL: unknown parameter %q (known: endpoint, region, path-style, create-bucket, sign-payload)", name)
		}
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if pathStyle != "" {
		b, err := strconv.ParseBool(pathStyle)
		if err != nil {
			return nil, fmt.Errorf("tier: s3 URL: path-style=%q: want true or false", pathStyle)
		}
		cfg.PathStyle = b
	}
	st, err := s3.New(ctx, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("tier: %w", err)
	}
	logger.Info("tier: object store", "backend", "s3", "bucket", cfg.Bucket, "prefix", cfg.Prefix,
		"endpoint", cfg.Endpoint, "path_style", cfg.PathStyle, "sign_payload", cfg.SignPayload)
	return st, nil
}
