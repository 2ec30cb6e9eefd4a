package tier

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sedimentio/sediment/segment"
)

// UploaderMetrics are the uploaders' Prometheus metrics (in the spirit of KIP-405's
// RemoteCopyBytesPerSec, RemoteCopyRequestsPerSec, RemoteCopyErrorsPerSec, RemoteCopyLagBytes,
// RemoteCopyLagSegments, RemoteDeleteRequestsPerSec), shared by every partition's uploader.
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
func NewUploaderMetrics(reg prometheus.Registerer) (*UploaderMetrics, error) {
	m := newUploaderMetrics()
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.copyBytes, m.copyRequests, m.copyErrors, m.copyLagBytes, m.copyLagSegs, m.deleteRequests, m.deleteErrors, m.deleteBytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("tier: registering uploader metrics: %w", err)
		}
	}
	return m, nil
}

func newUploaderMetrics() *UploaderMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sediment", Subsystem: "tier", Name: name, Help: help}, []string{"topic"})
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sediment", Subsystem: "tier", Name: name, Help: help}, []string{"topic", "partition"})
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
	}
}

// uploaderSeries are one partition's children of the metrics.
type uploaderSeries struct {
	m                       *UploaderMetrics
	topic, partition        string
	copyBytes, copyRequests prometheus.Counter
	copyErrors              prometheus.Counter
	lagBytes, lagSegs       prometheus.Gauge
	deleteRequests          prometheus.Counter
	deleteErrors            prometheus.Counter
	deleteBytes             prometheus.Counter
}

func (m *UploaderMetrics) series(topic string, partition int32) *uploaderSeries {
	p := strconv.FormatInt(int64(partition), 10)
	return &uploaderSeries{
		m: m, topic: topic, partition: p,
		copyBytes:      m.copyBytes.WithLabelValues(topic),
		copyRequests:   m.copyRequests.WithLabelValues(topic),
		copyErrors:     m.copyErrors.WithLabelValues(topic),
		lagBytes:       m.copyLagBytes.WithLabelValues(topic, p),
		lagSegs:        m.copyLagSegs.WithLabelValues(topic, p),
		deleteRequests: m.deleteRequests.WithLabelValues(topic),
		deleteErrors:   m.deleteErrors.WithLabelValues(topic),
		deleteBytes:    m.deleteBytes.WithLabelValues(topic),
	}
}

func (s *uploaderSeries) setLag(cands []segment.SegmentInfo) {
	var n int64
	for _, c := range cands {
		n += c.Size
	}
	s.lagBytes.Set(float64(n))
	s.lagSegs.Set(float64(len(cands)))
}

// remove drops the partition's gauges (the topic counters stay: other partitions share them).
func (s *uploaderSeries) remove() {
	s.m.copyLagBytes.DeleteLabelValues(s.topic, s.partition)
	s.m.copyLagSegs.DeleteLabelValues(s.topic, s.partition)
}
