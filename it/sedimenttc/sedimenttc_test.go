package sedimenttc_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/sedimenttc"
)

// run starts the brokers, logs how long Run took (make bench measures it;
// tests do not time it) and removes everything when t ends.
func run(t *testing.T, opts ...testcontainers.ContainerCustomizer) *sedimenttc.Container {
	t.Helper()
	img := image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	ctr, err := sedimenttc.Run(ctx, img, opts...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("sedimenttc.Run returned in %v (%d broker(s))", time.Since(start).Round(time.Millisecond), len(ctr.Brokers))
	t.Cleanup(func() {
		if err := ctr.Terminate(context.Background()); err != nil {
			t.Errorf("Terminate: %v", err)
		}
	})
	return ctr
}

func client(t *testing.T, ctr *sedimenttc.Container, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	seeds, err := ctr.SeedBrokers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceConsume writes n records to topic with acks=all and reads them back
// in order from the start.
func produceConsume(t *testing.T, ctr *sedimenttc.Container, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := client(t, ctr, append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks())}, opts...)...)
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "value %d", i)})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	c := client(t, ctr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("value %d", got); string(r.Value) != want {
				t.Fatalf("record %d: value %q, want %q", got, r.Value, want)
			}
			got++
		})
	}
}

func TestSingleBroker(t *testing.T) {
	ctr := run(t, sedimenttc.WithTopics("orders"), sedimenttc.WithSetting("auto-create-topics", "false"))
	ctx := context.Background()

	// Pre-created, not auto-created: auto-creation is off.
	topics, err := kadm.NewClient(client(t, ctr)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has("orders") {
		t.Fatalf("topic orders not created by WithTopics; topics: %v", topics.Names())
	}
	produceConsume(t, ctr, "orders", 200)

	url, err := ctr.MetricsURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("GET %s: %s, %d bytes without go_goroutines", url, resp.Status, len(body))
	}
}

func TestMinIOTier(t *testing.T) {
	ctr := run(t,
		sedimenttc.WithMinIO(localMinIOImage(t)),
		sedimenttc.WithTopics("tiered"),
		// Tiny segments roll often, so sealed segments exist to upload.
		sedimenttc.WithSetting("log-segment-bytes", "4096"),
		sedimenttc.WithSetting("tier-upload-interval", "100ms"),
	)
	// Batches well under segment.bytes (a larger one is refused).
	produceConsume(t, ctr, "tiered", 500, kgo.ProducerBatchMaxBytes(1024))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Objects are named by topic id (tier/REMOTE.md), in Kafka's text form.
	meta, err := kadm.NewClient(client(t, ctr)).Metadata(ctx, "tiered")
	if err != nil {
		t.Fatal(err)
	}
	id := meta.Topics["tiered"].ID
	topicID := base64.RawURLEncoding.EncodeToString(id[:])
	endpoint, err := ctr.MinIOEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.New(s3.Options{
		Region: sedimenttc.MinIORegion, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(sedimenttc.MinIOUser, sedimenttc.MinIOPassword, ""),
	})
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(sedimenttc.MinIOBucket)})
		if err == nil {
			var logs []string
			for _, o := range out.Contents {
				if k := aws.ToString(o.Key); strings.Contains(k, topicID) && strings.Contains(k, ".log") {
					logs = append(logs, k)
				}
			}
			if len(logs) > 0 {
				t.Logf("%d segment(s) of topic tiered in the bucket, e.g. %s", len(logs), logs[0])
				return
			}
		}
		select {
		case <-ctx.Done():
			if rc, lerr := ctr.Logs(context.Background()); lerr == nil {
				logs, _ := io.ReadAll(rc)
				t.Logf("broker log:\n%s", logs)
			}
			t.Fatalf("no segment of topic tiered appeared in bucket %s (last list error: %v)", sedimenttc.MinIOBucket, err)
		case <-tick.C:
		}
	}
}

func TestCluster(t *testing.T) {
	ctr := run(t, sedimenttc.WithCluster(3), sedimenttc.WithTopics("replicated"))
	if len(ctr.Brokers) != 3 {
		t.Fatalf("%d brokers, want 3", len(ctr.Brokers))
	}
	ctx := context.Background()
	adm := kadm.NewClient(client(t, ctr))
	meta, err := adm.Metadata(ctx, "replicated")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(meta.Brokers); n != 3 {
		t.Fatalf("metadata names %d brokers, want 3: %v", n, meta.Brokers)
	}
	for _, p := range meta.Topics["replicated"].Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("replicated/%d: replicas %v, want 3 (RF=3)", p.Partition, p.Replicas)
		}
	}
	produceConsume(t, ctr, "replicated", 300)

	// acks=all reached every replica: the ISR of each partition is all three.
	deadline := time.Now().Add(30 * time.Second)
	for {
		meta, err := adm.Metadata(ctx, "replicated")
		if err != nil {
			t.Fatal(err)
		}
		full := true
		for _, p := range meta.Topics["replicated"].Partitions {
			full = full && len(p.ISR) == 3
		}
		if full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ISR not full: %+v", meta.Topics["replicated"].Partitions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
