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
	type key struct{ state, kind string }
	counts := map[key]int{}
	for _, st := range []state{stateEmpty, statePreparingRebalance, stateCompletingRebalance, stateStable} {
		counts[key{st.String(), "classic"}] = 0
	}
	for _, st := range []string{"Empty", "Assigning", "Reconciling", "Stable"} {
		counts[key{st, "consumer"}] = 0
	}
	shards, _ := m.c.loadedShards()
	for _, sh := range shards {
		for _, g := range sh.snapshot() {
			g.mu.Lock()
			if st := g.stateNameLocked(); st != "Dead" {
				counts[key{st, g.kind.String()}]++
			}
			g.mu.Unlock()
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.groups, prometheus.GaugeValue, float64(n), k.state, k.kind)
	}
}
