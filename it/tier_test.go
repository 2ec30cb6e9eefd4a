package it

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
)

// TestTieringMinIO: a broker with --tier on a real MinIO uploads sealed
// segments (seen in the bucket by an independent S3 client), drops them from
// local disk per local.retention.bytes, and a consumer from offset 0 reads
// every record back, compressed and uncompressed batches alike.
func TestTieringMinIO(t *testing.T) {
	m := harness.MinIOForTest(t)
	raw := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := raw.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sediment")}); err != nil {
		t.Fatal(err)
	}
	// The broker takes S3 credentials from the standard AWS environment.
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	b := StartBroker(t, "--tier", "s3://sediment/it?endpoint="+m.Endpoint+"&region=us-east-1",
		"--tier-upload-interval", "200ms", "--log-retention-check-interval", "500ms")

	const topic = "tiered"
	seg, local := "16384", "0"
	adm := kadm.NewClient(b.Client(t))
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": &seg, "local.retention.bytes": &local}, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	var want []string
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression()} {
		cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytes(8<<10))
		for i := 0; i < 600; i++ {
			v := fmt.Sprintf("%06d-%s", len(want), strings.Repeat("v", 80))
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want = append(want, v)
		}
	}

	// The bucket holds the uploads; local disk keeps only the active segment.
	dir := filepath.Join(b.Dir, topic+"-0")
	deadline := time.Now().Add(60 * time.Second)
	for {
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		out, err := raw.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("sediment"), Prefix: aws.String("it/")})
		if err != nil {
			t.Fatal(err)
		}
		var remoteLogs int
		for _, o := range out.Contents {
			if strings.HasSuffix(*o.Key, ".log") {
				remoteLogs++
			}
		}
		if len(logs) == 1 && remoteLogs >= 3 {
			t.Logf("%d segments in the bucket, %d local", remoteLogs, len(logs))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d local .log files, %d in the bucket", len(logs), remoteLogs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%020d.log", 0))); err == nil {
		t.Fatal("the first segment is still on local disk")
	}

	so, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := so.Lookup(topic, 0); o.Offset != 0 {
		t.Fatalf("earliest offset %d, want 0 (in the tier)", o.Offset)
	}
	c := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	for next := 0; next < len(want); {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(next) || string(r.Value) != want[next] {
				t.Fatalf("offset %d (want %d): %.20q", r.Offset, next, r.Value)
			}
			next++
		})
	}
}
