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
// The catch-up and the raw read move the same bytes out of MinIO: the .log
// objects, which hold the record batches verbatim or, with the broker's
// default --tier-compression auto and the workload's uncompressed batches,
// as zstd frames (about as large: the values are random). The phase's
// figures (issue 14): the catch-up's rate over the local read's, both in
// record batch bytes; the bytes the broker GETs over the objects' bytes; the
// ratio of the two produce rates. The catch-up's rate over the raw GETs' is
// printed as information: MinIO serves them from its page cache over
// loopback faster than the Kafka path reads local disk (BENCH.md).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sedimentio/sediment/it/harness"
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
	// The project's goals (issue 14).
	tierCatchUpTarget = 0.7 // catch-up from the tier / the same read from local disk (batch bytes)
	tierGetTarget     = 1.1 // bytes the broker GETs / bytes of the .log objects the catch-up needs, at most
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
	localBrokerCPU, localClientCPU                      time.Duration
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
	off, _, err := startTierBroker(ctx, cfg, offDir, "", nil)
	if err != nil {
		return res, fmt.Errorf("%s: tier off: start: %w", name, err)
	}
	b0 := off.procs[0].CPU()
	offRes, offErr := tierProduce(ctx, off, w, topicConfigs, pool, func(s string) { phase("tier off: " + s) })
	res.offProduceCPU = off.procs[0].CPU() - b0
	if offErr == nil {
		c0 := selfCPU()
		res.local, res.localBrokerCPU, offErr = localRead(ctx, off, offDir, w, pool, offRes.ends, func(s string) { phase("tier off: " + s) })
		res.localClientCPU = selfCPU() - c0
	}
	if offErr == nil {
		offErr = off.alive()
	}
	if offErr == nil {
		res.offRSS, _, offErr = off.peakRSS()
	}
	if offErr != nil {
		// Before stopping it: afterwards every broker has exited.
		offErr = fmt.Errorf("%w%s%s", offErr, off.exitNote(), off.procs[0].LogTail())
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
	minio, err := startTierMinIO(ctx, cfg.minioBin, filepath.Join(dir, "minio"))
	if err != nil {
		return res, fmt.Errorf("%s: MinIO: %w", name, err)
	}
	endpoint, mp := minio.Endpoint, minio.Process()
	defer func() {
		p.note(name, "stopping MinIO")
		if stopErr := minio.Stop(childStopGrace); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: MinIO: stop: %w", name, stopErr)
		}
		res.minioCPU = mp.CPU()
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
		return res, fmt.Errorf("%s: tier on: start: %w%s", name, err, mp.LogTail())
	}
	defer func() {
		p.note(name, "tier on: stopping the broker")
		if stopErr := on.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: tier on: stop: %w", name, stopErr)
		}
		res.onCPU = on.cpuTime()
	}()
	fail := func(err error) error {
		return fmt.Errorf("%s: tier on: %w%s%s%s", name, err, on.exitNote(), on.procs[0].LogTail(), mp.LogTail())
	}
	onTopic := map[string]*string{"local.retention.bytes": kadm.StringPtr("0")}
	for k, v := range topicConfigs {
		onTopic[k] = v
	}
	b0, m0 := on.procs[0].CPU(), mp.CPU()
	onRes, err := tierProduce(ctx, on, w, onTopic, pool, func(s string) { phase("tier on: " + s) })
	if err != nil {
		return res, fail(err)
	}
	res.onProduceCPU, res.onProduceMinioCPU = on.procs[0].CPU()-b0, mp.CPU()-m0
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
	m0, c0 := mp.CPU(), selfCPU()
	res.raw, err = rawRead(ctx, s3c, objs, cfg.rawChunk, cfg.rawParallel)
	if err != nil {
		return res, fail(fmt.Errorf("raw GETs: %w", err))
	}
	res.rawMinioCPU, res.rawClientCPU = mp.CPU()-m0, selfCPU()-c0

	// 5. The catch-up read.
	before, err := scrapeMetrics(ctx, httpAddr)
	if err != nil {
		return res, fail(err)
	}
	phase(fmt.Sprintf("catch-up: consuming %d records from offset 0, all from the tier", w.records))
	b0, m0, c0 = on.procs[0].CPU(), mp.CPU(), selfCPU()
	cons, err := consume(ctx, on.bootstrap, w, pool, onRes.ends, func(s string) { phase("catch-up: " + s) })
	if err != nil {
		return res, fail(fmt.Errorf("catch-up: %w", err))
	}
	res.catchUpBrokerCPU = on.procs[0].CPU() - b0
	res.catchUpMinioCPU, res.catchUpClientCPU = mp.CPU()-m0, selfCPU()-c0
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
	mm, err := mp.Memory()
	if err != nil {
		return res, fail(err)
	}
	res.minioRSS = mm.HWM
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

// startTierMinIO starts `minio server dir/data` on loopback ports, its
// output in dir/minio.log, with the bench's credentials and
// tierBrokerEnv's environment, and returns once it is live.
func startTierMinIO(ctx context.Context, bin, dir string) (*harness.MinIO, error) {
	return harness.StartMinIO(ctx, harness.MinIOConfig{
		Bin:          bin,
		Dir:          filepath.Join(dir, "data"),
		LogPath:      filepath.Join(dir, "minio.log"),
		AccessKey:    tierAccessKey,
		SecretKey:    tierSecretKey,
		Env:          tierBrokerEnv(),
		StartTimeout: startLimit,
	})
}
