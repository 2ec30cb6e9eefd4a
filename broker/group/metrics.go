package group

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rebalances prometheus.Counter
	commits    prometheus.Counter
	groups     *prometheus.Desc
	c          *Coordinator
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		c: c,
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sediment", Subsystem: "group", Name: "rebalances_total",
			Help: "Rebalances started by groups this broker coordinates.",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sediment", Subsystem: "group", Name: "offset_commits_total",
			Help: "Partition offsets committed (written to __consumer_offsets and committed there).",
		}),
		groups: prometheus.NewDesc("sediment_group_groups", "Groups this broker coordinates, by state and type.",
			[]string{"state", "type"}, nil),
	}
	for _, col := range []prometheus.Collector{m.rebalances, m.commits, m} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// stateChanged is a hook for state transitions; the gauge of groups by
// state is computed when scraped.
func (m *metrics) stateChanged(*group) {}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.groups }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	for _, st := range []state{stateEmpty, statePreparingRebalance, stateCompletingRebalance, stateStable} {
		counts[st.String()] = 0
	}
	shards, _ := m.c.loadedShards()
	for _, sh := range shards {
		for _, g := range sh.snapshot() {
			g.mu.Lock()
			if g.state != stateDead {
				counts[g.state.String()]++
			}
			g.mu.Unlock()
		}
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.groups, prometheus.GaugeValue, float64(n), st, "classic")
	}
}
