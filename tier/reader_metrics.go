package tier

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type readerMetrics struct {
	fetchBytes, fetchRequests, fetchErrors prometheus.Counter
	cacheHits, cacheMisses                 prometheus.Counter
	cacheBytes                             prometheus.Gauge
}

func newReaderMetrics(reg prometheus.Registerer) (readerMetrics, error) {
	m := readerMetrics{
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_remote_fetch_bytes_total", Help: "Bytes read from object storage by remote reads (ranged GETs).",
		}),
		fetchRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_remote_fetch_requests_total", Help: "Object storage reads (ranged GETs and Stats) made by remote reads.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_remote_fetch_errors_total", Help: "Object storage reads of remote reads that failed.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_cache_hits_total", Help: "Chunks of remote reads served from the on-disk chunk cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sediment_tier_cache_misses_total", Help: "Chunks of remote reads not in the on-disk chunk cache.",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sediment_tier_cache_bytes", Help: "Bytes held by the on-disk chunk cache.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.fetchBytes, m.fetchRequests, m.fetchErrors, m.cacheHits, m.cacheMisses, m.cacheBytes} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("tier: reader metrics: %w", err)
			}
		}
	}
	return m, nil
}
