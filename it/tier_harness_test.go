package it

// The tiered-storage tests' helpers: one MinIO server (it/harness) with a
// bucket that brokers upload to (--tier), an independent S3 client that looks at the bucket as
// an operator would, the partition bounds as the leader reports them
// (ListOffsets -2 earliest, -4 earliest local, -5 latest tiered, -1 end),
// the manifest each partition mirrors to the bucket, and a load whose
// records are large enough to roll small segments quickly.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sedimentio/sediment/it/harness"
	"github.com/sedimentio/sediment/tier"
)

const (
	tierBucket = "sediment"
	tierPrefix = "it" // key prefix of the --tier URL
	// tierPadBytes pads every record of a tier load (in its key, so that
	// producerGroup.verify still matches values): small segments roll fast.
	tierPadBytes = 1024
)

// tierEnv is a MinIO server with one bucket, and the AWS environment the
// brokers read their S3 credentials from.
type tierEnv struct {
	t     testing.TB
	MinIO *harness.MinIO
	s3    *s3.Client
}

// startTierEnv starts MinIO (skipped without it, failed under CI=true),
// creates the bucket and points the AWS environment of the brokers started
// afterwards at it.
func startTierEnv(t *testing.T) *tierEnv {
	t.Helper()
	m := harness.MinIOForTest(t)
	e := &tierEnv{t: t, MinIO: m, s3: s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		// The test's own requests must not wait out an outage.
		RetryMaxAttempts: 1,
	})}
	ctx := testContext(t, 30*time.Second)
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(tierBucket)}); err != nil {
		t.Fatalf("creating bucket %s: %v", tierBucket, err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	return e
}

// flags are the serve flags of a broker tiering to the bucket, checking
// often.
func (e *tierEnv) flags() []string {
	return []string{
		"--tier", fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1", tierBucket, tierPrefix, e.MinIO.Endpoint),
		"--tier-upload-interval", "200ms",
		"--log-retention-check-interval", "500ms",
	}
}

// remoteUpload is the objects of one upload found in the bucket.
type remoteUpload struct {
	TopicID    string
	Partition  int32
	BaseOffset int64
	Epoch      int32
	UploadID   string
	Kinds      []string
}

// uploads lists the segment objects in the bucket by upload id; manifests
// are left out.
func (e *tierEnv) uploads(ctx context.Context) (map[string]*remoteUpload, error) {
	out := map[string]*remoteUpload{}
	var token *string
	for {
		resp, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String(tierBucket), Prefix: aws.String(tierPrefix + "/"), ContinuationToken: token})
		if err != nil {
			return nil, fmt.Errorf("listing the bucket: %w", err)
		}
		for _, o := range resp.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), tierPrefix+"/")
			if strings.HasPrefix(key, "manifests/") {
				continue
			}
			tid, p, base, epoch, id, kind, err := tier.ParseObjectKey(key)
			if err != nil {
				return nil, fmt.Errorf("object %q: %w", key, err)
			}
			u := out[id]
			if u == nil {
				u = &remoteUpload{TopicID: tid, Partition: p, BaseOffset: base, Epoch: epoch, UploadID: id}
				out[id] = u
			}
			u.Kinds = append(u.Kinds, kind)
		}
		if !aws.ToBool(resp.IsTruncated) {
			return out, nil
		}
		token = resp.NextContinuationToken
	}
}

// manifest reads and parses a partition's manifest from the bucket.
func (e *tierEnv) manifest(ctx context.Context, topicID string, p int32) (*tier.Manifest, error) {
	resp, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tierBucket),
		Key: aws.String(tierPrefix + "/" + tier.ManifestKey(topicID, p))})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return tier.ParseManifest(b)
}

// topicIDText is topic's id in Kafka's text form, as object keys use it.
func topicIDText(t testing.TB, adm *kadm.Client, topic string) string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("listing topic %s: %v", topic, err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: %v", topic, d.Err)
	}
	return tier.TopicIDText(d.ID)
}

// partBounds are a partition's offsets as its leader reports them.
type partBounds struct {
	Earliest      int64 // -2: log start, in the tier when tiered
	EarliestLocal int64 // -4 (KIP-405)
	LatestTiered  int64 // -5 (KIP-1005): last offset in the tier, -1 when none
	End           int64 // -1: high watermark
}

func (pb partBounds) String() string {
	return fmt.Sprintf("earliest %d, earliest local %d, latest tiered %d, end %d", pb.Earliest, pb.EarliestLocal, pb.LatestTiered, pb.End)
}

// boundsAt asks the broker at addr (which must lead the partition) for its
// bounds, with ListOffsets v9.
func boundsAt(addr, topic string, p int32) (partBounds, error) {
	var out partBounds
	for _, ts := range []int64{-2, -4, -5, -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(9)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := askBroker(addr, req, 3*time.Second)
		if err != nil {
			return out, err
		}
		resp := r.(*kmsg.ListOffsetsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return out, fmt.Errorf("ListOffsets %d: malformed response", ts)
		}
		sp := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			return out, fmt.Errorf("ListOffsets %d of %s[%d] at %s: %w", ts, topic, p, addr, err)
		}
		switch ts {
		case -2:
			out.Earliest = sp.Offset
		case -4:
			out.EarliestLocal = sp.Offset
		case -5:
			out.LatestTiered = sp.Offset
		case -1:
			out.End = sp.Offset
		}
	}
	return out, nil
}

// bounds asks the current leader of topic[p] for its bounds.
func (c *Cluster) bounds(topic string, p int32) (partBounds, error) {
	v, err := c.View(topic)
	if err != nil {
		return partBounds{}, err
	}
	l := v.Parts[p].Leader
	if l < 1 || int(l) > len(c.Brokers) {
		return partBounds{}, fmt.Errorf("%s[%d] has no leader: %v", topic, p, v.Parts[p])
	}
	return boundsAt(c.Node(l).Addr, topic, p)
}

// waitUntil polls cond every 200ms until it holds, and fails the test after
// timeout with cond's last explanation.
func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitBounds waits until every partition's bounds, as boundsOf reports
// them, satisfy ok.
func waitBounds(t testing.TB, what string, partitions int32, timeout time.Duration,
	boundsOf func(p int32) (partBounds, error), ok func(p int32, b partBounds) bool) map[int32]partBounds {
	t.Helper()
	out := map[int32]partBounds{}
	waitUntil(t, what, timeout, func() (bool, string) {
		for p := range partitions {
			b, err := boundsOf(p)
			if err != nil {
				return false, err.Error()
			}
			if !ok(p, b) {
				return false, fmt.Sprintf("partition %d: %v", p, b)
			}
			out[p] = b
		}
		return true, ""
	})
	return out
}

// tierLoadRate is the records per second of a tier load, all producers
// together: about 1 MB/s, which rolls the tests' small segments several
// times a second without drowning a 2-core machine (or the final read-back).
const tierLoadRate = 1000

// startTierLoad starts n idempotent acks=all producers writing to every
// partition of topic through seeds, tierLoadRate records a second in all,
// each record padded (uncompressed) to about tierPadBytes. Its
// producerGroup methods (waitAcks, finish, verify) and clusterLoad's
// waitAckedAfter apply.
func startTierLoad(t testing.TB, seeds []string, topic string, partitions int32, n int) *tierLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pg := &producerGroup{t: t, topic: topic, partitions: partitions, cancel: cancel, cond: make(chan struct{}), errs: map[string]int{}}
	ld := &tierLoad{clusterLoad: &clusterLoad{producerGroup: pg, ackTimes: map[int32][]time.Time{}}, clientLog: &syncBuffer{}}
	t.Cleanup(pg.stop)
	pad := []byte(strings.Repeat("p", tierPadBytes))
	for g := range n {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(seeds...),
			kgo.DialTimeout(time.Second),
			kgo.RequestTimeoutOverhead(3*time.Second),
			kgo.MetadataMinAge(100*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			manualPartitions,
			kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent: franz-go's default
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.MaxBufferedRecords(500),
			// Well below the tests' segment.bytes.
			kgo.ProducerBatchMaxBytes(32<<10),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProduceRequestTimeout(10*time.Second),
			kgo.WithLogger(kgo.BasicLogger(ld.clientLog, kgo.LogLevelInfo, func() string {
				return fmt.Sprintf("%s producer %d: ", time.Now().Format("15:04:05.000"), g)
			})),
		)
		if err != nil {
			t.Fatalf("kgo client: %v", err)
		}
		t.Cleanup(cl.Close)
		pg.clients = append(pg.clients, cl)
		pg.wg.Add(1)
		go func() {
			defer pg.wg.Done()
			const tick = 10 * time.Millisecond
			perTick := max(1, tierLoadRate*int(tick)/int(time.Second)/n)
			ticker := time.NewTicker(tick)
			defer ticker.Stop()
			for seq := 0; ctx.Err() == nil; seq++ {
				if seq%perTick == 0 {
					select {
					case <-ctx.Done():
						return
					case <-ticker.C:
					}
				}
				p := int32((g + seq) % int(partitions))
				r := &kgo.Record{Topic: topic, Partition: p, Key: pad, Value: []byte(producedValue(g, seq))}
				cl.Produce(ctx, r, ld.promise(g, seq))
			}
		}()
	}
	return ld
}

// tierLoad is a clusterLoad whose clients log (info level) to clientLog.
type tierLoad struct {
	*clusterLoad
	clientLog *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// firstAckAfter is, per partition, how long after since its first
// acknowledgement later than since came (-1: none yet).
func (ld *tierLoad) firstAckAfter(since time.Time) map[int32]time.Duration {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	out := map[int32]time.Duration{}
	for p := range ld.partitions {
		ts := ld.ackTimes[p]
		i := sort.Search(len(ts), func(i int) bool { return ts[i].After(since) })
		out[p] = -1
		if i < len(ts) {
			out[p] = ts[i].Sub(since).Round(time.Millisecond)
		}
	}
	return out
}

// maxAcked is the highest acknowledged offset of each partition so far (-1
// for none).
func (pg *producerGroup) maxAcked() map[int32]int64 {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	out := map[int32]int64{}
	for p := range pg.partitions {
		out[p] = -1
	}
	for _, a := range pg.acked {
		out[a.p] = max(out[a.p], a.offset)
	}
	return out
}

// checkCoverage requires the manifest's segments to cover [from, to]
// without a gap, never to repeat a segment (same base and end offset),
// and never to overlap within one leader epoch (overlaps across a leader
// change are by design, REMOTE.md).
func checkCoverage(m *tier.Manifest, from, to int64) error {
	if len(m.Segments) == 0 {
		return errors.New("no segments")
	}
	segs := slices.Clone(m.Segments)
	if segs[0].BaseOffset > from {
		return fmt.Errorf("the first segment starts at %d, want %d or below", segs[0].BaseOffset, from)
	}
	end := int64(-1) // highest end offset so far
	seen := map[[2]int64]string{}
	lastOfEpoch := map[int32]int64{}
	for i, s := range segs {
		if i > 0 && s.BaseOffset > end+1 {
			return fmt.Errorf("gap: offsets %d to %d are in no segment (segment %s starts at %d)", end+1, s.BaseOffset-1, s.UploadID, s.BaseOffset)
		}
		k := [2]int64{s.BaseOffset, s.EndOffset}
		if id, dup := seen[k]; dup {
			return fmt.Errorf("uploads %s and %s are both [%d, %d]: a duplicate remote segment", id, s.UploadID, s.BaseOffset, s.EndOffset)
		}
		seen[k] = s.UploadID
		if last, ok := lastOfEpoch[s.LeaderEpoch]; ok && s.BaseOffset <= last {
			return fmt.Errorf("segments of leader epoch %d overlap: [%d, %d] after one ending at %d", s.LeaderEpoch, s.BaseOffset, s.EndOffset, last)
		}
		lastOfEpoch[s.LeaderEpoch] = s.EndOffset
		end = max(end, s.EndOffset)
	}
	if end < to {
		return fmt.Errorf("the segments end at offset %d, want %d or above", end, to)
	}
	return nil
}

// describeSegments is a short listing of a manifest's segments.
func describeSegments(m *tier.Manifest) string {
	var b strings.Builder
	for _, s := range m.Segments {
		fmt.Fprintf(&b, " [%d,%d]e%d", s.BaseOffset, s.EndOffset, s.LeaderEpoch)
	}
	return b.String()
}

// etcdRecord is a remote segment's metadata record in etcd (REMOTE.md), as
// much of it as the tests read.
type etcdRecord struct {
	Key          string `json:"-"`
	TopicID      string `json:"topic_id"`
	Partition    int32  `json:"partition"`
	UploadID     string `json:"upload_id"`
	BaseOffset   int64  `json:"base_offset"`
	EndOffset    int64  `json:"end_offset"`
	LeaderEpoch  int32  `json:"leader_epoch"`
	MaxTimestamp int64  `json:"max_timestamp"`
	State        string `json:"state"`
}

// etcdClient is an etcd client of the members run by the brokers at
// indexes members of c.Brokers, closed when the test ends.
func (c *Cluster) etcdClient(t testing.TB, members ...int) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, i := range members {
		eps = append(eps, "http://"+c.Brokers[i].MetaClient)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// tierRecordsKey matches the key of a remote segment record of one topic.
func tierRecordsKey(topicID string) *regexp.Regexp {
	return regexp.MustCompile(`^/sediment/[^/]+/v1/tier/` + regexp.QuoteMeta(topicID) + `/\d+/\d{20}-`)
}

// tierRecords lists the remote segment records of a topic in etcd.
func tierRecords(ctx context.Context, cli *clientv3.Client, topicID string) ([]etcdRecord, error) {
	resp, err := cli.Get(ctx, "/sediment/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	re := tierRecordsKey(topicID)
	var out []etcdRecord
	for _, kv := range resp.Kvs {
		if !re.Match(kv.Key) {
			continue
		}
		var r etcdRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("record %s: %w", kv.Key, err)
		}
		r.Key = string(kv.Key)
		out = append(out, r)
	}
	return out, nil
}

// httpClient bounds each request of httpGet.
var httpClient = &http.Client{Timeout: 2 * time.Second}

// httpGet returns the status code and body of GET http://addr+path.
func httpGet(addr, path string) (int, string, error) {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metricValue is the value of an unlabelled metric (or the sum over the
// series of a labelled one) on the broker's /metrics, and whether any
// series of it is present.
func metricValue(b *Broker, name string) (float64, bool, error) {
	code, body, err := httpGet(b.HTTP, "/metrics")
	if err != nil {
		return 0, false, err
	}
	if code != http.StatusOK {
		return 0, false, fmt.Errorf("/metrics: status %d", code)
	}
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, false, fmt.Errorf("/metrics line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, nil
}

// compareTieredReplicas is CompareReplicas for a tiered topic, whose
// replicas keep only their newest segments, each from its own local log
// start: from the highest local log start of the replicas up to the high
// watermark, every replica must hold the same batches byte for byte, with
// no gap. The ISR must be full and the load finished.
func (c *Cluster) compareTieredReplicas(topic string, partitions int32) {
	c.t.Helper()
	hws := endOffsets(c.t, c.Admin(c.t), topic)
	v, err := c.View(topic)
	if err != nil {
		c.t.Fatal(err)
	}
	for p := range partitions {
		hw := hws[p]
		var (
			logs map[int32][]batchSpan
			lo   int64
		)
		// Local retention may delete a segment while it is read: retry.
		for attempt := 1; ; attempt++ {
			logs, lo, err = map[int32][]batchSpan{}, 0, nil
			for _, node := range v.Parts[p].Replicas {
				var bs []batchSpan
				bs, err = readReplicaLog(filepath.Join(c.Node(node).Dir, fmt.Sprintf("%s-%d", topic, p)))
				if err != nil {
					break
				}
				if len(bs) == 0 {
					err = fmt.Errorf("replica %d has no batches", node)
					break
				}
				logs[node] = bs
				lo = max(lo, bs[0].base)
			}
			if err == nil || attempt == 5 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			c.t.Fatalf("reading the replicas of %s[%d]: %v", topic, p, err)
		}
		if lo >= hw {
			c.t.Logf("%s[%d]: no offsets below the high watermark %d held by every replica (local log starts up to %d)", topic, p, hw, lo)
			continue
		}
		c.compareBatches(topic, p, v.Parts[p].Replicas, logs, lo, hw)
	}
}

// describeViews is every serving broker's Metadata answer for topic, and
// the bounds its leaders report: what a failure message needs.
func (c *Cluster) describeViews(topic string, partitions int32) string {
	var b strings.Builder
	for _, br := range c.serving() {
		v, err := view(br, topic)
		if err != nil {
			fmt.Fprintf(&b, "\n  broker %d: %v", c.NodeID(br), err)
			continue
		}
		fmt.Fprintf(&b, "\n  broker %d (live brokers %v, controller %d):", c.NodeID(br), v.Brokers, v.Controller)
		for p := range partitions {
			fmt.Fprintf(&b, "\n    partition %d: %v", p, v.Parts[p])
		}
	}
	for p := range partitions {
		pb, err := c.bounds(topic, p)
		fmt.Fprintf(&b, "\n  partition %d bounds at its leader: %v %v", p, pb, err)
	}
	return b.String()
}

// waitAckedAfterAll waits until each of parts has acknowledged a record
// after since, and otherwise fails with the cluster's view of the topic.
func (c *Cluster) waitAckedAfterAll(ld *tierLoad, parts []int32, since time.Time, timeout time.Duration) map[int32]time.Duration {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := ld.firstAckAfter(since)
		missing := []int32(nil)
		for _, p := range parts {
			if got[p] < 0 {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			ld.mu.Lock()
			errs := fmt.Sprint(ld.errs)
			ld.mu.Unlock()
			c.t.Fatalf("partitions %v: no acknowledgement within %v of %v (failures so far: %s); the cluster now:%s\n--- producer log (last 60 lines) ---\n%s",
				missing, timeout, since.Format("15:04:05.000"), errs, c.describeViews(ld.topic, ld.partitions), tail(ld.clientLog.String(), 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// epochEnd is one OffsetForLeaderEpoch answer.
type epochEnd struct {
	Epoch     int32 // requested
	LeaderEp  int32 // answered: the largest epoch not above it the leader knows
	EndOffset int64
}

func (e epochEnd) String() string {
	return fmt.Sprintf("epoch %d -> (%d, %d)", e.Epoch, e.LeaderEp, e.EndOffset)
}

// epochEnds asks the broker at addr (the leader, in epoch cur) where each
// epoch 0..cur of topic[p] ends, as a consumer validating its position
// would (KIP-320).
func epochEnds(addr, topic string, p, cur int32) ([]epochEnd, error) {
	var out []epochEnd
	for e := int32(0); e <= cur; e++ {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(4)
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = p, cur, e
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := askBroker(addr, req, 3*time.Second)
		if err != nil {
			return out, err
		}
		resp := r.(*kmsg.OffsetForLeaderEpochResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return out, errors.New("OffsetForLeaderEpoch: malformed response")
		}
		sp := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			return out, fmt.Errorf("OffsetForLeaderEpoch %d of %s[%d] at %s: %w", e, topic, p, addr, err)
		}
		out = append(out, epochEnd{Epoch: e, LeaderEp: sp.LeaderEpoch, EndOffset: sp.EndOffset})
	}
	return out, nil
}

// checkEpochEnds requires the leader's OffsetForLeaderEpoch answers for
// every epoch of a partition whose log starts at offset 0 (in the tier) and
// whose first epoch has records to be consistent: each epoch before the
// current one ends (where the next one starts) no earlier than the previous
// one, past offset 0 and at most at the log end; the current one ends at
// the log end. A consumer validating its
// position against a smaller end offset than it consumed to sees data loss
// (KIP-320) where there is none.
func checkEpochEnds(t testing.TB, addr, topic string, p, cur int32, logEnd int64, dir string) {
	t.Helper()
	ends, err := epochEnds(addr, topic, p, cur)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s-%d", topic, p), "leader-epoch-checkpoint"))
	prev := int64(0)
	for _, e := range ends {
		bad := ""
		switch {
		case e.LeaderEp > e.Epoch || e.LeaderEp < 0:
			bad = "answered epoch out of range"
		case e.Epoch < cur && (e.EndOffset < prev || e.EndOffset <= 0 || e.EndOffset > logEnd):
			bad = fmt.Sprintf("end offset not in [%d, %d] (nor above 0)", prev, logEnd)
		case e.Epoch == cur && (e.LeaderEp != cur || e.EndOffset != logEnd):
			bad = fmt.Sprintf("the current epoch must end at the log end %d", logEnd)
		}
		if bad != "" {
			t.Fatalf("%s[%d] at %s: OffsetForLeaderEpoch %v: %s; all answers %v; the broker's leader-epoch-checkpoint: %q",
				topic, p, addr, e, bad, ends, ckpt)
		}
		prev = e.EndOffset
	}
	t.Logf("%s[%d]: OffsetForLeaderEpoch %v (local leader-epoch-checkpoint %q)", topic, p, ends, ckpt)
}

// firstBoundsAt polls the broker at addr until it answers ListOffsets for
// topic[p] as its leader (it may learn of its leadership after Metadata
// shows it), and returns that first answer: what a consumer asking right
// after the leader change gets.
func firstBoundsAt(t testing.TB, addr, topic string, p int32, timeout time.Duration) partBounds {
	t.Helper()
	var first partBounds
	waitUntil(t, fmt.Sprintf("%s[%d]: ListOffsets answered by its new leader", topic, p), timeout, func() (bool, string) {
		b, err := boundsAt(addr, topic, p)
		if err != nil {
			return false, err.Error()
		}
		first = b
		return true, ""
	})
	return first
}
