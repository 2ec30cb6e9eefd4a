package broker

// Metrics under Kafka's names, as users of Kafka's Prometheus JMX exporter
// (Strimzi's rules, for one) know them: the MBean
// kafka.<domain>:type=<Type>,name=<Name>[,<tag>=<value>] becomes
// kafka_<domain>_<type>_<name> lower-cased, a meter's count ("...PerSec")
// loses "PerSec" and gains "_total", and a tag becomes a label. README's
// "Metrics" lists them all beside Sediment's own.
//
// One deliberate difference: request latency. Kafka's TotalTimeMs is a
// Yammer histogram that the exporter turns into precomputed percentile
// gauges in milliseconds (kafka_network_requestmetrics_totaltimems with a
// quantile label), which cannot be aggregated over brokers. Here it is a
// Prometheus histogram in seconds, kafka_network_requestmetrics_totaltime_seconds
// with Kafka's request label, so histogram_quantile works across brokers.

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

// kafkaRequestNames are Kafka's names (ApiKeys) where kmsg spells an API
// differently; the request label holds Kafka's.
var kafkaRequestNames = map[int16]string{
	4: "LeaderAndIsr", 17: "SaslHandshake", 22: "InitProducerId", 29: "DescribeAcls", 30: "CreateAcls",
	31: "DeleteAcls", 36: "SaslAuthenticate", 45: "AlterPartitionReassignments",
	50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials", 67: "AllocateProducerIds",
}

// kafkaRequestName is Kafka's name of API key k.
func kafkaRequestName(k int16) string {
	if n, ok := kafkaRequestNames[k]; ok {
		return n
	}
	return kmsg.NameForKey(k)
}

// requestMetrics are one API's children of Kafka's RequestMetrics, looked up
// once at startup so that a request costs no label lookup.
type requestMetrics struct {
	total                        prometheus.Observer
	fetchConsumer, fetchFollower prometheus.Observer  // Fetch only
	byVersion                    []prometheus.Counter // from version 0 to the highest served
	fetchByVersion               [2][]prometheus.Counter
}

// kafkaMetrics are the Kafka edge's metrics under Kafka's names.
type kafkaMetrics struct {
	byKey map[int16]*requestMetrics

	// controller is set while this broker is the active controller
	// (controller.go); the controller's gauges read it.
	controller atomic.Bool
}

func newKafkaMetrics(cache *meta.Cache, reg prometheus.Registerer) *kafkaMetrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafka_network_requestmetrics_requests_total",
		Help: "Requests decoded, by Kafka's API name and version; a Fetch is also counted as FetchConsumer or FetchFollower (Kafka's RequestsPerSec).",
	}, []string{"request", "version"})
	totalTime := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kafka_network_requestmetrics_totaltime_seconds",
		Help:    "Time from decoding a request to writing its response, by Kafka's API name; a Fetch is also observed as FetchConsumer or FetchFollower (Kafka's TotalTimeMs, in seconds).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"request"})
	m := &kafkaMetrics{byKey: make(map[int16]*requestMetrics)}
	versions := func(name string, maxV int16) []prometheus.Counter {
		out := make([]prometheus.Counter, maxV+1)
		for v := range out {
			out[v] = requests.WithLabelValues(name, strconv.Itoa(v))
		}
		return out
	}
	for _, a := range registered {
		name := kafkaRequestName(a.key)
		rm := &requestMetrics{total: totalTime.WithLabelValues(name), byVersion: versions(name, a.max)}
		if a.key == fetchKey {
			rm.fetchConsumer = totalTime.WithLabelValues("FetchConsumer")
			rm.fetchFollower = totalTime.WithLabelValues("FetchFollower")
			rm.fetchByVersion = [2][]prometheus.Counter{versions("FetchConsumer", a.max), versions("FetchFollower", a.max)}
		}
		m.byKey[a.key] = rm
	}
	reg.MustRegister(requests, totalTime, controllerCollector{m, cache})
	return m
}

const fetchKey = 1

// fetchFrom reports whether req is a Fetch, and whether a follower's.
func fetchFrom(req kmsg.Request) (fetch, follower bool) {
	f, ok := req.(*kmsg.FetchRequest)
	if !ok {
		return false, false
	}
	if f.Version >= 15 {
		return true, f.ReplicaState.ID >= 0
	}
	return true, f.ReplicaID >= 0
}

// counted counts a decoded request.
func (m *kafkaMetrics) counted(r *request) {
	rm := m.byKey[r.key]
	if rm == nil || r.version < 0 || int(r.version) >= len(rm.byVersion) {
		return
	}
	rm.byVersion[r.version].Inc()
	if fetch, follower := fetchFrom(r.kreq); fetch {
		rm.fetchByVersion[b2i(follower)][r.version].Inc()
	}
}

// answered observes a request's total time once its response is written.
func (m *kafkaMetrics) answered(r *request, d time.Duration) {
	rm := m.byKey[r.key]
	if rm == nil {
		return
	}
	rm.total.Observe(d.Seconds())
	if fetch, follower := fetchFrom(r.kreq); fetch {
		if follower {
			rm.fetchFollower.Observe(d.Seconds())
		} else {
			rm.fetchConsumer.Observe(d.Seconds())
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Kafka's controller gauges (kafka.controller:type=KafkaController). As in
// Kafka, only the active controller reports the cluster-wide counts; every
// other broker reports 0, so sum() over brokers is the cluster's value.
var (
	activeControllerDesc = prometheus.NewDesc("kafka_controller_kafkacontroller_activecontrollercount",
		"1 on the broker that is the active controller, 0 elsewhere: the sum over the cluster's brokers must be 1 (Kafka's ActiveControllerCount).", nil, nil)
	offlinePartitionsDesc = prometheus.NewDesc("kafka_controller_kafkacontroller_offlinepartitionscount",
		"On the active controller: partitions without a live leader; they accept neither produce nor fetch (Kafka's OfflinePartitionsCount).", nil, nil)
	globalTopicsDesc = prometheus.NewDesc("kafka_controller_kafkacontroller_globaltopiccount",
		"On the active controller: topics in the cluster (Kafka's GlobalTopicCount).", nil, nil)
	globalPartitionsDesc = prometheus.NewDesc("kafka_controller_kafkacontroller_globalpartitioncount",
		"On the active controller: partitions in the cluster (Kafka's GlobalPartitionCount).", nil, nil)
)

// controllerCollector computes the controller gauges at scrape time from
// the metadata cache: one pass over the partitions, on the controller only.
type controllerCollector struct {
	m     *kafkaMetrics
	cache *meta.Cache
}

func (c controllerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{activeControllerDesc, offlinePartitionsDesc, globalTopicsDesc, globalPartitionsDesc} {
		ch <- d
	}
}

func (c controllerCollector) Collect(ch chan<- prometheus.Metric) {
	var active, topics, parts, offline int
	if c.m.controller.Load() {
		active = 1
		live := map[int32]bool{}
		for _, b := range c.cache.Brokers() {
			live[b.NodeID] = true
		}
		for _, t := range c.cache.Topics() {
			topics++
			for i := range t.Partitions {
				parts++
				st, ok := c.cache.Partition(t.ID, int32(i))
				if ok && (st.Leader < 0 || !live[st.Leader]) {
					offline++
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(activeControllerDesc, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(offlinePartitionsDesc, prometheus.GaugeValue, float64(offline))
	ch <- prometheus.MustNewConstMetric(globalTopicsDesc, prometheus.GaugeValue, float64(topics))
	ch <- prometheus.MustNewConstMetric(globalPartitionsDesc, prometheus.GaugeValue, float64(parts))
}
