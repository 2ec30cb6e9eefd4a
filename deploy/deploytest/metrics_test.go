package deploytest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	dto "github.com/prometheus/client_model/go"

	"github.com/sedimentio/sediment/it/harness"
)

// prometheusSeries are series Prometheus makes itself for every target,
// which the rules may use beside what brokers export.
var prometheusSeries = map[string]bool{"up": true}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"instance": true, "job": true, labels.MetricName: true}

// exported is the series a scrape found, by series name: a histogram
// family F contributes F_bucket (with le), F_sum and F_count, a summary F
// (with quantile), F_sum and F_count.
type exported map[string][]map[string]string

func (e exported) add(families map[string]*dto.MetricFamily) {
	for name, f := range families {
		for _, m := range f.Metric {
			l := map[string]string{}
			for _, lp := range m.Label {
				l[lp.GetName()] = lp.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					e[name+"_bucket"] = append(e[name+"_bucket"], with(l, "le", fmt.Sprint(b.GetUpperBound())))
				}
				e[name+"_sum"] = append(e[name+"_sum"], l)
				e[name+"_count"] = append(e[name+"_count"], l)
			case dto.MetricType_SUMMARY:
				e[name] = append(e[name], with(l, "quantile", "0.5"))
				e[name+"_sum"] = append(e[name+"_sum"], l)
				e[name+"_count"] = append(e[name+"_count"], l)
			default:
				e[name] = append(e[name], l)
			}
		}
	}
}

func with(l map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range l {
		out[lk] = lv
	}
	return out
}

// sum is the total of a counter or gauge over every series of name.
func sumOf(families []map[string]*dto.MetricFamily, name string) float64 {
	var s float64
	for _, fams := range families {
		if f := fams[name]; f != nil {
			for _, m := range f.Metric {
				s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return s
}

// missing returns why the series a selector selects are not among those
// exported ("" when they are): an unknown metric name, a label no series
// of it carries, or an exact label value none has.
func (e exported) missing(name string, matchers []*labels.Matcher) string {
	if prometheusSeries[name] {
		return ""
	}
	series := e[name]
	if len(series) == 0 {
		return fmt.Sprintf("metric %s is not exported", name)
	}
	for _, m := range matchers {
		if targetLabels[m.Name] {
			continue
		}
		if !slices.ContainsFunc(series, func(l map[string]string) bool { _, ok := l[m.Name]; return ok }) {
			return fmt.Sprintf("metric %s has no label %s", name, m.Name)
		}
		if m.Type == labels.MatchEqual && !slices.ContainsFunc(series, func(l map[string]string) bool { return l[m.Name] == m.Value }) {
			return fmt.Sprintf("no series of %s has %s=%q", name, m.Name, m.Value)
		}
	}
	return ""
}

// scrape reads one broker's /metrics.
func scrape(ctx context.Context, addr string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// TestMetricNames: every metric the dashboard and the alert rules use is
// exported by a running cluster of three brokers (etcd quorum, RF=3, a file
// tier) after produce, replication, tier uploads and a consumer reading the
// uploaded history back from the tier, with the labels and label values
// the queries match on.
func TestMetricNames(t *testing.T) {
	var qs []query
	for _, load := range []func() ([]query, error){
		func() ([]query, error) { return dashboardQueries(dashboardPath) },
		func() ([]query, error) { return ruleQueries(alertsPath) },
	} {
		q, err := load()
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q...)
	}

	bin := sedimentBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := harness.StartCluster(ctx, harness.ClusterConfig{
		Bin: bin, Members: 3, Dir: dir,
		Flags: []string{
			"--tier", "file://" + filepath.Join(dir, "tier"),
			"--tier-upload-interval", "200ms",
			"--log-retention-check-interval", "500ms",
			"--default-replication-factor", "3",
			"--min-insync-replicas", "2",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(20 * time.Second); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic("tiered"), kgo.ProducerBatchMaxBytes(8<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seg, local, remote := "16384", "0", "true"
	r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{
		"segment.bytes": &seg, "local.retention.bytes": &local, "remote.storage.enable": &remote}, "tiered")
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating the tiered topic: %v", err)
	}
	const records = 600
	for i := range records {
		v := fmt.Sprintf("%06d-%s", i, strings.Repeat("v", 100))
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}

	// Until the tier has served a consumer from offset 0 and every name
	// the queries use is exported, read the topic back and scrape again.
	var why []string
	giveUp := time.After(90 * time.Second)
	for {
		if err := consumeAll(ctx, c.Addrs(), "tiered", records); err != nil {
			t.Fatal(err)
		}
		var fams []map[string]*dto.MetricFamily
		ex := exported{}
		for _, b := range c.Brokers {
			f, err := scrape(ctx, b.HTTP)
			if err != nil {
				t.Fatalf("broker %d: %v", b.NodeID, err)
			}
			fams = append(fams, f)
			ex.add(f)
		}
		why = why[:0]
		for _, q := range qs {
			vss, err := selectors(q.expr)
			if err != nil {
				t.Fatalf("%s: %v", q.where, err)
			}
			for _, vs := range vss {
				if w := ex.missing(selectorName(vs), vs.LabelMatchers); w != "" {
					why = append(why, fmt.Sprintf("%s: %s", q.where, w))
				}
			}
		}
		remoteBytes := sumOf(fams, "sediment_tier_remote_fetch_bytes_total")
		// The controller alert's premise: exactly one broker says it is
		// the active controller.
		controllers := sumOf(fams, "kafka_controller_kafkacontroller_activecontrollercount")
		if controllers != 1 {
			why = append(why, fmt.Sprintf("kafka_controller_kafkacontroller_activecontrollercount sums to %v over the brokers, want 1", controllers))
		}
		// KIP-405's names count what Sediment's count: the same uploads,
		// and reads from the tier for the consumer.
		if k, s := sumOf(fams, "kafka_server_brokertopicmetrics_remotecopybytes_total"), sumOf(fams, "sediment_tier_remote_copy_bytes_total"); k != s {
			why = append(why, fmt.Sprintf("remotecopybytes_total %v, sediment_tier_remote_copy_bytes_total %v", k, s))
		}
		if remoteBytes > 0 && sumOf(fams, "kafka_server_brokertopicmetrics_remotefetchbytes_total") == 0 {
			why = append(why, "the tier served the consumer but kafka_server_brokertopicmetrics_remotefetchbytes_total is 0")
		}
		if len(why) == 0 && remoteBytes > 0 {
			t.Logf("%d queries, every metric exported; %.0f bytes read back from the tier", len(qs), remoteBytes)
			return
		}
		select {
		case <-giveUp:
			if remoteBytes == 0 {
				why = append(why, "the consumer never read from the tier (sediment_tier_remote_fetch_bytes_total is 0)")
			}
			t.Fatalf("after 90s of traffic, not exported by the brokers:\n%s%s", strings.Join(why, "\n"), c.LogTails())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// consumeAll reads partition 0 of topic from offset 0 up to n records with
// a fresh client, checking that the offsets come back in order.
func consumeAll(ctx context.Context, seeds []string, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for next := int64(0); next < int64(n); {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("consuming %s from offset %d: %w", topic, next, err)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next && bad == nil {
				bad = fmt.Errorf("consumed offset %d, want %d", r.Offset, next)
			}
			next++
		})
		if bad != nil {
			return bad
		}
	}
	return nil
}

// TestExportedMissing: the name check refuses what a broker does not
// export, so TestMetricNames's silence means something.
func TestExportedMissing(t *testing.T) {
	const text = `# TYPE sediment_broker_request_duration_seconds histogram
sediment_broker_request_duration_seconds_bucket{api="Produce",le="0.1"} 1
sediment_broker_request_duration_seconds_bucket{api="Produce",le="+Inf"} 1
sediment_broker_request_duration_seconds_sum{api="Produce"} 0.01
sediment_broker_request_duration_seconds_count{api="Produce"} 1
# TYPE sediment_tier_upload_stalled gauge
sediment_tier_upload_stalled 0
`
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	ex := exported{}
	ex.add(fams)
	for _, tc := range []struct{ expr, want string }{
		{`histogram_quantile(0.99, sum by (le) (rate(sediment_broker_request_duration_seconds_bucket{api="Produce", instance=~"$instance"}[5m])))`, ""},
		{`rate(sediment_broker_request_duration_seconds_sum[5m]) / rate(sediment_broker_request_duration_seconds_count[5m])`, ""},
		{`max(sediment_tier_upload_stalled) == 1`, ""},
		{`up == 0`, ""},
		{`rate(sediment_broker_request_duration_seconds[5m])`, "metric sediment_broker_request_duration_seconds is not exported"},
		{`sediment_tier_upload_stalled_total`, "metric sediment_tier_upload_stalled_total is not exported"},
		{`sediment_broker_request_duration_seconds_count{api="produce"}`, `no series of sediment_broker_request_duration_seconds_count has api="produce"`},
		{`sediment_tier_upload_stalled{topic=~".+"}`, "metric sediment_tier_upload_stalled has no label topic"},
	} {
		vss, err := selectors(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		var got string
		for _, vs := range vss {
			if w := ex.missing(selectorName(vs), vs.LabelMatchers); w != "" && got == "" {
				got = w
			}
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.expr, got, tc.want)
		}
	}
}
