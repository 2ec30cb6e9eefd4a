package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// tierProduce creates w.topic with configs on in and runs the workload's
// produce and end-offset check.
func tierProduce(ctx context.Context, in *instance, w workloadConfig, configs map[string]*string, pool *valuePool, phase func(string)) (produced, error) {
	var cfgs []string
	for k, v := range configs {
		cfgs = append(cfgs, k+"="+*v)
	}
	slices.Sort(cfgs)
	phase(fmt.Sprintf("creating topic %s (%s)", w.topic, strings.Join(cfgs, ", ")))
	if err := createTopicWith(ctx, in.bootstrap, w, configs); err != nil {
		return produced{}, fmt.Errorf("creating topic: %w", err)
	}
	return produceChecked(ctx, in.bootstrap, w, pool, phase)
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
	b0 := in.procs[0].CPU()
	cons, err := consume(ctx, in.bootstrap, w, pool, ends, phase)
	if err != nil {
		return phaseResult{}, 0, fmt.Errorf("local read: %w", err)
	}
	return phaseResult{records: cons.records, bytes: logBytes, elapsed: cons.elapsed}, in.procs[0].CPU() - b0, nil
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
// (target.go), plus --log-retention-check-interval, --tier-upload-interval
// and, unless tierURL is empty, --tier, with env as its environment (nil:
// harness.Environ). It returns the instance and the broker's HTTP address
// (metrics, pprof).
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

// tierBrokerEnv is harness.Environ (no SEDIMENT_*) without the user's AWS settings (a profile, a
// session token or an endpoint override would change what the broker talks
// to, or break its signatures) plus the bench MinIO's credentials.
func tierBrokerEnv() []string {
	var env []string
	for _, kv := range harness.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ACCESS_KEY_ID="+tierAccessKey, "AWS_SECRET_ACCESS_KEY="+tierSecretKey)
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
