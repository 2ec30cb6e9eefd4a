package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The JSON of the topic, offsets, cluster and log-dirs commands as README
// documents it, spelled out here rather than taken from the command's own
// types, so that a renamed field fails the test.
type (
	topicsJSON struct {
		Topics []struct {
			Topic             string `json:"topic"`
			TopicID           string `json:"topic_id"`
			Created           bool   `json:"created"`
			Deleted           bool   `json:"deleted"`
			Altered           bool   `json:"altered"`
			Internal          bool   `json:"internal"`
			ReplicationFactor int    `json:"replication_factor"`
			Partitions        json.RawMessage
			Configs           []struct {
				Name   string  `json:"name"`
				Value  *string `json:"value"`
				Source string  `json:"source"`
			} `json:"configs"`
			Error        string `json:"error"`
			ErrorMessage string `json:"error_message"`
		} `json:"topics"`
	}
	describedPartitionsJSON []struct {
		Partition int32   `json:"partition"`
		Leader    int32   `json:"leader"`
		Replicas  []int32 `json:"replicas"`
		ISR       []int32 `json:"isr"`
	}
	offsetsJSON struct {
		Partitions []struct {
			Topic               string `json:"topic"`
			Partition           int32  `json:"partition"`
			Leader              int32  `json:"leader"`
			LogStartOffset      *int64 `json:"log_start_offset"`
			LocalLogStartOffset *int64 `json:"local_log_start_offset"`
			LastTieredOffset    *int64 `json:"last_tiered_offset"`
			HighWatermark       *int64 `json:"high_watermark"`
			LastStableOffset    *int64 `json:"last_stable_offset"`
			Error               string `json:"error"`
		} `json:"partitions"`
	}
	clusterDescribeJSON struct {
		ClusterID  string `json:"cluster_id"`
		Controller int32  `json:"controller"`
		Brokers    []struct {
			NodeID int32  `json:"node_id"`
			Host   string `json:"host"`
			Port   int32  `json:"port"`
		} `json:"brokers"`
		Topics          int  `json:"topics"`
		Partitions      int  `json:"partitions"`
		UnderReplicated *int `json:"under_replicated_partitions"`
		Offline         *int `json:"offline_partitions"`
	}
	logDirsJSON struct {
		LogDirs []struct {
			Broker      int32  `json:"broker"`
			Dir         string `json:"dir"`
			TotalBytes  int64  `json:"total_bytes"`
			UsableBytes int64  `json:"usable_bytes"`
			SizeBytes   int64  `json:"size_bytes"`
			Partitions  []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				SizeBytes int64  `json:"size_bytes"`
			} `json:"partitions"`
			Error string `json:"error"`
		} `json:"log_dirs"`
	}
)

// TestAdminCLI runs topic, offsets, cluster and log-dirs against a broker
// started from a --config file that mixes Kafka's server.properties names
// with Sediment's flag names: topics take the file's num.partitions and
// log.retention.hours; a tiered topic's history leaves the local disk and
// offsets shows the local log start and the last tiered offset apart from
// the log start; every refusal names the topic, the broker and Kafka's
// error, with exit 1; a wrong command line is exit 2.
func TestAdminCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "server.properties")
	props := "# Kafka's names\nnum.partitions=2\nlog.retention.hours=1\nauto.create.topics.enable=false\n" +
		"log.retention.check.interval.ms=200\nnum.io.threads=8\n" +
		"# Sediment's\ntier=file://" + filepath.Join(dir, "tier") + "\ntier-upload-interval: 100ms\nlog-level warn\n"
	if err := os.WriteFile(cfg, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startBroker(t, "--config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	run := cliAt(t, addr)
	decode := func(stdout string, v any) { t.Helper(); decodeJSON(t, stdout, v) }
	// refused checks a refusal's message: the topic, the broker, the error.
	refused := func(stderr, item, kafkaErr string) {
		t.Helper()
		for _, w := range []string{item, "broker 1 (" + addr + ")", kafkaErr} {
			if !strings.Contains(stderr, w) {
				t.Fatalf("stderr %q lacks %q", stderr, w)
			}
		}
	}

	// create: the broker's num.partitions (2, from the file) by default.
	var tj topicsJSON
	decode(first(run(0, "topic", "create", "orders", "--output", "json")), &tj)
	if len(tj.Topics) != 1 || !tj.Topics[0].Created || string(tj.Topics[0].Partitions) != "2" || tj.Topics[0].ReplicationFactor != 1 || tj.Topics[0].TopicID == "" {
		t.Fatalf("create orders: %+v", tj)
	}
	_, stderr := run(1, "topic", "create", "orders")
	refused(stderr, "topic orders", "TOPIC_ALREADY_EXISTS")
	tj = topicsJSON{}
	decode(first(run(0, "topic", "create", "orders", "--if-not-exists", "--output", "json")), &tj)
	if len(tj.Topics) != 1 || tj.Topics[0].Created || tj.Topics[0].Error != "" {
		t.Fatalf("create --if-not-exists of an existing topic: %+v", tj)
	}
	if out := first(run(0, "topic", "create", "tiered", "--partitions", "1", "--config", "segment.bytes=4096")); !strings.Contains(out, "tiered") || !strings.Contains(out, "created") {
		t.Fatalf("create table:\n%s", out)
	}

	// list and describe.
	tj = topicsJSON{}
	decode(first(run(0, "topic", "list", "--output", "json")), &tj)
	if len(tj.Topics) != 2 || tj.Topics[0].Topic != "orders" || string(tj.Topics[0].Partitions) != "2" || tj.Topics[1].Topic != "tiered" {
		t.Fatalf("list: %+v", tj)
	}
	describe := func(topic string) (parts describedPartitionsJSON, configs map[string]string, sources map[string]string) {
		t.Helper()
		var d topicsJSON
		decode(first(run(0, "topic", "describe", topic, "--output", "json")), &d)
		if len(d.Topics) != 1 || d.Topics[0].Topic != topic || d.Topics[0].Error != "" {
			t.Fatalf("describe %s: %+v", topic, d)
		}
		decode(string(d.Topics[0].Partitions), &parts)
		configs, sources = map[string]string{}, map[string]string{}
		for _, c := range d.Topics[0].Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
			sources[c.Name] = c.Source
		}
		return parts, configs, sources
	}
	parts, configs, sources := describe("orders")
	if len(parts) != 2 || parts[1].Partition != 1 || parts[1].Leader != 1 || len(parts[1].ISR) != 1 || configs["retention.ms"] != "3600000" || sources["retention.ms"] == "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("describe orders: partitions %+v, retention.ms %q from %s (want the file's log.retention.hours=1 as the broker default)", parts, configs["retention.ms"], sources["retention.ms"])
	}
	if out := first(run(0, "topic", "describe", "tiered")); !strings.Contains(out, "segment.bytes=4096") || !strings.Contains(out, "LEADER-EPOCH") {
		t.Fatalf("describe table:\n%s", out)
	}
	stdout, stderr := run(1, "topic", "describe", "orders", "nope", "--output", "json")
	tj = topicsJSON{}
	decode(stdout, &tj)
	if len(tj.Topics) != 2 || tj.Topics[1].Error != "UNKNOWN_TOPIC_OR_PARTITION" || !strings.Contains(stderr, "1 of 2 topics not described") || !strings.Contains(stderr, "topic nope") {
		t.Fatalf("describe of a missing topic: %+v\n%s", tj, stderr)
	}

	// alter: grow, set and delete configs; shrinking is refused.
	tj = topicsJSON{}
	decode(first(run(0, "topic", "alter", "orders", "--partitions", "3", "--config", "retention.ms=1000", "--config", "cleanup.policy=delete", "--output", "json")), &tj)
	if len(tj.Topics) != 1 || !tj.Topics[0].Altered || string(tj.Topics[0].Partitions) != "3" {
		t.Fatalf("alter: %+v", tj)
	}
	parts, configs, sources = describe("orders")
	if len(parts) != 3 || configs["retention.ms"] != "1000" || sources["retention.ms"] != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("after alter: %d partitions, retention.ms %s from %s", len(parts), configs["retention.ms"], sources["retention.ms"])
	}
	run(0, "topic", "alter", "orders", "--delete-config", "retention.ms,cleanup.policy")
	if _, configs, _ = describe("orders"); configs["retention.ms"] != "3600000" {
		t.Fatalf("retention.ms after --delete-config: %s", configs["retention.ms"])
	}
	_, stderr = run(1, "topic", "alter", "orders", "--partitions", "1")
	refused(stderr, "topic orders partitions", "INVALID_PARTITIONS")
	_, stderr = run(1, "topic", "alter", "orders", "--config", "retention.ms=soon")
	refused(stderr, "topic orders configs", "INVALID_CONFIG")

	// cluster describe.
	var cj clusterDescribeJSON
	decode(first(run(0, "cluster", "describe", "--output", "json")), &cj)
	if cj.ClusterID == "" || cj.Controller != 1 || len(cj.Brokers) != 1 || cj.Brokers[0].NodeID != 1 || cj.Topics != 2 || cj.Partitions != 4 ||
		cj.UnderReplicated == nil || *cj.UnderReplicated != 0 || cj.Offline == nil || *cj.Offline != 0 {
		t.Fatalf("cluster describe: %+v", cj)
	}
	if out := first(run(0, "cluster", "describe")); !strings.Contains(out, cj.ClusterID) || !strings.Contains(out, "Controller:  1") {
		t.Fatalf("cluster describe table:\n%s", out)
	}

	// offsets: the tiered topic's history moves to the tier and leaves the
	// disk; the local log start and the last tiered offset show it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("tiered"), kgo.ProducerBatchMaxBytes(2048))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 300 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("x", 100))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	run(0, "topic", "alter", "tiered", "--config", "local.retention.bytes=0")
	var oj offsetsJSON
	for deadline := time.Now().Add(30 * time.Second); ; {
		oj = offsetsJSON{}
		decode(first(run(0, "offsets", "tiered", "--output", "json")), &oj)
		p := oj.Partitions[0]
		if len(oj.Partitions) != 1 || p.Error != "" || *p.LogStartOffset != 0 || *p.HighWatermark != 300 || *p.LastStableOffset != 300 {
			t.Fatalf("offsets tiered: %+v", oj)
		}
		if *p.LocalLogStartOffset > 0 && p.LastTieredOffset != nil && *p.LastTieredOffset == *p.LocalLogStartOffset-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history did not leave the disk: local log start %d, last tiered %v", *p.LocalLogStartOffset, p.LastTieredOffset)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := first(run(0, "offsets", "tiered")); !strings.Contains(out, "LOCAL-LOG-START") || !strings.Contains(out, "LAST-TIERED") {
		t.Fatalf("offsets table:\n%s", out)
	}
	oj = offsetsJSON{}
	decode(first(run(0, "offsets", "orders:2,0", "--output", "json")), &oj)
	if len(oj.Partitions) != 2 || oj.Partitions[0].Partition != 2 || oj.Partitions[0].LastTieredOffset != nil || *oj.Partitions[0].HighWatermark != 0 || oj.Partitions[1].Leader != 1 {
		t.Fatalf("offsets orders:2,0: %+v", oj)
	}
	_, stderr = run(1, "offsets", "nope")
	if !strings.Contains(stderr, "topic nope") || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("offsets of a missing topic: %s", stderr)
	}
	_, stderr = run(1, "offsets", "orders:7")
	if !strings.Contains(stderr, "orders[7]") || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("offsets of a missing partition: %s", stderr)
	}

	// log-dirs: the one data directory with each partition's local size.
	var lj logDirsJSON
	decode(first(run(0, "log-dirs", "--output", "json")), &lj)
	if len(lj.LogDirs) != 1 || lj.LogDirs[0].Broker != 1 || lj.LogDirs[0].TotalBytes <= 0 || lj.LogDirs[0].UsableBytes <= 0 || !filepath.IsAbs(lj.LogDirs[0].Dir) {
		t.Fatalf("log-dirs: %+v", lj)
	}
	sizes := map[string]int64{}
	for _, p := range lj.LogDirs[0].Partitions {
		sizes[fmt.Sprintf("%s:%d", p.Topic, p.Partition)] = p.SizeBytes
	}
	if _, ok := sizes["orders:2"]; !ok || sizes["tiered:0"] <= 0 || sizes["tiered:0"] >= 300*100 {
		t.Fatalf("log-dirs partition sizes %v: want orders' three and tiered:0's local tail only", sizes)
	}
	lj = logDirsJSON{}
	decode(first(run(0, "log-dirs", "tiered", "--broker", "1", "--output", "json")), &lj)
	if len(lj.LogDirs) != 1 || len(lj.LogDirs[0].Partitions) != 1 || lj.LogDirs[0].Partitions[0].Topic != "tiered" || lj.LogDirs[0].SizeBytes != sizes["tiered:0"] {
		t.Fatalf("log-dirs tiered --broker 1: %+v", lj)
	}
	if out := first(run(0, "log-dirs")); !strings.Contains(out, lj.LogDirs[0].Dir) || !strings.Contains(out, "OFFSET-LAG") {
		t.Fatalf("log-dirs table:\n%s", out)
	}
	if _, stderr = run(1, "log-dirs", "--broker", "9"); !strings.Contains(stderr, "broker 9") {
		t.Fatalf("log-dirs --broker 9: %s", stderr)
	}

	// delete.
	tj = topicsJSON{}
	decode(first(run(0, "topic", "delete", "orders", "--output", "json")), &tj)
	if len(tj.Topics) != 1 || !tj.Topics[0].Deleted {
		t.Fatalf("delete: %+v", tj)
	}
	_, stderr = run(1, "topic", "delete", "orders")
	refused(stderr, "topic orders", "UNKNOWN_TOPIC_OR_PARTITION")
	if out := first(run(0, "topic", "delete", "orders", "--if-exists")); !strings.Contains(out, "did not exist") {
		t.Fatalf("delete --if-exists:\n%s", out)
	}
	tj = topicsJSON{}
	decode(first(run(0, "topic", "list", "--exclude-internal", "--output", "json")), &tj)
	if len(tj.Topics) != 1 || tj.Topics[0].Topic != "tiered" {
		t.Fatalf("list after delete: %+v", tj)
	}

	for _, args := range [][]string{
		{"topic", "create"}, {"topic", "create", "x", "--partitions", "0"}, {"topic", "create", "x", "--replication-factor", "-2"},
		{"topic", "create", "x", "--config", "retention.ms"}, {"topic", "alter", "orders"}, {"topic", "alter", "x", "--config", "a=1", "--delete-config", "a"},
		{"topic", "list", "extra"}, {"topic", "describe"}, {"topic", "delete"}, {"offsets"}, {"offsets", "t:x"},
		{"log-dirs", "--broker", "x"}, {"cluster", "describe", "extra"}, {"cluster"},
	} {
		run(2, args...)
	}
}

// TestAdminCLIHelp: the new commands are in the usage and answer --help.
func TestAdminCLIHelp(t *testing.T) {
	stdout, _, code := cli(t, "help")
	for _, w := range []string{"sediment topic <verb>", "sediment offsets TOPIC", "sediment cluster describe", "sediment log-dirs", "server.properties"} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("help: exit %d, %q missing", code, w)
		}
	}
	for args, want := range map[string]string{
		"topic --help":            "sediment topic create TOPIC...",
		"topic create --help":     "-replication-factor",
		"offsets --help":          "local log start",
		"offsets help":            "-bootstrap-server",
		"log-dirs --help":         "-broker",
		"help offsets":            "TOPIC[:P,...]",
		"cluster describe --help": "-output",
	} {
		stdout, stderr, code := cli(t, strings.Fields(args)...)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("%s: exit %d, %q missing from %q (stderr %q)", args, code, want, stdout, stderr)
		}
	}
}

// cliAt returns a runner of command lines against the broker at addr that
// fails the test unless the exit code is want.
func cliAt(t *testing.T, addr string) func(want int, args ...string) (stdout, stderr string) {
	return func(want int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := cli(t, append(args, "--bootstrap-server", addr)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
		}
		return stdout, stderr
	}
}

// decodeJSON decodes a command's JSON output into v.
func decodeJSON(t *testing.T, stdout string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("%v in %s", err, stdout)
	}
}

// TestErrorsNameTheBroker: kadm's shard errors become one line per broker,
// by name; an item's error names the item, the broker and Kafka's error,
// prefers the broker's message, and still unwraps to the Kafka error.
func TestErrorsNameTheBroker(t *testing.T) {
	se := &kadm.ShardErrors{Name: "ListOffsets", Errs: []kadm.ShardError{
		{Broker: kgo.BrokerMetadata{NodeID: 2, Host: "h2", Port: 9092}, Err: kerr.NotLeaderForPartition},
		{Broker: kgo.BrokerMetadata{NodeID: -1}, Err: kerr.UnknownTopicOrPartition},
	}}
	err := namedShards(fmt.Errorf("listing: %w", se))
	if s := err.Error(); !strings.Contains(s, "ListOffsets: broker 2 (h2:9092): NOT_LEADER_FOR_PARTITION") || !strings.Contains(s, "ListOffsets: no broker: UNKNOWN_TOPIC_OR_PARTITION") ||
		!errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("%v", err)
	}
	if err := namedShards(kerr.InvalidConfig); err != kerr.InvalidConfig {
		t.Fatalf("a plain error changed: %v", err)
	}
	msg := "retention.ms: not a number"
	err = kafkaItemError("topic t configs", "broker 1 (h:1)", kerr.InvalidConfig.Code, &msg)
	if err.Error() != "topic t configs: broker 1 (h:1): INVALID_CONFIG: retention.ms: not a number" || !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("%v", err)
	}
	if name, m := errorFields(err); name != "INVALID_CONFIG" || m != msg {
		t.Fatalf("JSON fields %q %q", name, m)
	}
	if name, m := errorFields(&itemError{item: "x", err: kerr.UnknownTopicOrPartition}); name != "UNKNOWN_TOPIC_OR_PARTITION" || m != kerr.UnknownTopicOrPartition.Description {
		t.Fatalf("JSON fields without a message: %q %q", name, m)
	}
	if kafkaItemError("t", "b", 0, nil) != nil {
		t.Fatal("no error code, yet an error")
	}
}
