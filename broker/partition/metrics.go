package partition

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// lsoLagDesc is the per-partition gap between the high watermark and the
// last stable offset: what read_committed consumers cannot read yet because
// a transaction is undecided. A lag that stays up names a hanging
// transaction (find its producer with `sediment producers describe`).
var lsoLagDesc = prometheus.NewDesc("sediment_partition_last_stable_offset_lag",
	"High watermark minus last stable offset of each partition this broker leads: offsets held back from read_committed consumers by undecided transactions.",
	[]string{"topic", "partition"}, nil)

// lsoCollector reports lsoLagDesc at scrape time, from the partitions' own
// atomics (no lock of the Manager beyond listing them).
type lsoCollector struct{ m *Manager }

func (c lsoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lsoLagDesc }

func (c lsoCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.m.All() {
		if !p.IsLeader() {
			continue
		}
		lag := p.HighWatermark() - p.LastStable()
		ch <- prometheus.MustNewConstMetric(lsoLagDesc, prometheus.GaugeValue, float64(max(lag, 0)),
			p.topic, strconv.Itoa(int(p.index)))
	}
}
