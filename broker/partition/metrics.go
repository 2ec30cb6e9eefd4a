package partition

import (
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/repl"
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

// Kafka's ReplicaManager gauges, under the names Kafka's Prometheus JMX
// exporter rules give them (kafka.server:type=ReplicaManager,name=X becomes
// kafka_server_replicamanager_x). Computed at scrape time, one pass over the
// local partitions; nothing is kept up to date on the produce or fetch path.
var (
	underReplicatedDesc = prometheus.NewDesc("kafka_server_replicamanager_underreplicatedpartitions",
		"Partitions this broker leads whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions).", nil, nil)
	underMinISRDesc = prometheus.NewDesc("kafka_server_replicamanager_underminisrpartitioncount",
		"Partitions this broker leads whose ISR is below min.insync.replicas: acks=all produces to them fail (Kafka's UnderMinIsrPartitionCount).", nil, nil)
	atMinISRDesc = prometheus.NewDesc("kafka_server_replicamanager_atminisrpartitioncount",
		"Partitions this broker leads whose ISR is exactly min.insync.replicas: one more lost replica stops acks=all produces (Kafka's AtMinIsrPartitionCount).", nil, nil)
	partitionCountDesc = prometheus.NewDesc("kafka_server_replicamanager_partitioncount",
		"Partitions with a replica on this broker (Kafka's PartitionCount).", nil, nil)
	leaderCountDesc = prometheus.NewDesc("kafka_server_replicamanager_leadercount",
		"Partitions this broker leads (Kafka's LeaderCount).", nil, nil)
	logSizeDesc = prometheus.NewDesc("kafka_log_log_size",
		"Bytes of a partition's local log segments (Kafka's kafka.log:type=Log,name=Size).", []string{"topic", "partition"}, nil)
)

// The data directory and its file system, as DescribeLogDirs (KIP-827)
// reports them; Kafka has no metric for these. statfs(2) at scrape time.
var (
	logDirTotalDesc = prometheus.NewDesc("sediment_log_dir_total_bytes",
		"Size of the file system holding the data directory (DescribeLogDirs' TotalBytes).", []string{"dir"}, nil)
	logDirFreeDesc = prometheus.NewDesc("sediment_log_dir_free_bytes",
		"Bytes of the data directory's file system available to the broker (DescribeLogDirs' UsableBytes).", []string{"dir"}, nil)
	logDirUsedDesc = prometheus.NewDesc("sediment_log_dir_used_bytes",
		"Bytes of the local logs of the partitions this broker hosts (the sum of kafka_log_log_size).", []string{"dir"}, nil)
)

// replicaCollector reports the ReplicaManager gauges and the local log sizes.
type replicaCollector struct{ m *Manager }

func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{underReplicatedDesc, underMinISRDesc, atMinISRDesc, partitionCountDesc, leaderCountDesc, logSizeDesc,
		logDirTotalDesc, logDirFreeDesc, logDirUsedDesc} {
		ch <- d
	}
}

func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	var parts, leaders, under, underMin, atMin int
	var used int64
	for _, p := range c.m.All() {
		parts++
		size := p.Size()
		used += size
		ch <- prometheus.MustNewConstMetric(logSizeDesc, prometheus.GaugeValue, float64(size), p.topic, strconv.Itoa(int(p.index)))
		l := p.leader()
		if l == nil {
			continue
		}
		leaders++
		replicas, isr := l.Sizes()
		minISR := int(p.minISR.Load())
		if isr < replicas {
			under++
		}
		if isr < minISR {
			underMin++
		}
		if isr == minISR {
			atMin++
		}
	}
	for _, g := range []struct {
		d *prometheus.Desc
		v int
	}{{underReplicatedDesc, under}, {underMinISRDesc, underMin}, {atMinISRDesc, atMin}, {partitionCountDesc, parts}, {leaderCountDesc, leaders}} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, float64(g.v))
	}
	dir, err := filepath.Abs(c.m.cfg.DataDir)
	if err != nil {
		dir = c.m.cfg.DataDir
	}
	ch <- prometheus.MustNewConstMetric(logDirUsedDesc, prometheus.GaugeValue, float64(used), dir)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		ch <- prometheus.MustNewConstMetric(logDirTotalDesc, prometheus.GaugeValue, float64(st.Blocks)*float64(st.Bsize), dir)
		ch <- prometheus.MustNewConstMetric(logDirFreeDesc, prometheus.GaugeValue, float64(st.Bavail)*float64(st.Bsize), dir)
	}
}

// kafkaMetrics are the Manager's counters under Kafka's names.
type kafkaMetrics struct {
	isrShrinks, isrExpands prometheus.Counter
	topics                 *TopicStats
}

func newKafkaMetrics(m *Manager, reg prometheus.Registerer) (*kafkaMetrics, error) {
	km := &kafkaMetrics{
		isrShrinks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_replicamanager_isrshrinks_total",
			Help: "ISR shrinks of partitions this broker leads: a follower left the ISR, removed by this leader (it fell behind for replica.lag.time.max.ms) or by the controller (its broker went away) (Kafka's IsrShrinksPerSec).",
		}),
		isrExpands: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_replicamanager_isrexpands_total",
			Help: "ISR expansions of partitions this broker leads: a follower caught up and rejoined the ISR (Kafka's IsrExpandsPerSec).",
		}),
		topics: newTopicStats(m),
	}
	for _, c := range []prometheus.Collector{km.isrShrinks, km.isrExpands, replicaCollector{m}, km.topics} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return km, nil
}

// setMembership applies a partition's replicas and ISR, as of partition
// epoch epoch, to its leader and counts an ISR that shrank or expanded.
// Every change of a led partition's ISR, whoever wrote it to etcd (this
// leader or the controller), reaches the leader through here. A reconcile
// pass planned before this leader's own ISR write can come with the older
// state after it: such states, recognised by their older partition epoch, are
// neither applied nor counted.
func (m *Manager) setMembership(p *Partition, l *repl.Leader, replicas, isr []int32, epoch int32) {
	if epoch < p.isrEpoch.Load() {
		// A state older than one applied already (a watch event behind this
		// leader's own write): applying it would undo an expansion, and the
		// high watermark would go by the smaller ISR.
		return
	}
	shrank, expanded := l.SetMembership(replicas, isr)
	if !p.newerISREpoch(epoch) {
		return
	}
	if shrank {
		m.kafka.isrShrinks.Inc()
	}
	if expanded {
		m.kafka.isrExpands.Inc()
	}
}

// newerISREpoch records epoch as the newest partition epoch applied to the
// leader, and reports whether it is newer than every one before.
func (p *Partition) newerISREpoch(epoch int32) bool {
	for {
		last := p.isrEpoch.Load()
		if epoch <= last {
			return false
		}
		if p.isrEpoch.CompareAndSwap(last, epoch) {
			return true
		}
	}
}

// TopicStats are Kafka's per-topic BrokerTopicMetrics counters (bytes and
// messages in, bytes out, remote fetches), with a topic label. A topic's
// series exist while the topic does: created at zero when the Manager first
// sees the topic in the metadata and deleted when it is deleted, so the
// label's values are bounded by the cluster's topics. Safe for concurrent use.
type TopicStats struct {
	m *Manager

	mu     sync.RWMutex // after Manager.mu when both are held
	series map[string]*topicSeries

	bytesIn, messagesIn, bytesOut         *prometheus.CounterVec
	remoteFetchBytes, remoteFetchRequests *prometheus.CounterVec
	remoteFetchErrors                     *prometheus.CounterVec
	replicationBytesOut                   prometheus.Counter
}

type topicSeries struct {
	bytesIn, messagesIn, bytesOut                            prometheus.Counter
	remoteFetchBytes, remoteFetchRequests, remoteFetchErrors prometheus.Counter
}

func newTopicStats(m *Manager) *TopicStats {
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kafka_server_brokertopicmetrics_" + name, Help: help}, []string{"topic"})
	}
	return &TopicStats{
		m:      m,
		series: make(map[string]*topicSeries),
		bytesIn: vec("bytesin_total",
			"Record batch bytes appended by this broker as leader, from producers and the coordinators; idempotent retries that matched batches already in the log are not counted (Kafka's BytesInPerSec)."),
		messagesIn: vec("messagesin_total",
			"Records appended by this broker as leader (Kafka's MessagesInPerSec)."),
		bytesOut: vec("bytesout_total",
			"Record batch bytes sent to consumers in fetch responses, local and remote; followers' fetches are in replicationbytesout (Kafka's BytesOutPerSec)."),
		remoteFetchBytes: vec("remotefetchbytes_total",
			"Record batch bytes read from the tier for consumer fetches below the local log start (Kafka's RemoteFetchBytesPerSec)."),
		remoteFetchRequests: vec("remotefetchrequests_total",
			"Reads of one partition from the tier for a consumer fetch (Kafka's RemoteFetchRequestsPerSec)."),
		remoteFetchErrors: vec("remotefetcherrors_total",
			"Reads from the tier for a consumer fetch that failed; reads cut short by remote.fetch.max.wait.ms are not errors (Kafka's RemoteFetchErrorsPerSec)."),
		replicationBytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_replicationbytesout_total",
			Help: "Record batch bytes sent to followers in fetch responses (Kafka's ReplicationBytesOutPerSec).",
		}),
	}
}

func (s *TopicStats) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.bytesIn, s.messagesIn, s.bytesOut, s.remoteFetchBytes, s.remoteFetchRequests, s.remoteFetchErrors, s.replicationBytesOut}
}

func (s *TopicStats) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.collectors() {
		c.Describe(ch)
	}
}

func (s *TopicStats) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.collectors() {
		c.Collect(ch)
	}
}

// of returns topic's series, nil when the topic is unknown to the Manager (a
// count racing with its deletion is dropped, not resurrected).
func (s *TopicStats) of(topic string) *topicSeries {
	s.mu.RLock()
	ts := s.series[topic]
	s.mu.RUnlock()
	if ts != nil {
		return ts
	}
	s.m.mu.RLock()
	defer s.m.mu.RUnlock()
	if s.m.topics[topic] == nil {
		return nil
	}
	return s.ensureLocked(topic)
}

// ensureLocked returns topic's series, creating them (at zero, so they are
// exported before the first count); the caller holds Manager.mu.
func (s *TopicStats) ensureLocked(topic string) *topicSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.series[topic]
	if ts == nil {
		ts = &topicSeries{
			bytesIn:             s.bytesIn.WithLabelValues(topic),
			messagesIn:          s.messagesIn.WithLabelValues(topic),
			bytesOut:            s.bytesOut.WithLabelValues(topic),
			remoteFetchBytes:    s.remoteFetchBytes.WithLabelValues(topic),
			remoteFetchRequests: s.remoteFetchRequests.WithLabelValues(topic),
			remoteFetchErrors:   s.remoteFetchErrors.WithLabelValues(topic),
		}
		s.series[topic] = ts
	}
	return ts
}

// forgetLocked deletes topic's series; the caller holds Manager.mu.
func (s *TopicStats) forgetLocked(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.series[topic] == nil {
		return
	}
	delete(s.series, topic)
	for _, v := range []*prometheus.CounterVec{s.bytesIn, s.messagesIn, s.bytesOut, s.remoteFetchBytes, s.remoteFetchRequests, s.remoteFetchErrors} {
		v.DeleteLabelValues(topic)
	}
}

// appended counts an append of n bytes holding records records.
func (s *TopicStats) appended(topic string, n int, records int64) {
	if ts := s.of(topic); ts != nil {
		ts.bytesIn.Add(float64(n))
		ts.messagesIn.Add(float64(records))
	}
}

// FetchedOut counts n record bytes of topic sent in a fetch response, to a
// consumer or, when follower is set, to a follower.
func (s *TopicStats) FetchedOut(topic string, n int64, follower bool) {
	if n <= 0 {
		return
	}
	if follower {
		s.replicationBytesOut.Add(float64(n))
		return
	}
	if ts := s.of(topic); ts != nil {
		ts.bytesOut.Add(float64(n))
	}
}

// RemoteFetched counts one read of topic from the tier for a consumer's
// fetch: n bytes returned, failed when it ended in an error.
func (s *TopicStats) RemoteFetched(topic string, n int, failed bool) {
	ts := s.of(topic)
	if ts == nil {
		return
	}
	ts.remoteFetchRequests.Inc()
	ts.remoteFetchBytes.Add(float64(n))
	if failed {
		ts.remoteFetchErrors.Inc()
	}
}

// countIn counts a leader append of n bytes of producer or coordinator data
// into the topic's bytes and messages in; failed appends and idempotent
// retries that appended nothing are not counted.
func (p *Partition) countIn(res AppendResult, err error, n int) {
	if err != nil || res.Duplicate {
		return
	}
	p.m.kafka.topics.appended(p.topic, n, res.LastOffset-res.FirstOffset+1)
}
