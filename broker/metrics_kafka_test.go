package broker

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	dto "github.com/prometheus/client_model/go"
)

// metricValue sums the series of name in g whose labels include want
// (name=value pairs), counters and gauges alike; -1 when none exists.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, want ...string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.Metric {
			for i := 0; i+1 < len(want); i += 2 {
				if !hasLabel(m, want[i], want[i+1]) {
					continue series
				}
			}
			found = true
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.Label {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// TestKafkaMetrics checks the Kafka-named metrics against what a 3-broker
// cluster really did: bytes and messages in equal what the leader's log
// holds, bytes out what a consumer read, replication bytes what followers
// hold; one active controller; a stopped follower makes the partition
// under-replicated and shrinks its ISR, its return expands it; a partition
// whose only replica is stopped is offline on the controller; a deleted
// topic's series go away.
func TestKafkaMetrics(t *testing.T) {
	regs := map[int32]*prometheus.Registry{}
	var next int32
	withReg := func(d *Deps) {
		next++
		r := prometheus.NewRegistry()
		regs[next] = r
		d.Registerer = r
	}
	mod := func(c *Config) {
		c.SessionTTL = 2 * time.Second
		// Long enough that a follower slowed by -race does not drop out
		// before the test stops one on purpose.
		c.ReplicaLagTimeMax = 3 * time.Second
		c.ControlledShutdownTimeout = time.Second
	}
	bs := startCluster(t, 3, mod, withReg)
	ctx := ctxT(t, 120*time.Second)
	cl := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.DefaultProduceTopic("km"))
	adm := kadm.NewClient(cl)
	minISR := "2"
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, "km"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	waitFor(t, "km-0 on every broker, and its leader", 10*time.Second, func() bool {
		leaders := 0
		for _, b := range bs {
			p := b.srv.parts.Get("km", 0)
			if p == nil {
				return false
			}
			if p.IsLeader() {
				leaders++
			}
		}
		return leaders == 1
	})
	var leader *testBroker
	var followers []*testBroker
	for _, b := range bs {
		if b.srv.parts.Get("km", 0).IsLeader() {
			leader = b
		} else {
			followers = append(followers, b)
		}
	}
	lreg := regs[leader.srv.cfg.NodeID]

	const records = 200
	for i := range records {
		v := fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 50))
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	lp := leader.srv.parts.Get("km", 0)
	size := float64(lp.Size())
	if got := metricValue(t, lreg, "kafka_server_brokertopicmetrics_bytesin_total", "topic", "km"); got != size {
		t.Errorf("bytesin{km} = %v, the leader's log holds %v bytes", got, size)
	}
	if got := metricValue(t, lreg, "kafka_server_brokertopicmetrics_messagesin_total", "topic", "km"); got != records {
		t.Errorf("messagesin{km} = %v, want %d", got, records)
	}
	if got := metricValue(t, lreg, "kafka_log_log_size", "topic", "km", "partition", "0"); got != size {
		t.Errorf("log_size{km,0} = %v, want %v", got, size)
	}
	// The last response is observed just after it is written.
	waitFor(t, "a latency observation of every Produce", 5*time.Second, func() bool {
		return metricValue(t, lreg, "kafka_network_requestmetrics_totaltime_seconds", "request", "Produce") >= records
	})
	// Followers hold what they replicated, and say so.
	hw := lp.HighWatermark()
	for _, f := range followers {
		fp := f.srv.parts.Get("km", 0)
		waitFor(t, "followers to catch up", 10*time.Second, func() bool { return fp.LogEnd() == hw })
		if got, want := metricValue(t, regs[f.srv.cfg.NodeID], "kafka_server_brokertopicmetrics_replicationbytesin_total"), float64(fp.Size()); got != want {
			t.Errorf("broker %d: replicationbytesin = %v, its log holds %v bytes", f.srv.cfg.NodeID, got, want)
		}
	}
	if got := metricValue(t, lreg, "kafka_server_brokertopicmetrics_replicationbytesout_total"); got < size {
		t.Errorf("leader's replicationbytesout = %v, want >= %v (two followers fetched %v bytes each)", got, size, size)
	}

	// A consumer reads the log once: bytes out is the log's size.
	cons := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"km": {0: kgo.NewOffset().AtStart()}}))
	for n := 0; n < records; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	cons.Close()
	if got := metricValue(t, lreg, "kafka_server_brokertopicmetrics_bytesout_total", "topic", "km"); got != size {
		t.Errorf("bytesout{km} = %v, want the log's %v bytes", got, size)
	}
	if got := metricValue(t, lreg, "kafka_network_requestmetrics_requests_total", "request", "FetchConsumer"); got < 1 {
		t.Errorf("FetchConsumer requests = %v", got)
	}

	controllers := func() (n float64, controller *testBroker) {
		for _, b := range bs {
			if v := metricValue(t, regs[b.srv.cfg.NodeID], "kafka_controller_kafkacontroller_activecontrollercount"); v == 1 {
				controller = b
				n++
			} else if v != 0 {
				t.Fatalf("broker %d: activecontrollercount %v", b.srv.cfg.NodeID, v)
			}
		}
		return n, controller
	}
	waitFor(t, "one active controller", 10*time.Second, func() bool { n, _ := controllers(); return n == 1 })
	_, ctrl := controllers()
	creg := regs[ctrl.srv.cfg.NodeID]

	for _, g := range []struct {
		name string
		want float64
	}{
		{"kafka_server_replicamanager_underreplicatedpartitions", 0},
		{"kafka_server_replicamanager_leadercount", 1},
		{"kafka_server_replicamanager_partitioncount", 1},
	} {
		if got := metricValue(t, lreg, g.name); got != g.want {
			t.Errorf("leader's %s = %v, want %v", g.name, got, g.want)
		}
	}

	// A follower that is neither the controller nor the leader goes away;
	// a topic whose only replica it holds goes offline with it.
	var victim *testBroker
	for _, f := range followers {
		if f != ctrl {
			victim = f
		}
	}
	vid := victim.srv.cfg.NodeID
	createAssigned(t, cl, "km-lonely", []int32{vid})
	waitFor(t, "km-lonely's leader", 10*time.Second, func() bool {
		p := victim.srv.parts.Get("km-lonely", 0)
		return p != nil && p.IsLeader()
	})
	// A new topic's series are there, at zero, before any traffic.
	if got := metricValue(t, regs[vid], "kafka_server_brokertopicmetrics_bytesin_total", "topic", "km-lonely"); got != 0 {
		t.Errorf("bytesin{km-lonely} before any produce = %v, want 0", got)
	}
	if got := metricValue(t, creg, "kafka_controller_kafkacontroller_offlinepartitionscount"); got != 0 {
		t.Fatalf("offline partitions before the stop = %v", got)
	}
	waitFor(t, "a full ISR", 10*time.Second, func() bool {
		return metricValue(t, lreg, "kafka_server_replicamanager_underreplicatedpartitions") == 0
	})
	shrinks := metricValue(t, lreg, "kafka_server_replicamanager_isrshrinks_total")
	expands := metricValue(t, lreg, "kafka_server_replicamanager_isrexpands_total")
	endpoints := victim.srv.store.Client().Endpoints()
	victim.stop()
	waitFor(t, "the leader to count km-0 under-replicated", 20*time.Second, func() bool {
		return metricValue(t, lreg, "kafka_server_replicamanager_underreplicatedpartitions") == 1
	})
	if got := metricValue(t, lreg, "kafka_server_replicamanager_isrshrinks_total"); got != shrinks+1 {
		t.Errorf("isrshrinks after one follower left = %v, want %v", got, shrinks+1)
	}
	if got := metricValue(t, lreg, "kafka_server_replicamanager_atminisrpartitioncount"); got != 1 {
		t.Errorf("atminisrpartitioncount with ISR 2 of min 2 = %v, want 1", got)
	}
	waitFor(t, "the controller to count km-lonely offline", 20*time.Second, func() bool {
		return metricValue(t, creg, "kafka_controller_kafkacontroller_offlinepartitionscount") == 1
	})

	// It returns: it catches up, rejoins the ISR, and km-lonely has a
	// leader again.
	next = vid - 1 // its new registry replaces the old one
	startNode(t, victim.dir, vid, endpoints, mod, withReg)
	waitFor(t, "the ISR to expand", 30*time.Second, func() bool {
		return metricValue(t, lreg, "kafka_server_replicamanager_isrexpands_total") == expands+1 &&
			metricValue(t, lreg, "kafka_server_replicamanager_underreplicatedpartitions") == 0
	})
	waitFor(t, "no partition offline", 30*time.Second, func() bool {
		return metricValue(t, creg, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
	})
	if got := metricValue(t, lreg, "kafka_server_replicamanager_isrshrinks_total"); got != shrinks+1 {
		t.Errorf("isrshrinks after the return = %v, want still %v", got, shrinks+1)
	}

	// Every metric a broker with traffic exports is documented.
	checkDocumented(t, lreg, creg, regs[vid])

	// Deleting the topic deletes its series.
	if _, err := adm.DeleteTopics(ctx, "km"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "km's series to go", 20*time.Second, func() bool {
		return metricValue(t, lreg, "kafka_server_brokertopicmetrics_bytesin_total", "topic", "km") == -1 &&
			metricValue(t, lreg, "kafka_server_brokertopicmetrics_bytesout_total", "topic", "km") == -1 &&
			metricValue(t, lreg, "kafka_log_log_size", "topic", "km") == -1
	})
}

// checkDocumented fails for every metric the registries export that is not
// a row of README's "Metrics" table.
func checkDocumented(t *testing.T, gs ...prometheus.Gatherer) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Metrics\n")
	if !ok {
		t.Fatal(`README has no "## Metrics" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]int{}
	for _, line := range strings.Split(section, "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			rows[name]++
		}
	}
	for name, n := range rows {
		if n > 1 {
			t.Errorf("README's Metrics table lists %s %d times", name, n)
		}
	}
	for _, g := range gs {
		fams, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if rows[f.GetName()] == 0 {
				t.Errorf("%s is exported but not in README's Metrics table", f.GetName())
			}
		}
	}
}
