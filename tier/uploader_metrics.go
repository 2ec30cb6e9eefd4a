package tier

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sedimentio/sediment/segment"
)

// UploaderMetrics are the uploaders' Prometheus metrics, shared by every partition's
// uploader, each twice: under Sediment's names and under the names KIP-405 gives them in
// Kafka's BrokerTopicMetrics, as Kafka's Prometheus JMX exporter rules spell them
// (RemoteCopyBytesPerSec becomes kafka_server_brokertopicmetrics_remotecopybytes_total).
// Kafka's lag gauges are per topic, the sum over the topic's partitions this broker leads.
// Safe for concurrent use.
type UploaderMetrics struct {
	copyBytes      *prometheus.CounterVec
	copyRequests   *prometheus.CounterVec
	copyErrors     *prometheus.CounterVec
	copyLagBytes   *prometheus.GaugeVec
	copyLagSegs    *prometheus.GaugeVec
	deleteRequests *prometheus.CounterVec
	deleteErrors   *prometheus.CounterVec
	deleteBytes    *prometheus.CounterVec

	kCopyBytes, kCopyRequests, kCopyErrors *prometheus.CounterVec
	kDeleteRequests, kDeleteErrors         *prometheus.CounterVec
	kCopyLagBytes, kCopyLagSegs            *prometheus.GaugeVec
}

// NewUploaderMetrics creates the metrics and registers them on reg (nil: not registered).
// Call it once per registry; all uploaders share the result.
//
//	sediment_tier_remote_copy_bytes_total{topic}        bytes put to object storage (all objects)
//	sediment_tier_remote_copy_requests_total{topic}     segment uploads started
//	sediment_tier_remote_copy_errors_total{topic}       segment uploads that failed
//	sediment_tier_remote_copy_lag_bytes{topic,partition}    bytes of segments eligible but not yet copied
//	sediment_tier_remote_copy_lag_segments{topic,partition} segments eligible but not yet copied
//	sediment_tier_remote_delete_requests_total{topic}   remote segment deletions started
//	sediment_tier_remote_delete_errors_total{topic}     remote segment deletions that failed
//	sediment_tier_remote_delete_bytes_total{topic}      segment bytes of finished copies deleted (retention)
//
// and Kafka's kafka_server_brokertopicmetrics_ remotecopybytes_total, remotecopyrequests_total,
// remotecopyerrors_total, remotedeleterequests_total, remotedeleteerrors_total,
// remotecopylagbytes and remotecopylagsegments, all by topic.
func NewUploaderMetrics(reg prometheus.Registerer) (*UploaderMetrics, error) {
	m := newUploaderMetrics()
	if reg == nil {
		return m, nil
	}
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("tier: registering uploader metrics: %w", err)
		}
	}
	return m, nil
}

func (m *UploaderMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.copyBytes, m.copyRequests, m.copyErrors, m.copyLagBytes, m.copyLagSegs, m.deleteRequests, m.deleteErrors, m.deleteBytes,
		m.kCopyBytes, m.kCopyRequests, m.kCopyErrors, m.kDeleteRequests, m.kDeleteErrors, m.kCopyLagBytes, m.kCopyLagSegs}
}

func newUploaderMetrics() *UploaderMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sediment", Subsystem: "tier", Name: name, Help: help}, []string{"topic"})
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sediment", Subsystem: "tier", Name: name, Help: help}, []string{"topic", "partition"})
	}
	kafkaCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kafka_server_brokertopicmetrics_" + name, Help: help}, []string{"topic"})
	}
	kafkaGauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kafka_server_brokertopicmetrics_" + name, Help: help}, []string{"topic"})
	}
	return &UploaderMetrics{
		copyBytes:      counter("remote_copy_bytes_total", "Bytes uploaded to object storage."),
		copyRequests:   counter("remote_copy_requests_total", "Segment uploads started."),
		copyErrors:     counter("remote_copy_errors_total", "Segment uploads that failed."),
		copyLagBytes:   gauge("remote_copy_lag_bytes", "Bytes of sealed segments below the high watermark not yet uploaded."),
		copyLagSegs:    gauge("remote_copy_lag_segments", "Sealed segments below the high watermark not yet uploaded."),
		deleteRequests: counter("remote_delete_requests_total", "Remote segment deletions started."),
		deleteErrors:   counter("remote_delete_errors_total", "Remote segment deletions that failed."),
		deleteBytes:    counter("remote_delete_bytes_total", "Segment bytes of finished copies deleted from object storage (retention, DeleteRecords)."),

		kCopyBytes:      kafkaCounter("remotecopybytes_total", "Bytes uploaded to object storage: segments, their indexes and manifests (Kafka's RemoteCopyBytesPerSec)."),
		kCopyRequests:   kafkaCounter("remotecopyrequests_total", "Segment uploads started (Kafka's RemoteCopyRequestsPerSec)."),
		kCopyErrors:     kafkaCounter("remotecopyerrors_total", "Segment uploads that failed (Kafka's RemoteCopyErrorsPerSec)."),
		kDeleteRequests: kafkaCounter("remotedeleterequests_total", "Remote segment deletions started (Kafka's RemoteDeleteRequestsPerSec)."),
		kDeleteErrors:   kafkaCounter("remotedeleteerrors_total", "Remote segment deletions that failed (Kafka's RemoteDeleteErrorsPerSec)."),
		kCopyLagBytes:   kafkaGauge("remotecopylagbytes", "Bytes of sealed segments below the high watermark not yet uploaded, over the topic's partitions this broker leads (Kafka's RemoteCopyLagBytes)."),
		kCopyLagSegs:    kafkaGauge("remotecopylagsegments", "Sealed segments below the high watermark not yet uploaded, over the topic's partitions this broker leads (Kafka's RemoteCopyLagSegments)."),
	}
}

// RemoveTopic deletes every series of topic: call it when the topic is deleted, so that
// the topic label's values stay bounded by the cluster's topics.
func (m *UploaderMetrics) RemoveTopic(topic string) {
	l := prometheus.Labels{"topic": topic}
	for _, v := range []*prometheus.CounterVec{m.copyBytes, m.copyRequests, m.copyErrors, m.deleteRequests, m.deleteErrors, m.deleteBytes,
		m.kCopyBytes, m.kCopyRequests, m.kCopyErrors, m.kDeleteRequests, m.kDeleteErrors} {
		v.DeletePartialMatch(l)
	}
	for _, v := range []*prometheus.GaugeVec{m.copyLagBytes, m.copyLagSegs, m.kCopyLagBytes, m.kCopyLagSegs} {
		v.DeletePartialMatch(l)
	}
}

// counters counts into a Sediment-named and a Kafka-named counter at once.
type counters [2]prometheus.Counter

func (c counters) Inc() {
	c[0].Inc()
	c[1].Inc()
}

func (c counters) Add(v float64) {
	c[0].Add(v)
	c[1].Add(v)
}

// uploaderSeries are one partition's children of the metrics.
type uploaderSeries struct {
	m                       *UploaderMetrics
	topic, partition        string
	copyBytes, copyRequests counters
	copyErrors              counters
	lagBytes, lagSegs       prometheus.Gauge
	deleteRequests          counters
	deleteErrors            counters
	deleteBytes             prometheus.Counter

	// The partition's share of the topic's Kafka lag gauges: what it last
	// added, taken back when it changes and when the uploader closes.
	lagMu                   sync.Mutex
	topicLagBytes, topicLag prometheus.Gauge
	addedBytes, addedSegs   float64
}

func (m *UploaderMetrics) series(topic string, partition int32) *uploaderSeries {
	p := strconv.FormatInt(int64(partition), 10)
	return &uploaderSeries{
		m: m, topic: topic, partition: p,
		copyBytes:      counters{m.copyBytes.WithLabelValues(topic), m.kCopyBytes.WithLabelValues(topic)},
		copyRequests:   counters{m.copyRequests.WithLabelValues(topic), m.kCopyRequests.WithLabelValues(topic)},
		copyErrors:     counters{m.copyErrors.WithLabelValues(topic), m.kCopyErrors.WithLabelValues(topic)},
		lagBytes:       m.copyLagBytes.WithLabelValues(topic, p),
		lagSegs:        m.copyLagSegs.WithLabelValues(topic, p),
		deleteRequests: counters{m.deleteRequests.WithLabelValues(topic), m.kDeleteRequests.WithLabelValues(topic)},
		deleteErrors:   counters{m.deleteErrors.WithLabelValues(topic), m.kDeleteErrors.WithLabelValues(topic)},
		deleteBytes:    m.deleteBytes.WithLabelValues(topic),
		topicLagBytes:  m.kCopyLagBytes.WithLabelValues(topic),
		topicLag:       m.kCopyLagSegs.WithLabelValues(topic),
	}
}

func (s *uploaderSeries) setLag(cands []segment.SegmentInfo) {
	var n int64
	for _, c := range cands {
		n += c.Size
	}
	s.lagBytes.Set(float64(n))
	s.lagSegs.Set(float64(len(cands)))
	s.addTopicLag(float64(n), float64(len(cands)))
}

// addTopicLag makes the partition's share of the topic's lag bytes, segs.
func (s *uploaderSeries) addTopicLag(bytes, segs float64) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	s.topicLagBytes.Add(bytes - s.addedBytes)
	s.topicLag.Add(segs - s.addedSegs)
	s.addedBytes, s.addedSegs = bytes, segs
}

// remove drops the partition's gauges and its share of the topic's (the topic counters
// stay: other partitions share them).
func (s *uploaderSeries) remove() {
	s.m.copyLagBytes.DeleteLabelValues(s.topic, s.partition)
	s.m.copyLagSegs.DeleteLabelValues(s.topic, s.partition)
	s.addTopicLag(0, 0)
}
