package txn

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	c             *Coordinator
	committed     prometheus.Counter
	aborted       prometheus.Counter
	timedOut      prometheus.Counter
	expired       prometheus.Counter
	markerRetries prometheus.Counter
	loadSeconds   prometheus.Histogram
	txns          *prometheus.Desc
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sediment", Subsystem: "txn", Name: name, Help: help})
	}
	m := &metrics{
		c:             c,
		committed:     counter("committed_total", "Transactions committed by this coordinator (markers written and CompleteCommit committed)."),
		aborted:       counter("aborted_total", "Transactions aborted by this coordinator (markers written and CompleteAbort committed)."),
		timedOut:      counter("timed_out_total", "Transactions aborted because they ran past transaction.timeout.ms."),
		expired:       counter("expired_ids_total", "Transactional ids removed after transactional.id.expiration.ms."),
		markerRetries: counter("marker_retries_total", "Rounds of transaction markers sent again after a partition did not take them."),
		loadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "sediment", Subsystem: "txn",
			Name: "load_seconds", Help: "Time to load a __transaction_state partition on becoming its leader.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		txns: prometheus.NewDesc("sediment_txn_transactional_ids", "Transactional ids this broker coordinates, by state.",
			[]string{"state"}, nil),
	}
	for _, col := range []prometheus.Collector{m.committed, m.aborted, m.timedOut, m.expired, m.markerRetries, m.loadSeconds, m} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) ended(commit bool) {
	if commit {
		m.committed.Inc()
	} else {
		m.aborted.Inc()
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.txns }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[State]int{}
	for s := Empty; s <= CompleteAbort; s++ {
		counts[s] = 0
	}
	shards, _ := m.c.allShards()
	for _, sh := range shards {
		for _, t := range sh.snapshot() {
			t.mu.Lock()
			if t.loaded && !t.removed && t.cur.state <= CompleteAbort {
				counts[t.cur.state]++
			}
			t.mu.Unlock()
		}
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.txns, prometheus.GaugeValue, float64(n), s.String())
	}
}
