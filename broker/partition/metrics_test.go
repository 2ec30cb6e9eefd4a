package partition

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// gauge sums the series of name in reg whose labels include want (pairs);
// -1 when there is none.
func gauge(t *testing.T, reg *prometheus.Registry, name string, want ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
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
				ok := false
				for _, l := range m.Label {
					ok = ok || l.GetName() == want[i] && l.GetValue() == want[i+1]
				}
				if !ok {
					continue series
				}
			}
			found = true
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if !found {
		return -1
	}
	return sum
}

// TestReplicaMetrics drives one led partition through ISR changes written
// to etcd, as the controller or this leader would, and checks the
// ReplicaManager gauges and counters; a stale state applied after a newer
// one (a reconcile pass planned before the leader's own ISR write) changes
// the leader's view but is not counted. Appends count into bytes and
// messages in; the log sizes add up; deleting the topic deletes its series.
func TestReplicaMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, nil, func(d *Deps) { d.Registerer = reg })
	// Before any topic: the gauges are there, at zero.
	for _, name := range []string{"kafka_server_replicamanager_underreplicatedpartitions", "kafka_server_replicamanager_leadercount",
		"kafka_server_replicamanager_isrshrinks_total", "kafka_server_replicamanager_isrexpands_total"} {
		if got := gauge(t, reg, name); got != 0 {
			t.Fatalf("%s before any topic = %v, want 0", name, got)
		}
	}
	tp := e.createTopic("r", 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 0)
	p, err := e.m.Leader("r", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "kafka_server_brokertopicmetrics_bytesin_total", "topic", "r"); got != 0 {
		t.Fatalf("bytesin{r} of a new topic = %v, want 0", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	setISR := func(isr ...int32) int32 {
		t.Helper()
		st, _ := e.cache.Partition(tp.ID, 0)
		st.ISR = isr
		st.PartitionEpoch++
		rev, err := e.store.UpdatePartition(ctx, tp.ID, 0, st)
		if err != nil {
			t.Fatal(err)
		}
		e.sync(ctx, rev)
		return st.PartitionEpoch
	}
	check := func(when string, want map[string]float64) {
		t.Helper()
		for name, v := range want {
			if got := gauge(t, reg, "kafka_server_replicamanager_"+name); got != v {
				t.Errorf("%s: %s = %v, want %v", when, name, got, v)
			}
		}
	}
	check("full ISR", map[string]float64{"underreplicatedpartitions": 0, "leadercount": 1, "partitioncount": 1,
		"underminisrpartitioncount": 0, "atminisrpartitioncount": 0, "isrshrinks_total": 0, "isrexpands_total": 0})

	old, _ := e.cache.Partition(tp.ID, 0)
	setISR(1, 2)
	check("3 out", map[string]float64{"underreplicatedpartitions": 1, "isrshrinks_total": 1, "isrexpands_total": 0})
	cur := setISR(1)
	check("2 out", map[string]float64{"underreplicatedpartitions": 1, "atminisrpartitioncount": 1, "isrshrinks_total": 2})

	// A stale state, then the current one again: the stale one is not
	// applied (it would let the high watermark go by an ISR etcd no longer
	// holds), and the counters do not move.
	l := p.leader()
	e.m.setMembership(p, l, tp.Partitions[0], old.ISR, old.PartitionEpoch)
	if _, isr := l.Sizes(); isr != 1 {
		t.Fatalf("stale state with an ISR of 3 applied: ISR of %d, want 1", isr)
	}
	e.m.setMembership(p, l, tp.Partitions[0], []int32{1}, cur)
	check("stale state", map[string]float64{"isrshrinks_total": 2, "isrexpands_total": 0})

	setISR(1, 2, 3)
	check("back", map[string]float64{"underreplicatedpartitions": 0, "atminisrpartitioncount": 0, "isrshrinks_total": 2, "isrexpands_total": 1})

	// Bytes and messages in: what the appends wrote.
	var n int
	for range 3 {
		b := segmenttest.Plain("a", "b", "c")
		if _, err := p.AppendLeader(b, AcksLeader); err != nil {
			t.Fatal(err)
		}
		n += len(b)
	}
	if got := gauge(t, reg, "kafka_server_brokertopicmetrics_bytesin_total", "topic", "r"); got != float64(n) {
		t.Errorf("bytesin{r} = %v, want %d", got, n)
	}
	if got := gauge(t, reg, "kafka_server_brokertopicmetrics_messagesin_total", "topic", "r"); got != 9 {
		t.Errorf("messagesin{r} = %v, want 9", got)
	}
	if got, want := gauge(t, reg, "kafka_log_log_size", "topic", "r", "partition", "0"), float64(p.Size()); got != want || want != float64(n) {
		t.Errorf("log_size{r,0} = %v, log %v bytes, appended %d", got, want, n)
	}
	if got := gauge(t, reg, "sediment_log_dir_used_bytes"); got != float64(n) {
		t.Errorf("log dir used = %v, want %d", got, n)
	}
	if total, free := gauge(t, reg, "sediment_log_dir_total_bytes"), gauge(t, reg, "sediment_log_dir_free_bytes"); total <= 0 || free < 0 || free > total {
		t.Errorf("log dir total %v, free %v", total, free)
	}

	rev, err := e.store.DeleteTopic(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	e.sync(ctx, rev)
	for _, name := range []string{"kafka_server_brokertopicmetrics_bytesin_total", "kafka_server_brokertopicmetrics_bytesout_total", "kafka_log_log_size"} {
		if got := gauge(t, reg, name, "topic", "r"); got != -1 {
			t.Errorf("%s{r} = %v after the topic was deleted", name, got)
		}
	}
	check("deleted", map[string]float64{"underreplicatedpartitions": 0, "leadercount": 0, "partitioncount": 0})
}

// TestSettleExpansion: after an ISR write whose outcome the leader does not
// know (a timeout), the followers it would add keep counting for the high
// watermark until etcd is read: if the write landed they are in the applied
// ISR, if not they stop counting.
func TestSettleExpansion(t *testing.T) {
	e := newEnv(t, nil)
	tp := e.createTopic("x", 1, []int32{1, 2, 3}, []int32{1, 2}, 0)
	p, err := e.m.Leader("x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := p.leader()

	// The write did not land.
	l.ExpandingISR([]int32{1, 2, 3})
	if !e.m.settleExpansion(ctx, p, l) {
		t.Fatal("settleExpansion could not read etcd")
	}
	if l.Expanding() || len(l.ISR()) != 2 {
		t.Fatalf("write not landed: expanding %v, ISR %v; want false, [1 2]", l.Expanding(), l.ISR())
	}

	// The write landed but its answer was lost: etcd holds 3, the watch has
	// not told the leader yet.
	l.ExpandingISR([]int32{1, 2, 3})
	st, _ := e.store.Partition(ctx, tp.ID, 0)
	st.ISR = []int32{1, 2, 3}
	st.PartitionEpoch++
	if _, err := e.store.UpdatePartition(ctx, tp.ID, 0, st); err != nil {
		t.Fatal(err)
	}
	if !e.m.settleExpansion(ctx, p, l) {
		t.Fatal("settleExpansion could not read etcd")
	}
	if l.Expanding() || len(l.ISR()) != 3 {
		t.Fatalf("write landed: expanding %v, ISR %v; want false, [1 2 3]", l.Expanding(), l.ISR())
	}
}
