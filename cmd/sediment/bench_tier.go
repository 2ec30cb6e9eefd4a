package main

// The tiered-storage phase (sediment-tier): what tiering costs a producer,
// and how fast a consumer catches up on history that only the object store
// holds, against the raw speed of that object store. BENCH.md describes the
// method; in short, each run:
//
//  1. tier off: one broker without --tier; create a topic with
//     segment.bytes --tier-segment-bytes; produce --tier-bytes of records
//     with the workload's producer; read them back (the workload's
//     consume, from local disk: the same read without the tier); stop
//     the broker.
//  2. tier on: a MinIO server (a child, like the brokers) and one broker
//     with --tier s3://…?endpoint=<that MinIO>; the same topic, plus
//     local.retention.bytes 0 (a segment's local copy goes once uploaded);
//     the same produce, while the broker uploads the segments it seals.
//  3. make every record history: segment.ms is set to 1 s so the broker
//     rolls the last segments, and the bench waits until ListOffsets says
//     every partition is tiered up to its end (latest tiered, -5) and has
//     no local data left (earliest local, -4, is the end).
//  4. raw: the .log objects of the topic, checked against the partitions'
//     manifests, are read with ranged GETs through aws-sdk-go-v2 straight
//     from MinIO, in the chunk size and with the parallelism of the broker's
//     remote reader (tier.DefaultReaderConfig).
//  5. catch-up: a fresh kgo consumer reads the topic from offset 0 (the
//     workload's consume: every record verified); the broker can only serve
//     it from the tier.
//
// Both reads move the same bytes out of MinIO: the .log objects, which hold
// the record batches verbatim or, with the broker's default
// --tier-compression auto and the workload's uncompressed batches, as zstd
// frames (about as large: the values are random). Both rates count those
// object bytes. Their ratio and the ratio of the two produce rates are the
// phase's figures.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/tier"
)

const (
	tierTargetName = "sediment-tier"
	tierTopic      = "sediment-bench-tier"
	// The bucket and prefix the broker tiers to, in the bench's own MinIO.
	tierBucket = "sediment-bench"
	tierPrefix = "tier"
	// MinIO's root credentials, also the broker's AWS credentials: the
	// server is the bench's child, on loopback, and lives for one run.
	tierAccessKey = "sediment-bench"
	tierSecretKey = "sediment-bench-secret"
	// tierRetentionCheck is the brokers' --log-retention-check-interval
	// (default 5m), which also paces time-based rolls and local retention:
	// at the default, step 3 would wait minutes for local copies to go.
	// Both brokers get it, so the produce comparison stays fair.
	tierRetentionCheck = "1s"
	// tierUploadInterval is the brokers' --tier-upload-interval (default
	// 5s). At the default, a 2 GiB produce (~6 s here) overlaps zero to two
	// upload rounds depending on when the ticks fall, and the produce ratio
	// swings from 0.4 to 1.0 between runs; at 1s a segment is uploaded soon
	// after it is sealed, so the uploads reliably run during the produce:
	// the setting that makes tiering cost the producer most, not least.
	// Both brokers get it (the tier-off one ignores it).
	tierUploadInterval = "1s"
	// tierRollMs is the segment.ms set after the produce to seal the last
	// segments, so that every record ends up in the tier.
	tierRollMs = "1000"
	// The project's goals.
	tierCatchUpTarget = 0.8 // catch-up / raw GETs
	tierProduceTarget = 0.9 // produce with tiering / without
)

// tierConfig is the tier phase's part of the bench flags.
type tierConfig struct {
	sedimentBin  string
	minioBin     string
	partitions   int
	serveFlags   []string // --sediment-flag: added to both brokers
	segmentBytes int64    // segment.bytes of the topic
	wait         time.Duration
	rawChunk     int64 // bytes per raw ranged GET
	rawParallel  int   // raw GETs in flight
}

// tierResult is one run of the tier phase.
type tierResult struct {
	off, on        phaseResult // produce without and with tiering
	local          phaseResult // tier off: read back from local disk; bytes: of the .log files
	offP50, offP99 time.Duration
	onP50, onP99   time.Duration
	catchUp        phaseResult // bytes: of the .log objects as stored; records: all
	catchUpValues  int64       // value bytes the consumer verified
	batchBytes     int64       // record batch bytes the consumer received (the objects uncompressed)
	raw            phaseResult // bytes: of the .log objects as stored; records: GETs
	objects        int         // .log objects read by both
	compressed     int         // of which zstd frames
	tiered         time.Duration
	offRSS, onRSS  uint64        // peak RSS of the brokers
	offCPU, onCPU  time.Duration // CPU of the brokers over their whole life
	minioCPU       time.Duration // CPU of MinIO over its whole life
	minioRSS       uint64
	// CPU during the produces (the broker's, and MinIO's taking uploads)
	// and during the reads (the broker's, MinIO's and the bench's).
	offProduceCPU, onProduceCPU, onProduceMinioCPU      time.Duration
	localBrokerCPU                                      time.Duration
	catchUpBrokerCPU, catchUpMinioCPU, catchUpClientCPU time.Duration
	rawMinioCPU, rawClientCPU                           time.Duration
	// The broker's remote-read counters over the catch-up.
	tierGetBytes, tierGets, cacheHits, cacheMisses float64
	// Fetches whose tier reads outlasted remote.fetch.max.wait (-1: the
	// broker has no such metric).
	remoteTimeouts float64
	// Fetch requests the broker answered during the catch-up, and the sum
	// of their times from decoding to the response written.
	fetches, fetchSeconds float64
}

// runTier runs one tier phase in dir (removed by the caller).
func runTier(ctx context.Context, cfg tierConfig, dir string, w workloadConfig, pool *valuePool, p *progress) (res tierResult, err error) {
	name := tierTargetName
	phase := func(s string) { p.set(name, s) }
	w.topic = tierTopic
	w.replication = 1
	topicConfigs := map[string]*string{"segment.bytes": kadm.StringPtr(strconv.FormatInt(cfg.segmentBytes, 10))}

	// 1. Tiering off.
	offDir := filepath.Join(dir, "tier-off")
	if err := os.MkdirAll(offDir, 0o755); err != nil {
		return res, err
	}
	phase("tier off: starting the broker")
	off, _, err := startTierBroker(ctx, cfg, offDir, "", childEnv())
	if err != nil {
		return res, fmt.Errorf("%s: tier off: start: %w", name, err)
	}
	b0 := procCPU(off.procs[0].pid())
	offRes, offErr := tierProduce(ctx, off, w, topicConfigs, pool, func(s string) { phase("tier off: " + s) })
	res.offProduceCPU = procCPU(off.procs[0].pid()) - b0
	if offErr == nil {
		res.local, res.localBrokerCPU, offErr = localRead(ctx, off, offDir, w, pool, offRes.ends, func(s string) { phase("tier off: " + s) })
	}
	if offErr == nil {
		offErr = off.alive()
	}
	if offErr == nil {
		res.offRSS, _, offErr = off.peakRSS()
	}
	if offErr != nil {
		// Before stopping it: afterwards every broker has exited.
		offErr = fmt.Errorf("%w%s%s", offErr, off.exitNote(), off.procs[0].logTail())
	}
	p.note(name, "tier off: stopping the broker")
	offErr = errors.Join(offErr, off.stop())
	res.offCPU = off.cpuTime()
	if offErr != nil {
		return res, fmt.Errorf("%s: tier off: %w", name, offErr)
	}
	res.off, res.offP50, res.offP99 = offRes.produce, offRes.p50, offRes.p99
	os.RemoveAll(offDir) // --tier-bytes of data: free it before the next broker writes as much

	// 2. Tiering on: MinIO, the bucket, the broker.
	phase("tier on: starting MinIO")
	minio, endpoint, err := startMinIO(ctx, cfg.minioBin, filepath.Join(dir, "minio"))
	if err != nil {
		return res, fmt.Errorf("%s: MinIO: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping MinIO")
		if stopErr := minio.stop(childStopGrace); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: MinIO: stop: %w", name, stopErr)
		}
		if st := minio.cmd.ProcessState; st != nil {
			res.minioCPU = st.UserTime() + st.SystemTime()
		}
	}()
	s3c := newBenchS3(endpoint)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(tierBucket)}); err != nil {
		return res, fmt.Errorf("%s: creating bucket %s: %w", name, tierBucket, err)
	}
	onDir := filepath.Join(dir, "tier-on")
	if err := os.MkdirAll(onDir, 0o755); err != nil {
		return res, err
	}
	tierURL := fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1", tierBucket, tierPrefix, endpoint)
	phase("tier on: starting the broker with --tier " + tierURL)
	on, httpAddr, err := startTierBroker(ctx, cfg, onDir, tierURL, tierBrokerEnv())
	if err != nil {
		return res, fmt.Errorf("%s: tier on: start: %w%s", name, err, minio.logTail())
	}
	defer func() {
		p.note(name, "tier on: stopping the broker")
		if stopErr := on.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: tier on: stop: %w", name, stopErr)
		}
		res.onCPU = on.cpuTime()
	}()
	fail := func(err error) error {
		return fmt.Errorf("%s: tier on: %w%s%s%s", name, err, on.exitNote(), on.procs[0].logTail(), minio.logTail())
	}
	onTopic := map[string]*string{"local.retention.bytes": kadm.StringPtr("0")}
	for k, v := range topicConfigs {
		onTopic[k] = v
	}
	b0, m0 := procCPU(on.procs[0].pid()), procCPU(minio.pid())
	onRes, err := tierProduce(ctx, on, w, onTopic, pool, func(s string) { phase("tier on: " + s) })
	if err != nil {
		return res, fail(err)
	}
	res.onProduceCPU, res.onProduceMinioCPU = procCPU(on.procs[0].pid())-b0, procCPU(minio.pid())-m0
	res.on, res.onP50, res.onP99 = onRes.produce, onRes.p50, onRes.p99

	// 3. Everything into the tier, nothing left on local disk.
	phase(fmt.Sprintf("tier on: setting segment.ms %s ms and waiting (<= %s) until every record is tiered and no local segment holds data", tierRollMs, cfg.wait))
	t0 := time.Now()
	topicID, err := sealAndWaitTiered(ctx, on.bootstrap, w, onRes.ends, cfg.wait, phase)
	if err != nil {
		return res, fail(err)
	}
	res.tiered = time.Since(t0)

	// The objects both reads cover.
	phase("tier on: listing the topic's .log objects and reading the manifests")
	objs, err := tierLogObjects(ctx, s3c, topicID, w.partitions, onRes.ends)
	if err != nil {
		return res, fail(err)
	}
	res.objects = len(objs)
	var logBytes int64
	for _, o := range objs {
		logBytes += o.size
		res.batchBytes += o.batchBytes
		if o.zstd {
			res.compressed++
		}
	}

	// 4. Raw ranged GETs.
	phase(fmt.Sprintf("raw: reading %d .log objects (%.1f MiB) with ranged GETs of %d KiB, %d in flight", len(objs), mib(logBytes), cfg.rawChunk>>10, cfg.rawParallel))
	m0, c0 := procCPU(minio.pid()), selfCPU()
	res.raw, err = rawRead(ctx, s3c, objs, cfg.rawChunk, cfg.rawParallel)
	if err != nil {
		return res, fail(fmt.Errorf("raw GETs: %w", err))
	}
	res.rawMinioCPU, res.rawClientCPU = procCPU(minio.pid())-m0, selfCPU()-c0

	// 5. The catch-up read.
	before, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	phase(fmt.Sprintf("catch-up: consuming %d records from offset 0, all from the tier", w.records))
	b0, m0, c0 = procCPU(on.procs[0].pid()), procCPU(minio.pid()), selfCPU()
	cons, err := consume(ctx, on.bootstrap, w, pool, onRes.ends, func(s string) { phase("catch-up: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("catch-up: %w", err))
	}
	res.catchUpBrokerCPU = procCPU(on.procs[0].pid()) - b0
	res.catchUpMinioCPU, res.catchUpClientCPU = procCPU(minio.pid())-m0, selfCPU()-c0
	res.catchUp = phaseResult{records: cons.records, bytes: logBytes, elapsed: cons.elapsed}
	res.catchUpValues = cons.bytes
	after, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	delta := func(name string) float64 { return after[name] - before[name] }
	res.tierGetBytes = delta("sediment_tier_remote_fetch_bytes_total")
	res.tierGets = delta("sediment_tier_remote_fetch_requests_total")
	res.cacheHits = delta("sediment_tier_cache_hits_total")
	res.cacheMisses = delta("sediment_tier_cache_misses_total")
	res.fetches = delta(fetchCountMetric)
	res.fetchSeconds = delta(fetchSecondsMetric)
	res.remoteTimeouts = -1
	if _, ok := after[remoteTimeoutsMetric]; ok {
		res.remoteTimeouts = delta(remoteTimeoutsMetric)
	}
	if res.tierGetBytes < float64(logBytes) {
		// The broker served some of it from somewhere else than the tier:
		// the figure would not be a catch-up read.
		return res, fail(fmt.Errorf("catch-up: the broker read %.1f MiB from the tier, less than the %.1f MiB of .log objects", res.tierGetBytes/(1<<20), mib(logBytes)))
	}

	if err := on.alive(); err != nil {
		return res, fail(err)
	}
	if res.onRSS, _, err = on.peakRSS(); err != nil {
		return res, fail(err)
	}
	if res.minioRSS, err = peakRSS(minio.pid()); err != nil {
		return res, fail(err)
	}
	return res, nil
}

// remoteTimeoutsMetric counts the partitions of fetches answered empty
// because their tier reads took too long: a sign the reader cannot keep up.
const remoteTimeoutsMetric = "sediment_broker_remote_fetch_timeouts_total"

// The broker's request-duration histogram, for Fetch.
const (
	fetchCountMetric   = `sediment_broker_request_duration_seconds_count{api="Fetch"}`
	fetchSecondsMetric = `sediment_broker_request_duration_seconds_sum{api="Fetch"}`
)

// tierProduceResult is what tierProduce measured.
type tierProduceResult struct {
	produce  phaseResult
	p50, p99 time.Duration
	ends     []int64 // end offset of each partition
}

// tierProduce creates w.topic with configs on in and runs the workload's
// produce and end-offset check.
func tierProduce(ctx context.Context, in *instance, w workloadConfig, configs map[string]*string, pool *valuePool, phase func(string)) (tierProduceResult, error) {
	var res tierProduceResult
	var cfgs []string
	for k, v := range configs {
		cfgs = append(cfgs, k+"="+*v)
	}
	slices.Sort(cfgs)
	phase(fmt.Sprintf("creating topic %s (%s)", w.topic, strings.Join(cfgs, ", ")))
	if err := createTopicWith(ctx, in.bootstrap, w, configs); err != nil {
		return res, fmt.Errorf("creating topic: %w", err)
	}
	phase(fmt.Sprintf("producing %d records", w.records))
	prod, lat, perPartition, err := produce(ctx, in.bootstrap, w, pool, phase)
	if err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	res.produce = prod
	slices.Sort(lat)
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	phase("checking end offsets")
	if res.ends, err = endOffsets(ctx, in.bootstrap, w, perPartition); err != nil {
		return res, fmt.Errorf("after produce: %w", err)
	}
	return res, nil
}

// localRead is the workload's consume on the tier-off broker: the same
// records read from local disk. Its bytes are those of the partitions'
// .log files, the record batches the broker sent, to compare with the
// .log objects of the catch-up read.
func localRead(ctx context.Context, in *instance, dir string, w workloadConfig, pool *valuePool, ends []int64, phase func(string)) (phaseResult, time.Duration, error) {
	var logBytes int64
	for p := range w.partitions {
		files, err := filepath.Glob(filepath.Join(dir, "data", fmt.Sprintf("%s-%d", w.topic, p), "*.log"))
		if err != nil {
			return phaseResult{}, 0, err
		}
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil {
				return phaseResult{}, 0, err
			}
			logBytes += st.Size()
		}
	}
	if logBytes == 0 {
		return phaseResult{}, 0, fmt.Errorf("no .log files of %s under %s", w.topic, filepath.Join(dir, "data"))
	}
	phase(fmt.Sprintf("reading %d records back from local disk", w.records))
	b0 := procCPU(in.procs[0].pid())
	cons, err := consume(ctx, in.bootstrap, w, pool, ends, phase)
	if err != nil {
		return phaseResult{}, 0, fmt.Errorf("local read: %w", err)
	}
	return phaseResult{records: cons.records, bytes: logBytes, elapsed: cons.elapsed}, procCPU(in.procs[0].pid()) - b0, nil
}

// createTopicWith creates the topic with configs, then lets createTopic
// (which tolerates an existing topic) wait for its leaders.
func createTopicWith(ctx context.Context, seeds []string, w workloadConfig, configs map[string]*string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer closeClient(cl)
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(w.partitions), max(w.replication, 1), configs, w.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return err
	}
	return createTopic(ctx, seeds, w)
}

// startTierBroker starts one `sediment serve` like the sediment target
// (bench_target.go), plus --log-retention-check-interval,
// --tier-upload-interval and, unless
// tierURL is empty, --tier, with env as its environment. It returns the
// instance and the broker's HTTP address (metrics, pprof).
func startTierBroker(ctx context.Context, cfg tierConfig, dir, tierURL string, env []string) (*instance, string, error) {
	flags := []string{
		"--log-retention-check-interval", tierRetentionCheck,
		"--tier-upload-interval", tierUploadInterval,
	}
	if tierURL != "" {
		flags = append(flags, "--tier", tierURL)
	}
	return startSingleBroker(ctx, cfg.sedimentBin, dir, cfg.partitions, append(flags, cfg.serveFlags...), env)
}

// tierBrokerEnv is childEnv without the user's AWS settings (a profile, a
// session token or an endpoint override would change what the broker talks
// to, or break its signatures) plus the bench MinIO's credentials.
func tierBrokerEnv() []string {
	var env []string
	for _, kv := range childEnv() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ACCESS_KEY_ID="+tierAccessKey, "AWS_SECRET_ACCESS_KEY="+tierSecretKey)
}

// startMinIO starts `minio server dir` on loopback ports, as tier/tiertest
// does for the tests, and returns once /minio/health/live answers 200.
func startMinIO(ctx context.Context, bin, dir string) (*child, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, "", err
	}
	env := append(tierBrokerEnv(),
		"MINIO_ROOT_USER="+tierAccessKey,
		"MINIO_ROOT_PASSWORD="+tierSecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	c, err := startChildEnv("minio", bin, []string{"server", filepath.Join(dir, "data"), "--address", addrs[0], "--console-address", addrs[1], "--quiet"},
		filepath.Join(dir, "minio.log"), env)
	if err != nil {
		return nil, "", err
	}
	endpoint := "http://" + addrs[0]
	wctx, cancel := context.WithTimeout(ctx, startLimit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, endpoint+"/minio/health/live", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, endpoint, nil
			}
		}
		select {
		case <-c.done:
			return nil, "", fmt.Errorf("%s exited before it was live: %v%s", bin, c.waitErr, c.logTail())
		case <-wctx.Done():
			return nil, "", errors.Join(fmt.Errorf("%s not live on %s within %s: %w%s", bin, endpoint, startLimit, wctx.Err(), c.logTail()), c.stop(childStopGrace))
		case <-tick.C:
		}
	}
}

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

// sealAndWaitTiered sets segment.ms so the broker rolls every partition's
// last segment, then waits until each partition is tiered up to its end
// offset (ListOffsets -5, latest tiered, is end-1) and its local log starts
// at the end (-4, earliest local): every record is in the tier only. It
// returns the topic's id.
func sealAndWaitTiered(ctx context.Context, seeds []string, w workloadConfig, ends []int64, limit time.Duration, phase func(string)) ([16]byte, error) {
	var id [16]byte
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return id, err
	}
	defer closeClient(cl)
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, w.topic)
	if err != nil {
		return id, fmt.Errorf("Metadata: %w", err)
	}
	id = md.Topics[w.topic].ID
	if id == ([16]byte{}) {
		return id, fmt.Errorf("Metadata gave no topic id for %s", w.topic)
	}
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: kadm.StringPtr(tierRollMs)}}, w.topic)
	if err == nil {
		_, err = alt.On(w.topic, nil)
	}
	if err != nil {
		return id, fmt.Errorf("setting segment.ms: %w", err)
	}

	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	report := time.Now()
	last := "no answer yet"
	for {
		tiered, local, err := tierProgress(wctx, cl, w, ends)
		if err == nil && tiered == w.partitions && local == w.partitions {
			return id, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d/%d partitions tiered up to their end offset, %d/%d without local data", tiered, w.partitions, local, w.partitions)
		}
		if time.Since(report) >= 5*time.Second {
			phase("waiting for the tier: " + last)
			report = time.Now()
		}
		select {
		case <-wctx.Done():
			return id, fmt.Errorf("not everything tiered after --tier-wait %s: %s", limit, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tierProgress counts the partitions whose latest tiered offset is end-1
// and those whose earliest local offset is end.
func tierProgress(ctx context.Context, cl *kgo.Client, w workloadConfig, ends []int64) (tiered, local int, err error) {
	latestTiered, err := listOffsetsAt(ctx, cl, w, -5)
	if err != nil {
		return 0, 0, err
	}
	earliestLocal, err := listOffsetsAt(ctx, cl, w, -4)
	if err != nil {
		return 0, 0, err
	}
	for p := range w.partitions {
		if latestTiered[p] == ends[p]-1 {
			tiered++
		}
		if earliestLocal[p] == ends[p] {
			local++
		}
	}
	return tiered, local, nil
}

// listOffsetsAt asks ListOffsets for timestamp ts (-4 earliest local,
// -5 latest tiered: kadm has no call for these) on every partition.
func listOffsetsAt(ctx context.Context, cl *kgo.Client, w workloadConfig, ts int64) ([]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = w.topic
	for p := range w.partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("ListOffsets %d: %w", ts, err)
	}
	out := make([]int64, w.partitions)
	seen := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("ListOffsets %d: partition %d: %w", ts, p.Partition, err)
			}
			if p.Partition < 0 || int(p.Partition) >= w.partitions {
				return nil, fmt.Errorf("ListOffsets %d: unexpected partition %d", ts, p.Partition)
			}
			out[p.Partition] = p.Offset
			seen++
		}
	}
	if seen != w.partitions {
		return nil, fmt.Errorf("ListOffsets %d: %d of %d partitions answered", ts, seen, w.partitions)
	}
	return out, nil
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

// scrapeMetrics reads the samples of the broker's /metrics, by name with
// labels as written (`name{label="value"}`).
func scrapeMetrics(ctx context.Context, httpAddr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("broker metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("broker metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ') // the value is last (promhttp writes no timestamps)
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[strings.TrimSpace(line[:i])] = f
		}
	}
	return out, sc.Err()
}

// procCPU is the user+system CPU time a running process has used, from
// /proc/<pid>/stat (in USER_HZ ticks, 100 a second on Linux). 0 where
// there is no /proc: the figures that need it then read 0.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: fields count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// minioVersion is what `make minio` recorded next to the binary (the
// module version it built), else the first line of `minio --version`.
func minioVersion(bin string) string {
	if filepath.Base(bin) == "minio" {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "minio.version")); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// defaultMinIOBin is bin/minio next to the sediment binary (where `make
// minio` installs it beside bin/sediment), else ./bin/minio.
func defaultMinIOBin(sedimentBin string) string {
	next := filepath.Join(filepath.Dir(sedimentBin), "minio")
	if _, err := os.Stat(next); err == nil {
		return next
	}
	abs, err := filepath.Abs(filepath.Join("bin", "minio"))
	if err != nil {
		return filepath.Join("bin", "minio")
	}
	return abs
}

func printTierHeader(out io.Writer, cfg tierConfig, records, valueSize int) {
	fmt.Fprintf(out, "%s: %d records x %d B (%.1f MiB) produced to one broker without tiering and one tiering to MinIO %s (local.retention.bytes 0), segment.bytes %s, --log-retention-check-interval %s and --tier-upload-interval %s on both; then read back from offset 0 once all of it is in MinIO only\n",
		tierTargetName, records, valueSize, float64(records)*float64(valueSize)/(1<<20), minioVersion(cfg.minioBin),
		(*byteSize)(&cfg.segmentBytes), tierRetentionCheck, tierUploadInterval)
	rd := readerDefaults()
	fmt.Fprintf(out, "%s raw baseline: aws-sdk-go-v2 ranged GETs of %s, %d in flight, of the topic's .log objects (the broker's remote reader: %s chunks, at most %d GETs in flight, read-ahead %d chunks)\n",
		tierTargetName, (*byteSize)(&cfg.rawChunk), cfg.rawParallel, (*byteSize)(&rd.ChunkSize), rd.MaxParallel, rd.ReadAhead)
}

// readerDefaults is the remote reader configuration the broker runs with
// (broker.New uses tier.DefaultReaderConfig; serve has no flag for it).
func readerDefaults() tier.ReaderConfig { return tier.DefaultReaderConfig("unused") }

const tierFormat = "%-10s %13s %14s %8s %8s %13s %14s %13s %6s\n"

// printTierResults prints one run's figures, or the medians of runs (then
// the ratios of the medians, followed by each run's own ratio: a run's two
// figures were taken a minute apart, on a machine whose load may change
// more between runs).
func printTierResults(out io.Writer, title string, r tierResult, runs []tierResult) {
	fmt.Fprintf(out, "\n%s, %s:\n", tierTargetName, title)
	fmt.Fprintf(out, tierFormat, "tier", "produce MiB/s", "produce rec/s", "p50 ms", "p99 ms", "read MiB/s", "read rec/s", "peak RSS MiB", "cpu s")
	f1 := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	f0 := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	fmt.Fprintf(out, tierFormat, "off", f1(r.off.mibPerSec()), f0(r.off.recPerSec()), f1(ms(r.offP50)), f1(ms(r.offP99)),
		f1(r.local.mibPerSec()), f0(r.local.recPerSec()), f1(float64(r.offRSS)/(1<<20)), f1(r.offCPU.Seconds()))
	fmt.Fprintf(out, tierFormat, "on", f1(r.on.mibPerSec()), f0(r.on.recPerSec()), f1(ms(r.onP50)), f1(ms(r.onP99)),
		f1(r.catchUp.mibPerSec()), f0(r.catchUp.recPerSec()), f1(float64(r.onRSS)/(1<<20)), f1(r.onCPU.Seconds()))
	fmt.Fprintf(out, tierFormat, "raw GETs", "-", "-", "-", "-", f1(r.raw.mibPerSec()), "-", "-", "-")
	fmt.Fprintf(out, tierFormat, "minio", "-", "-", "-", "-", "-", "-", f1(float64(r.minioRSS)/(1<<20)), f1(r.minioCPU.Seconds()))
	fmt.Fprintf(out, "tier: %d .log objects (%d of them zstd frames), %.1f MiB stored, %.1f MiB of record batches; all tiered and no local data %.1fs after the produce\n",
		r.objects, r.compressed, mib(r.catchUp.bytes), mib(r.batchBytes), r.tiered.Seconds())
	timeouts := ""
	if r.remoteTimeouts >= 0 {
		timeouts = fmt.Sprintf(", %.0f partition reads timed out (remote fetch max wait)", r.remoteTimeouts)
	}
	fmt.Fprintf(out, "catch-up: %.1fs, %.1f MiB/s of batches (%.1f MiB of values, every record verified); the broker's remote reads: %.1f MiB in %.0f requests (%.2f MiB each), chunk cache %.0f hits / %.0f misses%s\n",
		r.catchUp.elapsed.Seconds(), mib(r.batchBytes)/r.catchUp.elapsed.Seconds(), mib(r.catchUpValues), r.tierGetBytes/(1<<20), r.tierGets,
		r.tierGetBytes/(1<<20)/max(r.tierGets, 1), r.cacheHits, r.cacheMisses, timeouts)
	fmt.Fprintf(out, "catch-up fetches: %.0f Fetch requests of %.1f MiB, %.1f ms each in the broker (%.1fs of the %.1fs)\n",
		r.fetches, mib(r.batchBytes)/max(r.fetches, 1), 1000*r.fetchSeconds/max(r.fetches, 1), r.fetchSeconds, r.catchUp.elapsed.Seconds())
	fmt.Fprintf(out, "cpu s during the produces: tier off: broker %.1f over %.1fs; tier on: broker %.1f, MinIO %.1f over %.1fs\n",
		r.offProduceCPU.Seconds(), r.off.elapsed.Seconds(), r.onProduceCPU.Seconds(), r.onProduceMinioCPU.Seconds(), r.on.elapsed.Seconds())
	fmt.Fprintf(out, "cpu s during the reads: local: broker %.1f over %.1fs; catch-up: broker %.1f, MinIO %.1f, consumer %.1f over %.1fs; raw: MinIO %.1f, client %.1f over %.1fs (%d GETs)\n",
		r.localBrokerCPU.Seconds(), r.local.elapsed.Seconds(),
		r.catchUpBrokerCPU.Seconds(), r.catchUpMinioCPU.Seconds(), r.catchUpClientCPU.Seconds(), r.catchUp.elapsed.Seconds(),
		r.rawMinioCPU.Seconds(), r.rawClientCPU.Seconds(), r.raw.elapsed.Seconds(), r.raw.records)
	perRun := func(ratio func(tierResult) float64) string {
		if len(runs) == 0 {
			return ""
		}
		var b strings.Builder
		b.WriteString("; per run:")
		for _, run := range runs {
			fmt.Fprintf(&b, " %.2f", ratio(run))
		}
		return b.String()
	}
	catchUpRatio := func(r tierResult) float64 { return r.catchUp.mibPerSec() / r.raw.mibPerSec() }
	produceRatio := func(r tierResult) float64 { return r.on.mibPerSec() / r.off.mibPerSec() }
	cr := catchUpRatio(r)
	fmt.Fprintf(out, "catch-up from tier: %.1f MiB/s; raw ranged GETs: %.1f MiB/s; ratio catch-up/raw = %.2f (target >= %.1f: %s)%s\n",
		r.catchUp.mibPerSec(), r.raw.mibPerSec(), cr, tierCatchUpTarget, verdict(cr >= tierCatchUpTarget), perRun(catchUpRatio))
	pr := produceRatio(r)
	fmt.Fprintf(out, "produce tier on: %.1f MiB/s, off: %.1f MiB/s, ratio on/off = %.2f (target >= %.1f: %s)%s\n",
		r.on.mibPerSec(), r.off.mibPerSec(), pr, tierProduceTarget, verdict(pr >= tierProduceTarget), perRun(produceRatio))
}

// tierMedians takes each figure's median over the runs on its own, as
// medians does for the targets.
func tierMedians(rs []tierResult) tierResult {
	dur := func(get func(tierResult) time.Duration) time.Duration {
		vs := make([]time.Duration, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	u64 := func(get func(tierResult) uint64) uint64 {
		vs := make([]uint64, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	f64 := func(get func(tierResult) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		return medianSorted(vs)
	}
	// The bytes of a phase differ a little between runs (segment
	// boundaries, compression), so its median is that of the rate, as the
	// time the first run's bytes would take at it.
	phase := func(get func(tierResult) phaseResult) phaseResult {
		p := get(rs[0])
		rate := f64(func(r tierResult) float64 { return float64(get(r).bytes) / get(r).elapsed.Seconds() })
		p.elapsed = time.Duration(float64(p.bytes) / rate * float64(time.Second))
		return p
	}
	return tierResult{
		off:               phase(func(r tierResult) phaseResult { return r.off }),
		on:                phase(func(r tierResult) phaseResult { return r.on }),
		local:             phase(func(r tierResult) phaseResult { return r.local }),
		catchUp:           phase(func(r tierResult) phaseResult { return r.catchUp }),
		raw:               phase(func(r tierResult) phaseResult { return r.raw }),
		offP50:            dur(func(r tierResult) time.Duration { return r.offP50 }),
		offP99:            dur(func(r tierResult) time.Duration { return r.offP99 }),
		onP50:             dur(func(r tierResult) time.Duration { return r.onP50 }),
		onP99:             dur(func(r tierResult) time.Duration { return r.onP99 }),
		catchUpValues:     rs[0].catchUpValues,
		batchBytes:        rs[0].batchBytes,
		objects:           rs[0].objects,
		compressed:        rs[0].compressed,
		tiered:            dur(func(r tierResult) time.Duration { return r.tiered }),
		offRSS:            u64(func(r tierResult) uint64 { return r.offRSS }),
		onRSS:             u64(func(r tierResult) uint64 { return r.onRSS }),
		minioRSS:          u64(func(r tierResult) uint64 { return r.minioRSS }),
		offCPU:            dur(func(r tierResult) time.Duration { return r.offCPU }),
		onCPU:             dur(func(r tierResult) time.Duration { return r.onCPU }),
		minioCPU:          dur(func(r tierResult) time.Duration { return r.minioCPU }),
		localBrokerCPU:    dur(func(r tierResult) time.Duration { return r.localBrokerCPU }),
		offProduceCPU:     dur(func(r tierResult) time.Duration { return r.offProduceCPU }),
		onProduceCPU:      dur(func(r tierResult) time.Duration { return r.onProduceCPU }),
		onProduceMinioCPU: dur(func(r tierResult) time.Duration { return r.onProduceMinioCPU }),
		catchUpBrokerCPU:  dur(func(r tierResult) time.Duration { return r.catchUpBrokerCPU }),
		catchUpMinioCPU:   dur(func(r tierResult) time.Duration { return r.catchUpMinioCPU }),
		catchUpClientCPU:  dur(func(r tierResult) time.Duration { return r.catchUpClientCPU }),
		rawMinioCPU:       dur(func(r tierResult) time.Duration { return r.rawMinioCPU }),
		rawClientCPU:      dur(func(r tierResult) time.Duration { return r.rawClientCPU }),
		tierGetBytes:      f64(func(r tierResult) float64 { return r.tierGetBytes }),
		tierGets:          f64(func(r tierResult) float64 { return r.tierGets }),
		cacheHits:         f64(func(r tierResult) float64 { return r.cacheHits }),
		cacheMisses:       f64(func(r tierResult) float64 { return r.cacheMisses }),
		remoteTimeouts:    f64(func(r tierResult) float64 { return r.remoteTimeouts }),
		fetches:           f64(func(r tierResult) float64 { return r.fetches }),
		fetchSeconds:      f64(func(r tierResult) float64 { return r.fetchSeconds }),
	}
}

// medianSorted sorts vs and returns the middle value, or the mean of the
// two middle values.
func medianSorted[T time.Duration | uint64 | float64](vs []T) T {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// byteSize is a flag value in bytes, written as a plain number or with a
// KiB, MiB or GiB suffix.
type byteSize int64

func (b *byteSize) String() string {
	switch n := int64(*b); {
	case n != 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return strconv.FormatInt(n, 10)
	}
}

func (b *byteSize) Set(v string) error {
	num, shift := strings.TrimSpace(v), 0
	for _, u := range []struct {
		suffix string
		shift  int
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}} {
		if s, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = strings.TrimSpace(s), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return fmt.Errorf("%q: want a number of bytes, optionally with a KiB, MiB or GiB suffix", v)
	}
	*b = byteSize(n << shift)
	return nil
}
