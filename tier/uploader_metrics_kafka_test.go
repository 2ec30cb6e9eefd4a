package tier

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment"
)

// gathered returns the value of every series of name by its label values
// joined with "/" in label name order (partition before topic), from reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			key := ""
			for i, l := range m.Label {
				if i > 0 {
					key += "/"
				}
				key += l.GetValue()
			}
			out[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

func segs(sizes ...int64) []segment.SegmentInfo {
	out := make([]segment.SegmentInfo, len(sizes))
	for i, s := range sizes {
		out[i] = segment.SegmentInfo{Size: s, Sealed: true}
	}
	return out
}

// TestUploaderMetricsKafkaNames: every uploader count reaches Sediment's and
// KIP-405's name alike; Kafka's topic lag is the sum of the partitions'
// lags, follows their changes and loses a partition's share when its
// uploader closes; RemoveTopic deletes every series of the topic and no
// other's.
func TestUploaderMetricsKafkaNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewUploaderMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p0, p1, other := m.series("t", 0), m.series("t", 1), m.series("u", 0)
	p0.copyRequests.Inc()
	p0.copyBytes.Add(100)
	p1.copyRequests.Inc()
	p1.copyBytes.Add(50)
	p1.copyErrors.Inc()
	p0.deleteRequests.Inc()
	p0.deleteErrors.Inc()
	other.copyRequests.Inc()
	for _, pair := range [][2]string{
		{"sediment_tier_remote_copy_requests_total", "kafka_server_brokertopicmetrics_remotecopyrequests_total"},
		{"sediment_tier_remote_copy_bytes_total", "kafka_server_brokertopicmetrics_remotecopybytes_total"},
		{"sediment_tier_remote_copy_errors_total", "kafka_server_brokertopicmetrics_remotecopyerrors_total"},
		{"sediment_tier_remote_delete_requests_total", "kafka_server_brokertopicmetrics_remotedeleterequests_total"},
		{"sediment_tier_remote_delete_errors_total", "kafka_server_brokertopicmetrics_remotedeleteerrors_total"},
	} {
		s, k := gathered(t, reg, pair[0]), gathered(t, reg, pair[1])
		if len(s) == 0 || len(s) != len(k) {
			t.Fatalf("%s %v, %s %v", pair[0], s, pair[1], k)
		}
		for topic, v := range s {
			if k[topic] != v {
				t.Errorf("%s{%s} = %v, %s = %v", pair[0], topic, v, pair[1], k[topic])
			}
		}
	}
	if got := gathered(t, reg, "kafka_server_brokertopicmetrics_remotecopybytes_total"); got["t"] != 150 || got["u"] != 0 {
		t.Errorf("remotecopybytes = %v, want t:150 u:0", got)
	}

	lag := func() (map[string]float64, map[string]float64) {
		return gathered(t, reg, "kafka_server_brokertopicmetrics_remotecopylagbytes"),
			gathered(t, reg, "kafka_server_brokertopicmetrics_remotecopylagsegments")
	}
	p0.setLag(segs(10, 20, 30))
	p1.setLag(segs(5))
	other.setLag(segs(7, 7))
	if b, s := lag(); b["t"] != 65 || s["t"] != 4 || b["u"] != 14 || s["u"] != 2 {
		t.Fatalf("topic lag = %v bytes, %v segments; want t:65/4 u:14/2", b, s)
	}
	if got := gathered(t, reg, "sediment_tier_remote_copy_lag_bytes"); got["0/t"] != 60 || got["1/t"] != 5 {
		t.Fatalf("partition lag = %v", got)
	}
	p0.setLag(segs(30)) // two segments uploaded
	if b, s := lag(); b["t"] != 35 || s["t"] != 2 {
		t.Fatalf("after p0 uploaded two: %v bytes, %v segments; want 35/2", b["t"], s["t"])
	}
	p1.remove() // p1's leadership ended
	if b, s := lag(); b["t"] != 30 || s["t"] != 1 {
		t.Fatalf("after p1's uploader closed: %v bytes, %v segments; want 30/1", b["t"], s["t"])
	}
	if got := gathered(t, reg, "sediment_tier_remote_copy_lag_bytes"); len(got) != 2 || got["0/t"] != 30 {
		t.Fatalf("partition lag after p1 closed = %v", got)
	}

	m.RemoveTopic("t")
	for _, name := range []string{"kafka_server_brokertopicmetrics_remotecopybytes_total", "kafka_server_brokertopicmetrics_remotecopylagbytes",
		"sediment_tier_remote_copy_requests_total", "sediment_tier_remote_copy_lag_bytes"} {
		got := gathered(t, reg, name)
		for k := range got {
			if k == "t" || strings.HasSuffix(k, "/t") {
				t.Errorf("%s{%s} left after RemoveTopic", name, k)
			}
		}
		if len(got) != 1 {
			t.Errorf("%s = %v, want u's series alone", name, got)
		}
	}
}
