package s3_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	tiers3 "github.com/sedimentio/sediment/tier/s3"
)

// TestCreateBucketUnreachable: with create-bucket, an endpoint that does not
// answer is an error naming the bucket, not taken for a bucket that exists
// (which left a broker tiering into a bucket nobody created).
func TestCreateBucketUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	cfg := tiers3.DefaultConfig("nowhere")
	cfg.Endpoint = "http://" + addr
	cfg.Region = "us-east-1"
	cfg.PathStyle = true
	cfg.Credentials = credentials.NewStaticCredentialsProvider("k", "s", "")
	cfg.CreateBucket = true
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = tiers3.New(ctx, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `bucket "nowhere"`) {
		t.Fatalf("New with create-bucket and no server: %v, want an error naming the bucket", err)
	}
}
