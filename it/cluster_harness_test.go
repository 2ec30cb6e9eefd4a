package it

// The multi-broker tests' side of it/harness: a harness.Cluster bound to a
// test (three `sediment serve` processes forming one cluster, each running a
// member of a three-member etcd quorum, and optional extra brokers joining as
// etcd clients), and the checks the failover tests share:
// partition state as each broker's Metadata reports it, ISR waits, acks=all
// producers that timestamp every acknowledgement, and a byte-for-byte
// comparison of the replicas' logs below the high watermark.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// Cluster settings of the failover tests: short sessions and lag bounds keep
// them fast; a minute bounds every wait for the cluster to settle.
const (
	clusterSessionTimeout = 3 * time.Second
	clusterReplicaLag     = 3 * time.Second
	clusterSettleTimeout  = 60 * time.Second
)

// Cluster is a set of brokers of one Sediment cluster (a harness.Cluster
// bound to a test). Brokers[i] has node id i+1; the first ones run the etcd
// quorum. Its methods are meant for the test goroutine.
type Cluster struct {
	t       testing.TB
	hc      *harness.Cluster
	Brokers []*Broker
}

// StartCluster starts members brokers with an etcd member each, all at once
// (an etcd quorum forms only when a majority is up), with RF=members,
// min.insync.replicas=2, short sessions and lag bounds, and waits until every
// one is registered and every one's Metadata lists them all. extra flags go
// to every broker (later flags win).
func StartCluster(t testing.TB, members int, extra ...string) *Cluster {
	t.Helper()
	common := append([]string{
		"--log-level", "info",
		"--default-replication-factor", strconv.Itoa(members),
		"--min-insync-replicas", "2",
		"--broker-session-timeout", clusterSessionTimeout.String(),
		"--replica-lag-time-max", clusterReplicaLag.String(),
		"--controlled-shutdown-timeout", "20s",
	}, extra...)
	if os.Getenv("SEDIMENT_IT_DEBUG") != "" {
		common = append(common, "--log-level", "debug")
	}
	hc, err := harness.StartCluster(context.Background(), harness.ClusterConfig{
		Bin:          sedimentBin(t),
		Members:      members,
		Dir:          t.TempDir(),
		LogDir:       logDir(t),
		Flags:        common,
		StartTimeout: readyTimeout,
	})
	if err != nil {
		t.Fatalf("starting a %d-broker cluster: %v", members, err)
	}
	c := &Cluster{t: t, hc: hc}
	for _, hb := range hc.Brokers {
		c.Brokers = append(c.Brokers, bind(t, hb))
	}
	t.Logf("cluster of %d brokers up: %s", members, strings.Join(c.Addrs(), ","))
	return c
}

// AddBroker starts one more broker that joins as an etcd client (no member).
func (c *Cluster) AddBroker() *Broker {
	c.t.Helper()
	hb, err := c.hc.AddBroker(context.Background())
	if hb != nil {
		c.Brokers = append(c.Brokers, bind(c.t, hb))
	}
	if err != nil {
		c.t.Fatalf("starting broker %d: %v", len(c.Brokers)+1, err)
	}
	return c.Brokers[len(c.Brokers)-1]
}

// Node is the broker with node id id.
func (c *Cluster) Node(id int32) *Broker {
	c.t.Helper()
	if id < 1 || int(id) > len(c.Brokers) {
		c.t.Fatalf("no broker with node id %d", id)
	}
	return c.Brokers[id-1]
}

// NodeID of b.
func (c *Cluster) NodeID(b *Broker) int32 { return int32(b.NodeID) }

// Addrs are the Kafka addresses of every broker, up or down.
func (c *Cluster) Addrs() []string { return c.hc.Addrs() }

// serving are the brokers running and not paused.
func (c *Cluster) serving() []*Broker {
	var out []*Broker
	for _, hb := range c.hc.Serving() {
		out = append(out, c.Brokers[hb.NodeID-1])
	}
	return out
}

// Pause stops b with SIGSTOP: its process, etcd member included, freezes
// with its connections open, like a long GC pause or a hung VM.
func (c *Cluster) Pause(b *Broker) {
	c.t.Helper()
	if err := b.Broker.Pause(); err != nil {
		c.t.Fatal(err)
	}
}

// Resume continues a paused broker.
func (c *Cluster) Resume(b *Broker) {
	c.t.Helper()
	if err := b.Broker.Resume(); err != nil {
		c.t.Fatal(err)
	}
}

// Client is a franz-go client seeded with every broker, closed when the test
// ends. Short dial and request bounds: a dead or paused broker must not hold
// a request for long.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(c.Addrs()...),
		kgo.DialTimeout(time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin is a kadm client seeded with every broker.
func (c *Cluster) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(c.Client(t))
}

// CreateTopic creates a topic with rf replicas per partition and waits until
// every partition has a leader and a full ISR.
func (c *Cluster) CreateTopic(topic string, partitions int32, rf int16, configs map[string]*string) {
	c.t.Helper()
	ctx := testContext(c.t, 30*time.Second)
	resp, err := c.Admin(c.t).CreateTopic(ctx, partitions, rf, configs, topic)
	if err != nil {
		c.t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		c.t.Fatalf("create topic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	c.WaitISR(topic, partitions, int(rf), clusterSettleTimeout)
}

// askBroker sends one request to the broker at addr on a fresh connection
// and decodes the response, all within timeout. Unlike a kgo client it never
// goes to another broker: it asks exactly this one.
func askBroker(addr string, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("it-cluster"))
	if _, err := nc.Write(f.AppendRequest(nil, req, 1)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(nc, body); err != nil {
		return nil, err
	}
	rd := kbin.Reader{Src: body}
	if corr := rd.Int32(); corr != 1 {
		return nil, fmt.Errorf("correlation id %d, want 1", corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		return nil, err
	}
	return resp, nil
}

// partState is a partition as one broker's Metadata shows it.
type partState struct {
	Leader, Epoch int32
	Replicas, ISR []int32
	Offline       []int32
}

func (s partState) String() string {
	return fmt.Sprintf("leader %d epoch %d isr %v replicas %v offline %v", s.Leader, s.Epoch, s.ISR, s.Replicas, s.Offline)
}

// clusterView is one broker's Metadata answer.
type clusterView struct {
	Brokers    []int32
	Controller int32
	Parts      map[int32]partState // of the topic asked for
}

// view asks broker b for Metadata of topic (or of no topic when empty).
func view(b *Broker, topic string) (clusterView, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	if topic != "" {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	r, err := askBroker(b.Addr, req, 2*time.Second)
	if err != nil {
		return clusterView{}, err
	}
	resp := r.(*kmsg.MetadataResponse)
	v := clusterView{Controller: resp.ControllerID, Parts: map[int32]partState{}}
	for _, mb := range resp.Brokers {
		v.Brokers = append(v.Brokers, mb.NodeID)
	}
	slices.Sort(v.Brokers)
	for _, mt := range resp.Topics {
		for _, mp := range mt.Partitions {
			isr := slices.Clone(mp.ISR)
			slices.Sort(isr)
			v.Parts[mp.Partition] = partState{Leader: mp.Leader, Epoch: mp.LeaderEpoch,
				Replicas: mp.Replicas, ISR: isr, Offline: mp.OfflineReplicas}
		}
	}
	return v, nil
}

// View asks the serving brokers in turn until one answers.
func (c *Cluster) View(topic string) (clusterView, error) {
	var errs []error
	for _, b := range c.serving() {
		v, err := view(b, topic)
		if err == nil {
			return v, nil
		}
		errs = append(errs, fmt.Errorf("broker %d: %w", c.NodeID(b), err))
	}
	return clusterView{}, fmt.Errorf("no broker answered Metadata: %w", errors.Join(errs...))
}

// WaitFor polls the serving brokers' Metadata every 50ms until cond holds on
// one broker's answer, and fails the test after timeout. what describes cond.
func (c *Cluster) WaitFor(what, topic string, timeout time.Duration, cond func(clusterView) (bool, string)) clusterView {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		v, err := c.View(topic)
		if err != nil {
			last = err.Error()
		} else if ok, why := cond(v); ok {
			return v
		} else {
			last = why
		}
		select {
		case <-deadline.C:
			c.t.Fatalf("%s: not after %v: %s", what, timeout, last)
		case <-tick.C:
		}
	}
}

// WaitISR waits until every partition of topic has a leader and an ISR of
// rf live replicas, as every serving broker's Metadata shows.
func (c *Cluster) WaitISR(topic string, partitions int32, rf int, timeout time.Duration) {
	c.t.Helper()
	full := func(v clusterView) (bool, string) {
		if len(v.Parts) != int(partitions) {
			return false, fmt.Sprintf("%d partitions", len(v.Parts))
		}
		for p := range partitions {
			s := v.Parts[p]
			if s.Leader < 0 || len(s.ISR) != rf || slices.ContainsFunc(s.ISR, func(id int32) bool { return slices.Contains(s.Offline, id) }) {
				return false, fmt.Sprintf("partition %d: %v", p, s)
			}
		}
		return true, ""
	}
	for _, b := range c.serving() {
		c.WaitFor(fmt.Sprintf("full ISR of %s on broker %d", topic, c.NodeID(b)), topic, timeout, func(clusterView) (bool, string) {
			v, err := view(b, topic)
			if err != nil {
				return false, err.Error()
			}
			return full(v)
		})
	}
}

// Leaders maps each partition of topic to its leader.
func (c *Cluster) Leaders(topic string) map[int32]int32 {
	c.t.Helper()
	v, err := c.View(topic)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[int32]int32{}
	for p, s := range v.Parts {
		out[p] = s.Leader
	}
	return out
}

// WaitLeaderMoved waits until none of parts is led by node (nor is offline)
// and returns the new leaders.
func (c *Cluster) WaitLeaderMoved(topic string, parts []int32, node int32, timeout time.Duration) map[int32]int32 {
	c.t.Helper()
	v := c.WaitFor(fmt.Sprintf("leadership of %s%v moved off broker %d", topic, parts, node), topic, timeout,
		func(v clusterView) (bool, string) {
			for _, p := range parts {
				if s := v.Parts[p]; s.Leader == node || s.Leader < 0 {
					return false, fmt.Sprintf("partition %d: %v", p, s)
				}
			}
			return true, ""
		})
	out := map[int32]int32{}
	for _, p := range parts {
		out[p] = v.Parts[p].Leader
	}
	return out
}

// Led lists the partitions node leads, in order.
func ledBy(leaders map[int32]int32, node int32) []int32 {
	var out []int32
	for p, l := range leaders {
		if l == node {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// clusterLoad is a producerGroup (idempotent acks=all producers, each in its
// own goroutine) against a cluster, which also timestamps acknowledgements
// per partition to measure failover.
type clusterLoad struct {
	*producerGroup
	ackTimes map[int32][]time.Time // guarded by producerGroup.mu
}

// StartLoad starts n producers writing to every partition of topic through
// clients seeded with every broker.
func (c *Cluster) StartLoad(t testing.TB, topic string, partitions int32, n int) *clusterLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pg := &producerGroup{t: t, topic: topic, partitions: partitions, cancel: cancel, cond: make(chan struct{}), errs: map[string]int{}}
	ld := &clusterLoad{producerGroup: pg, ackTimes: map[int32][]time.Time{}}
	t.Cleanup(pg.stop)
	for g := range n {
		cl := c.Client(t,
			manualPartitions,
			kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent: franz-go's default
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.MaxBufferedRecords(1000),
			// Longer than replica.lag.time.max: an acks=all produce may
			// have to wait for a silent follower to leave the ISR.
			kgo.ProduceRequestTimeout(10*time.Second),
		)
		pg.clients = append(pg.clients, cl)
		pg.wg.Add(1)
		go func() {
			defer pg.wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				p := int32((g + seq) % int(partitions))
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(producedValue(g, seq))}
				cl.Produce(ctx, r, ld.promise(g, seq))
			}
		}()
	}
	return ld
}

// promise records the outcome of record seq of producer g: an acknowledgement
// (with its time, per partition) or a failure.
func (ld *clusterLoad) promise(g, seq int) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		now := time.Now()
		ld.mu.Lock()
		defer ld.mu.Unlock()
		if err != nil {
			ld.failed++
			ld.errs[err.Error()]++
			return
		}
		ld.acked = append(ld.acked, ackedRecord{p: r.Partition, offset: r.Offset, g: g, seq: seq})
		ld.ackTimes[r.Partition] = append(ld.ackTimes[r.Partition], now)
		close(ld.cond)
		ld.cond = make(chan struct{})
	}
}

// failures is how many records have failed so far.
func (ld *clusterLoad) failures() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.failed
}

// waitAckedAfter waits until each of parts has an acknowledgement later than
// since, and returns the latest of those first acknowledgements.
func (ld *clusterLoad) waitAckedAfter(parts []int32, since time.Time, timeout time.Duration) time.Time {
	ld.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ld.mu.Lock()
		ch := ld.cond
		var latest time.Time
		missing := []int32(nil)
		for _, p := range parts {
			ts := ld.ackTimes[p]
			i := sort.Search(len(ts), func(i int) bool { return ts[i].After(since) })
			if i == len(ts) {
				missing = append(missing, p)
				continue
			}
			if ts[i].After(latest) {
				latest = ts[i]
			}
		}
		errs := fmt.Sprint(ld.errs)
		ld.mu.Unlock()
		if len(missing) == 0 {
			return latest
		}
		select {
		case <-ch:
		case <-deadline.C:
			ld.t.Fatalf("partitions %v: no acknowledgement within %v (failures so far: %s)", missing, timeout, errs)
		}
	}
}

// Prober measures failover as a client sees it: from a fault to the first
// acks=all acknowledgement of a record produced after it. Its client is made
// (and its metadata loaded) before the fault.
type Prober struct {
	t     testing.TB
	topic string
	cl    *kgo.Client
	n     int
}

// NewProber makes a prober of topic and warms it with one record per partition.
func (c *Cluster) NewProber(topic string, partitions int32) *Prober {
	c.t.Helper()
	pr := &Prober{t: c.t, topic: topic, cl: c.Client(c.t, manualPartitions,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Generous: on a loaded 2-core CI machine under -race a frozen leader's
		// in-flight request can hold an idempotent partition for long.
		kgo.RecordDeliveryTimeout(90*time.Second),
		// A paused leader holds requests: give up on it soon.
		kgo.ProduceRequestTimeout(2*time.Second), kgo.RequestTimeoutOverhead(time.Second))}
	var parts []int32
	for p := range partitions {
		parts = append(parts, p)
	}
	pr.Produce(parts, time.Now())
	return pr
}

// Produce sends one record to each of parts concurrently, and returns how
// long after since the last of them was acknowledged.
func (pr *Prober) Produce(parts []int32, since time.Time) time.Duration {
	pr.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, p := range parts {
		pr.n++
		recs = append(recs, &kgo.Record{Topic: pr.topic, Partition: p, Value: []byte(fmt.Sprintf("probe-%d", pr.n))})
	}
	if err := pr.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		pr.t.Fatalf("probe produce to %s%v: %v", pr.topic, parts, err)
	}
	return time.Since(since)
}

// Settle finishes the load, waits for a full ISR, checks every acknowledged
// record (verify) and compares the replicas' logs below the high watermark.
func (c *Cluster) Settle(ld *clusterLoad, rf int) {
	c.t.Helper()
	ld.finish()
	c.WaitISR(ld.topic, ld.partitions, rf, clusterSettleTimeout)
	b := c.serving()[0]
	ld.verify(b)
	c.CompareReplicas(ld.topic, ld.partitions)
}

// batchSpan is one whole record batch of a replica's log.
type batchSpan struct {
	base, last int64
	raw        []byte
}

// readReplicaLog reads the complete batches of every segment of a replica's
// partition directory, in offset order. An incomplete tail (a write in
// progress) is ignored.
func readReplicaLog(dir string) ([]batchSpan, error) {
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(segs) // %020d names sort by base offset
	var out []batchSpan
	for _, seg := range segs {
		data, err := os.ReadFile(seg)
		if err != nil {
			return nil, err
		}
		for pos := 0; len(data)-pos >= 61; {
			h := data[pos:]
			size := int(binary.BigEndian.Uint32(h[8:])) + 12
			if size < 61 || pos+size > len(data) {
				break
			}
			base := int64(binary.BigEndian.Uint64(h[0:]))
			lastDelta := int64(binary.BigEndian.Uint32(h[23:]))
			out = append(out, batchSpan{base: base, last: base + lastDelta, raw: h[:size]})
			pos += size
		}
	}
	return out, nil
}

// CompareReplicas requires every replica of every partition of topic to hold
// the same bytes, batch for batch, for offsets below the high watermark: what
// the leader has committed is on every ISR member verbatim, with no gap.
// The ISR must be full (WaitISR) and the load finished.
func (c *Cluster) CompareReplicas(topic string, partitions int32) {
	c.t.Helper()
	hws := endOffsets(c.t, c.Admin(c.t), topic)
	v, err := c.View(topic)
	if err != nil {
		c.t.Fatal(err)
	}
	for p := range partitions {
		logs := map[int32][]batchSpan{}
		for _, node := range v.Parts[p].Replicas {
			dir := filepath.Join(c.Node(node).Dir, fmt.Sprintf("%s-%d", topic, p))
			if logs[node], err = readReplicaLog(dir); err != nil {
				c.t.Fatalf("reading replica %d of %s[%d]: %v", node, topic, p, err)
			}
		}
		c.compareBatches(topic, p, v.Parts[p].Replicas, logs, 0, hws[p])
	}
}

// compareBatches requires the batches of every replica in logs covering
// [lo, hw) to run on without gap or overlap from lo to hw and to be the same
// bytes on every replica.
func (c *Cluster) compareBatches(topic string, p int32, replicas []int32, logs map[int32][]batchSpan, lo, hw int64) {
	c.t.Helper()
	var ref []byte
	var refNode int32
	for _, node := range replicas {
		var buf []byte
		next := lo
		for _, b := range logs[node] {
			if b.base < lo {
				continue
			}
			if b.last >= hw {
				break
			}
			if b.base != next {
				c.t.Fatalf("replica %d of %s[%d]: batch at offset %d follows offset %d: gap, overlap or batch boundaries differing from the replicas' common start %d (high watermark %d)",
					node, topic, p, b.base, next-1, lo, hw)
			}
			buf = append(buf, b.raw...)
			next = b.last + 1
		}
		if next != hw {
			c.t.Fatalf("replica %d of %s[%d]: whole batches from %d end at offset %d, want the high watermark %d", node, topic, p, lo, next, hw)
		}
		if ref == nil {
			ref, refNode = buf, node
			continue
		}
		if !bytes.Equal(ref, buf) {
			i := 0
			for i < min(len(ref), len(buf)) && ref[i] == buf[i] {
				i++
			}
			c.t.Fatalf("%s[%d]: replicas %d and %d differ in [%d, %d) (%d and %d bytes, first difference at byte %d)",
				topic, p, refNode, node, lo, hw, len(ref), len(buf), i)
		}
	}
	c.t.Logf("%s[%d]: %d replicas identical in [%d, %d) (%d bytes)", topic, p, len(replicas), lo, hw, len(ref))
}

// KillAndWait kills b with SIGKILL and waits for the process to be gone.
func (c *Cluster) KillAndWait(b *Broker) {
	c.t.Helper()
	if err := b.Broker.Kill(); err != nil {
		c.t.Fatalf("kill -9 broker %d: %v", c.NodeID(b), err)
	}
}
