package it

// TestCompose runs deploy/compose.yaml as `make up` does, under a project
// name of its own and on free loopback ports: three brokers (one etcd quorum,
// topics replicated 3 times) tiering to MinIO, Prometheus scraping them. It
// needs the docker compose plugin and the images the file names:
// sediment:latest (make image) and the MinIO and Prometheus images, which
// `make standins` builds FROM scratch where none can be pulled (make test
// does both).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
	"github.com/sedimentio/sediment/tier"
)

// composeBrokers are the broker services of deploy/compose.yaml.
var composeBrokers = []string{"broker-1", "broker-2", "broker-3"}

// composePorts are the variables deploy/compose.yaml publishes its HTTP,
// MinIO and Prometheus ports with; empty, each is a free port that `docker
// compose port` tells. The Kafka ports (BROKER_N_KAFKA_PORT) are also the
// EXTERNAL listeners' advertised ports, so the test picks them.
var composePorts = []string{
	"BROKER_1_HTTP_PORT", "BROKER_2_HTTP_PORT", "BROKER_3_HTTP_PORT",
	"MINIO_PORT", "MINIO_CONSOLE_PORT", "PROMETHEUS_PORT",
}

const (
	composeMinIOUser     = "sediment-it"
	composeMinIOPassword = "sediment-it-secret"
)

// composeOverride shortens what the test waits for: tier uploads every 200ms.
const composeOverride = `services:
  broker-1: &fast
    environment:
      SEDIMENT_TIER_UPLOAD_INTERVAL: 200ms
  broker-2: *fast
  broker-3: *fast
`

// composeStack is one project of deploy/compose.yaml.
type composeStack struct {
	t       *testing.T
	project string
	args    []string // compose, -p, -f...
	env     []string
	kafka   map[string]string // broker service -> 127.0.0.1:port of its EXTERNAL listener
	down    bool
}

// run runs `docker compose ARGS` and returns its stdout; a failure is an
// error carrying stderr.
func (c *composeStack) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append(append([]string{}, c.args...), args...)...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker compose %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// port is host:port published for a service's container port.
func (c *composeStack) port(service string, port int) string {
	c.t.Helper()
	out, err := c.run(testContext(c.t, 30*time.Second), "port", service, fmt.Sprint(port))
	if err != nil {
		c.t.Fatal(err)
	}
	addr := strings.TrimSpace(out)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		c.t.Fatalf("%s's port %d is published on %q, want loopback only", service, port, addr)
	}
	return addr
}

// logs puts the tail of every container's log into the test's output.
func (c *composeStack) logs() {
	out, err := c.run(context.Background(), "logs", "--no-color", "--tail", "60")
	c.t.Logf("docker compose logs (tail):\n%s%v", out, err)
}

// stop brings the project down with its volumes (once) and checks that no
// container, volume or network of it is left.
func (c *composeStack) stop() {
	c.t.Helper()
	if c.down {
		return
	}
	c.down = true
	ctx := testContext(c.t, 2*time.Minute)
	label := "label=com.docker.compose.project=" + c.project
	// The volumes the containers mount: anonymous ones carry no project label.
	var volumes []string
	if out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", label).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		args := append([]string{"inspect", "--format", `{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}`}, strings.Fields(string(out))...)
		if out, err := exec.CommandContext(ctx, "docker", args...).Output(); err == nil {
			volumes = strings.Fields(string(out))
		}
	}
	if out, err := c.run(ctx, "down", "--volumes", "--remove-orphans", "--timeout", "20"); err != nil {
		c.t.Errorf("%v\n%s", err, out)
	}
	for _, v := range volumes {
		if exec.CommandContext(ctx, "docker", "volume", "inspect", v).Run() == nil {
			c.t.Errorf("after docker compose down, volume %s is left", v)
			exec.Command("docker", "volume", "rm", "-f", v).Run()
		}
	}
	for _, kind := range [][]string{{"ps", "-a"}, {"volume", "ls"}, {"network", "ls"}} {
		args := append(append([]string{}, kind...), "-q", "--filter", label)
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			c.t.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
		} else if left := strings.Fields(string(out)); len(left) > 0 {
			c.t.Errorf("after docker compose down, docker %s still lists %q", strings.Join(kind, " "), left)
			if kind[0] == "ps" {
				exec.Command("docker", append([]string{"rm", "-f", "-v"}, left...)...).Run()
			}
		}
	}
}

// startCompose checks what the stack needs (missing: harness.Missing) and
// brings it up, waiting until every service is running and every broker
// healthy; t's cleanup brings it down.
func startCompose(t *testing.T) *composeStack {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		harness.Missing(t, "no Docker engine (docker info: %v: %s)", err, out)
	}
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		harness.Missing(t, "no docker compose plugin (%v: %s); install it with `make compose-deps`", err, out)
	}
	file, err := filepath.Abs(filepath.Join("..", "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	override := filepath.Join(t.TempDir(), "compose.test.yaml")
	if err := os.WriteFile(override, []byte(composeOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 4)
	rand.Read(id)
	c := &composeStack{t: t, project: "sediment-it-" + hex.EncodeToString(id)}
	c.args = []string{"compose", "-p", c.project, "-f", file, "-f", override}
	c.env = append(os.Environ(), "MINIO_ROOT_USER="+composeMinIOUser, "MINIO_ROOT_PASSWORD="+composeMinIOPassword)
	for _, v := range composePorts {
		c.env = append(c.env, v+"=")
	}
	c.kafka = map[string]string{}
	for i, b := range composeBrokers {
		addr, err := harness.StableAddr()
		for err == nil && slices.Contains(slices.Collect(maps.Values(c.kafka)), addr) {
			addr, err = harness.StableAddr()
		}
		if err != nil {
			t.Fatal(err)
		}
		c.kafka[b] = addr
		_, port, _ := strings.Cut(addr, ":")
		c.env = append(c.env, fmt.Sprintf("BROKER_%d_KAFKA_PORT=%s", i+1, port))
	}

	out, err := c.run(testContext(t, 30*time.Second), "config", "--images")
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range strings.Fields(out) {
		if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", img).CombinedOutput(); err != nil {
			harness.Missing(t, "image %s not found (%v: %s); build it with `make image standins`", img, err, out)
		}
	}

	t.Cleanup(c.stop)
	start := time.Now()
	if _, err := c.run(testContext(t, 5*time.Minute), "up", "--detach", "--wait", "--wait-timeout", "240"); err != nil {
		c.logs()
		t.Fatal(err)
	}
	t.Logf("docker compose up --wait (project %s): %v", c.project, time.Since(start).Round(time.Millisecond))
	return c
}

func TestCompose(t *testing.T) {
	c := startCompose(t)
	defer func() {
		if t.Failed() {
			c.logs()
		}
	}()

	// Every broker's healthcheck (sediment healthcheck: /readyz) passes.
	for _, b := range composeBrokers {
		out, err := c.run(testContext(t, 30*time.Second), "ps", "--quiet", b)
		if err != nil {
			t.Fatal(err)
		}
		health, err := exec.Command("docker", "inspect", "--format", "{{.State.Health.Status}}", strings.TrimSpace(out)).CombinedOutput()
		if err != nil || strings.TrimSpace(string(health)) != "healthy" {
			t.Errorf("%s: health %q (%v), want healthy", b, bytes.TrimSpace(health), err)
		}
	}

	// Each broker's EXTERNAL listener is published where it advertises it.
	seeds := c.kafka
	for _, b := range composeBrokers {
		if got := c.port(b, 19092); got != seeds[b] {
			t.Fatalf("%s's EXTERNAL listener is published on %s, want %s", b, got, seeds[b])
		}
	}

	// A tiered topic replicated on all three brokers, with segments small
	// enough that the records below roll a dozen per partition.
	const topic, partitions, perBroker = "compose-tiered", 3, 300
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds["broker-1"]))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx := testContext(t, 30*time.Second)
	// Clients on the host learn only loopback addresses: broker N at the
	// port published for broker-N.
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) != len(composeBrokers) {
		t.Fatalf("brokers %v (%v), want 3", brokers, err)
	}
	for _, b := range brokers {
		if want := seeds[fmt.Sprintf("broker-%d", b.NodeID)]; fmt.Sprintf("%s:%d", b.Host, b.Port) != want {
			t.Errorf("broker %d advertises %s:%d to the host, want %s", b.NodeID, b.Host, b.Port, want)
		}
	}
	segBytes := "16384"
	if r, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"segment.bytes": &segBytes}, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	waitTopic(t, adm, topic, partitions)

	// Produce through each broker alone (acks=all), then consume the whole
	// topic through each.
	pad := strings.Repeat("x", 512)
	for i, b := range composeBrokers {
		// Uncompressed batches of at most 8 KiB: each fits a segment, and
		// the partitions roll segments that the leaders then upload.
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds[b]), kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(8<<10))
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, perBroker)
		for n := range recs {
			recs[n] = &kgo.Record{Key: fmt.Appendf(nil, "%s-%04d", b, n), Value: []byte(pad), Partition: int32(n % partitions)}
		}
		err = cl.ProduceSync(testContext(t, time.Minute), recs...).FirstErr()
		cl.Close()
		if err != nil {
			t.Fatalf("producing through %s (seed %s, broker %d): %v", b, seeds[b], i+1, err)
		}
	}
	for _, b := range composeBrokers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds[b]), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		ctx := testContext(t, time.Minute)
		for len(seen) < perBroker*len(composeBrokers) && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(tp string, p int32, err error) {
				if ctx.Err() == nil {
					t.Errorf("consuming through %s: %s[%d]: %v", b, tp, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
		}
		cl.Close()
		for _, from := range composeBrokers {
			for n := range perBroker {
				if k := fmt.Sprintf("%s-%04d", from, n); !seen[k] {
					t.Fatalf("consuming through %s: %d of %d records; record %s missing", b, len(seen), perBroker*len(composeBrokers), k)
				}
			}
		}
	}

	// Containers on the project's network use the INTERNAL listeners.
	out, err := exec.CommandContext(testContext(t, time.Minute), "docker", "run", "--rm", "--network", c.project+"_default",
		"--entrypoint", "/sediment", "sediment:latest", "topic", "describe", topic, "--bootstrap-server", "broker-3:9092").CombinedOutput()
	if err != nil || !strings.Contains(string(out), topic) {
		t.Errorf("sediment topic describe from a container on the network: %v\n%s", err, out)
	}

	checkComposeTier(t, c, adm, topic, partitions)
	checkComposePrometheus(t, c)

	c.stop()
}

// checkComposeTier waits until MinIO's bucket "sediment" (created by the
// brokers) holds uploaded segments of every partition of topic, under the
// tier URL's prefix.
func checkComposeTier(t *testing.T, c *composeStack, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	tid := topicIDText(t, adm, topic)
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + c.port("minio", 9000)), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(composeMinIOUser, composeMinIOPassword, ""),
	})
	ctx := testContext(t, time.Minute)
	var last string
	for {
		logs := map[int32]int{}
		resp, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("sediment"), Prefix: aws.String("tier/")})
		if err == nil {
			for _, o := range resp.Contents {
				key := strings.TrimPrefix(aws.ToString(o.Key), "tier/")
				if strings.HasPrefix(key, "manifests/") {
					continue
				}
				id, p, _, _, _, kind, err := tier.ParseObjectKey(key)
				if err != nil {
					t.Fatalf("object %q in the bucket: %v", aws.ToString(o.Key), err)
				}
				if id == tid && kind == "log" {
					logs[p]++
				}
			}
			if len(logs) == int(partitions) {
				t.Logf("segments of %s in MinIO per partition: %v", topic, logs)
				return
			}
			last = fmt.Sprintf(".log objects per partition %v", logs)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no uploaded segment of every partition of %s in MinIO: %s", topic, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkComposePrometheus waits until Prometheus's HTTP API reports the three
// brokers as up targets, and checks that it loaded the rules of alerts.yml.
func checkComposePrometheus(t *testing.T, c *composeStack) {
	t.Helper()
	base := "http://" + c.port("prometheus", 9090)
	ctx := testContext(t, time.Minute)
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	var last string
	for {
		err := getJSON(ctx, base+"/api/v1/targets?state=active", &targets)
		if err == nil {
			up := map[string]bool{}
			var states []string
			for _, tg := range targets.Data.ActiveTargets {
				states = append(states, fmt.Sprintf("%s=%s %s", tg.Labels["instance"], tg.Health, tg.LastError))
				if tg.Labels["job"] == "sediment" && tg.Health == "up" {
					up[tg.Labels["instance"]] = true
				}
			}
			if len(up) == len(composeBrokers) && up["broker-1:9644"] && up["broker-2:9644"] && up["broker-3:9644"] {
				break
			}
			last = strings.Join(states, "; ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus does not report the three brokers up: %s", last)
		case <-time.After(500 * time.Millisecond):
		}
	}

	var rules struct {
		Data struct {
			Groups []struct {
				Name  string            `json:"name"`
				File  string            `json:"file"`
				Rules []json.RawMessage `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(ctx, base+"/api/v1/rules", &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Data.Groups {
		if filepath.Base(g.File) == "alerts.yml" {
			n += len(g.Rules)
		}
	}
	if n == 0 {
		t.Fatalf("Prometheus loaded no rule from alerts.yml: %+v", rules.Data.Groups)
	}
	t.Logf("Prometheus: 3 targets up, %d rules from alerts.yml", n)
}

// getJSON decodes a 200 answer of url into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
