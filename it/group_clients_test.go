package it

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// TestGroupClients runs each real client's consumer group against one
// 3-broker cluster, every client in its own subtest, topic (12 partitions,
// RF=3) and group: three members share the partitions while two producers
// write; one member leaves cleanly mid-stream, then another dies without
// leaving (its session must expire); the last one consumes the rest,
// commits and leaves. Every produced record must be consumed, with no gap
// and no duplicate within one member's assignment of a partition (so
// duplicates only across rebalances), each assignment starting no lower
// than the offsets seen committed before; committed offsets never go
// backwards (kafka-go excepted: see kafkaGoGroupClient), and at the end
// they are the end offsets.
func TestGroupClients(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3, groupBrokerFlags...)
	clients := []groupClient{
		franzGroupClient("franz-eager", kgo.Balancers(kgo.RangeBalancer())),
		franzGroupClient("franz-cooperative", kgo.Balancers(kgo.CooperativeStickyBalancer())),
		saramaGroupClient(),
		kafkaGoGroupClient(),
		kcatGroupClient(),
		confluentGroupClient(),
	}
	for _, gc := range clients {
		c.CreateTopic(groupTopic(gc.name), groupPartitions, 3, nil)
	}
	for _, gc := range clients {
		t.Run(gc.name, func(t *testing.T) {
			t.Parallel()
			runGroupScenario(t, c, gc, describeClassic)
		})
	}
}

func groupTopic(client string) string { return "grp-" + client }

// groupMember is one member of a group under test, driven by one client.
type groupMember interface {
	// Leave commits what the member consumed and leaves the group; it
	// returns once the member is gone.
	Leave()
	// Kill ends the member at once without leaving the group, as a crash
	// would: the coordinator must expire its session.
	Kill()
}

// groupClient makes the members of one client library.
type groupClient struct {
	name string
	// require ends the test when the client cannot run here (a missing
	// tool); nil when it always can.
	require func(t testing.TB)
	// staleCommits says the client may commit, in a new generation,
	// offsets it read in the previous one, of partitions that are now
	// another member's (the classic protocol fences commits by generation,
	// not by assignment): a committed offset may then go back, and the next
	// assignment start below what was committed before. The ledger counts
	// these instead of failing.
	staleCommits bool
	// idleLeave says a member can only leave cleanly while it has nothing
	// to consume: the scenario pauses the producers and waits until every
	// record is consumed first.
	idleLeave bool
	// start starts member name of r's group; crash says the member will be
	// killed rather than leave.
	start func(t testing.TB, r *groupRun, name string, crash bool) groupMember
}

// groupRun is one group consuming one topic of a cluster.
type groupRun struct {
	c      *Cluster
	topic  string
	group  string
	ledger *groupLedger
}

// runGroupScenario runs the group scenario of TestGroupClients with gc's
// members; describe tells how the coordinator sees the group.
func runGroupScenario(t *testing.T, c *Cluster, gc groupClient,
	describeWith func(cl *kgo.Client, group, topic string) func(context.Context) (groupView, error)) {
	if gc.require != nil {
		gc.require(t)
	}
	start := time.Now()
	phase := func(format string, args ...any) {
		t.Logf("%6.1fs: %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	topic := groupTopic(gc.name)
	r := &groupRun{c: c, topic: topic, group: topic + "-group", ledger: newGroupLedger(t, topic, groupPartitions)}
	r.ledger.staleCommits = gc.staleCommits
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	describe := describeWith(cl, r.group, topic)
	stopSampling := sampleCommits(cl, r.group, r.ledger, 100*time.Millisecond)
	t.Cleanup(stopSampling)
	c.logGroupOnFailure(t, r.group)
	prod := c.startGroupProducers(t, 2, 100, r.ledger)

	m1 := gc.start(t, r, "m1", false)
	m2 := gc.start(t, r, "m2", true)
	m3 := gc.start(t, r, "m3", false)
	waitGroupView(t, describe, "stable with 3 members", groupSettle, stableWith(3))
	n := r.ledger.waitConsumed(100, groupSettle)
	phase("3 members stable, %d records consumed", n)

	if gc.idleLeave {
		prod.pause()
		r.ledger.waitAcked(groupSettle)
		m1.Leave()
		prod.resume()
	} else {
		m1.Leave()
	}
	expectMembers(t, describe, 2, "right after m1 left (a clean leave removes it at once)")
	waitGroupView(t, describe, "stable with 2 members", groupSettle, stableWith(2))
	n = r.ledger.waitConsumed(r.ledger.consumedCount()+100, groupSettle)
	phase("m1 left; 2 members stable, %d records consumed", n)

	m2.Kill()
	expectMembers(t, describe, 2, "right after m2 was killed (it did not leave, its session runs on)")
	waitGroupView(t, describe, "stable with 1 member (m2's session expired)", groupSettle, stableWith(1))
	n = r.ledger.waitConsumed(r.ledger.consumedCount()+100, groupSettle)
	phase("m2 killed and expired; 1 member stable, %d records consumed", n)

	prod.finish()
	r.ledger.requireNoProduceFailures()
	ends := endOffsets(t, adm, topic)
	r.ledger.waitAll(ends, groupSettle)
	phase("producers done; every record consumed")
	m3.Leave()
	waitGroupView(t, describe, "empty", groupSettle, func(v groupView) bool { return v.State == "Empty" && len(v.Members) == 0 })
	stopSampling()
	requireCommittedAtEnd(t, cl, r.group, topic, ends)
	r.ledger.verify(ends)
	phase("m3 left; the group is empty, its committed offsets are the end offsets")
}

// expectMembers requires the group, described right now, to have no more
// than n members: a member that has just left must be gone at once. Fewer
// is only logged (under load a member's session may expire), and so is an
// answer that comes too late to tell.
func expectMembers(t testing.TB, describe func(context.Context) (groupView, error), n int, when string) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), groupSession/2)
	defer cancel()
	v, err := describe(ctx)
	switch {
	case err != nil || time.Since(start) > groupSession/2:
		t.Logf("group not described in time %s (%v): not checked", when, err)
	case len(v.Members) > n:
		t.Fatalf("%d members %s, want %d (%s)", len(v.Members), when, n, v)
	case len(v.Members) < n:
		t.Logf("%d members %s, expected %d (%s): a session expired meanwhile?", len(v.Members), when, n, v)
	}
}

// goMember is what the members of the in-process clients share: a
// goroutine consuming into the ledger (done when it returns), a context
// that stops it, a network that Kill cuts, and a count of the client's
// errors, logged when the test ends.
type goMember struct {
	t      testing.TB
	name   string
	dialer *cutDialer
	cancel context.CancelFunc
	done   chan struct{}
	killed atomic.Bool
	closed sync.WaitGroup // a killed member's Close

	errMu sync.Mutex
	errs  map[string]int // by what failed and why
}

// newGoMember returns a member and the context its goroutine runs under
// (see start).
func newGoMember(t testing.TB, name string) (*goMember, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	return &goMember{t: t, name: name, dialer: newCutDialer(), cancel: cancel, done: make(chan struct{}), errs: map[string]int{}}, ctx
}

// start runs consume, the member's goroutine; when the test ends, the
// goroutine is stopped and closeClient ends the client.
func (m *goMember) start(consume func(), closeClient func()) {
	go func() {
		defer close(m.done)
		consume()
	}()
	m.t.Cleanup(func() {
		m.killed.Store(true)
		m.stop()
		m.closed.Wait()
		closeClient()
		m.errMu.Lock()
		defer m.errMu.Unlock()
		if len(m.errs) > 0 {
			m.t.Logf("%s: client errors: %v", m.name, m.errs)
		}
	})
}

// failed counts an error of the client (what failed: err).
func (m *goMember) failed(what string, err error) {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	m.errs[what+": "+err.Error()]++
}

// stop stops the member's goroutine and waits for it.
func (m *goMember) stop() {
	m.cancel()
	<-m.done
}

// kill cuts the member's network, stops its goroutine and closes its
// client in the background: the close would leave the group, but no
// request gets out any more.
func (m *goMember) kill(closeClient func()) {
	m.dialer.Cut() // first: nothing it consumed from now on can be committed
	m.killed.Store(true)
	m.stop()
	m.closed.Go(closeClient)
}

// franzGroupClient is franz-go's consumer group with opts (a balancer).
// Rebalances are blocked while polled records are processed, so each
// member's assignment epochs (bumped by every assignment callback) are
// exact; offsets are autocommitted and committed on revoke.
func franzGroupClient(name string, opts ...kgo.Opt) groupClient {
	return groupClient{name: name, start: func(t testing.TB, r *groupRun, member string, _ bool) groupMember {
		return startFranzMember(t, r, member, opts...)
	}}
}

type franzMember struct {
	*goMember
	cl *kgo.Client

	mu     sync.Mutex
	epochs map[int32]int64 // by partition: assignment callbacks so far
}

func startFranzMember(t testing.TB, r *groupRun, name string, opts ...kgo.Opt) *franzMember {
	t.Helper()
	m := &franzMember{epochs: map[int32]int64{}}
	var ctx context.Context
	m.goMember, ctx = newGoMember(t, name)
	committed := func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			m.failed("autocommit", err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					m.failed("autocommit", err)
				}
			}
		}
	}
	bump := func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range parts[r.topic] {
			m.epochs[p]++
		}
	}
	revoked := func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
		bump(ctx, cl, parts)
		if !m.killed.Load() {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				m.failed("commit on revoke", err)
			}
		}
	}
	base := []kgo.Opt{
		kgo.ClientID("it-" + name),
		kgo.Dialer(m.dialer.DialContext),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.topic),
		kgo.SessionTimeout(groupSession),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.RebalanceTimeout(groupRebalance),
		kgo.AutoCommitInterval(groupCommitTick),
		kgo.AutoCommitCallback(committed),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(bump),
		kgo.OnPartitionsRevoked(revoked),
		kgo.OnPartitionsLost(bump),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if os.Getenv("SEDIMENT_IT_DEBUG") != "" {
		base = append(base, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return time.Now().UTC().Format("15:04:05.000 ") + name + " " })))
	}
	m.cl = r.c.Client(t, append(base, opts...)...)
	m.start(func() { m.consume(ctx, r) }, func() {}) // the cluster's Client closes cl
	return m
}

func (m *franzMember) consume(ctx context.Context, r *groupRun) {
	defer m.cl.AllowRebalance()
	for {
		fs := m.cl.PollFetches(ctx)
		// Whatever a poll returns counts as consumed for kgo's commits,
		// so it goes to the ledger even when ctx has just ended.
		m.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			if !m.killed.Load() {
				r.ledger.consume(m.name, m.epochs[rec.Partition], rec.Partition, rec.Offset, string(rec.Value))
			}
		})
		m.mu.Unlock()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) { m.failed("fetch", err) })
		m.cl.AllowRebalance()
	}
}

func (m *franzMember) Leave() {
	m.t.Helper()
	m.stop()
	ctx := testContext(m.t, 30*time.Second)
	if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
		m.t.Fatalf("%s: final commit: %v", m.name, err)
	}
	m.cl.Close() // leaves the group
}

func (m *franzMember) Kill() { m.kill(m.cl.Close) }

// saramaGroupClient is sarama's ConsumerGroup (sticky balance strategy,
// offsets marked per message and autocommitted); a member's assignment
// epoch is its session's generation.
func saramaGroupClient() groupClient {
	return groupClient{name: "sarama", start: func(t testing.TB, r *groupRun, name string, _ bool) groupMember {
		return startSaramaMember(t, r, name)
	}}
}

type saramaMember struct {
	*goMember
	cg sarama.ConsumerGroup
}

func startSaramaMember(t testing.TB, r *groupRun, name string) *saramaMember {
	t.Helper()
	m := &saramaMember{}
	var ctx context.Context
	m.goMember, ctx = newGoMember(t, name)
	cfg := sarama.NewConfig()
	cfg.ClientID = "it-" + name
	cfg.Version = sarama.V3_6_0_0
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = m.dialer
	cfg.Metadata.RefreshFrequency = time.Second
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = groupCommitTick
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = groupSession
	cfg.Consumer.Group.Heartbeat.Interval = groupHeartbeat
	cfg.Consumer.Group.Rebalance.Timeout = groupRebalance
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	cg, err := sarama.NewConsumerGroup(r.c.Addrs(), r.group, cfg)
	if err != nil {
		t.Fatalf("%s: sarama consumer group: %v", name, err)
	}
	m.cg = cg
	m.start(func() {
		h := saramaHandler{m: m, r: r}
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{r.topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				m.failed("Consume", err)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}, func() { _ = cg.Close() })
	return m
}

// saramaHandler consumes a session's claims into the ledger.
type saramaHandler struct {
	m *saramaMember
	r *groupRun
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	gen := int64(sess.GenerationID())
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok || h.m.killed.Load() {
				return nil
			}
			h.r.ledger.consume(h.m.name, gen, msg.Partition, msg.Offset, string(msg.Value))
			sess.MarkMessage(msg, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (m *saramaMember) Leave() {
	m.t.Helper()
	m.stop() // the session ended: its marked offsets are committed
	if err := m.cg.Close(); err != nil {
		m.t.Fatalf("%s: closing the consumer group: %v", m.name, err)
	}
}

func (m *saramaMember) Kill() { m.kill(func() { _ = m.cg.Close() }) }

// kafkaGoGroupClient is segmentio/kafka-go's Reader with a GroupID
// (round-robin balancer, each message committed asynchronously once the
// ledger has it). The Reader has no rebalance callback; a member's
// assignment epoch is the number of generations its Reader has joined,
// read after each message (a message of a new generation is only returned
// after the count has grown).
//
// kafka-go's commit queue outlives generations: a message read at the end
// of one is committed by the next one's commit loop, even when its
// partition has moved to another member, whose later commit it may
// overwrite (seen: the committed offset of a partition going from 19 back
// to 15, where the previous owner had stopped reading). Kafka accepts such
// commits too; the ledger tolerates them (staleCommits).
func kafkaGoGroupClient() groupClient {
	return groupClient{name: "kafkago", staleCommits: true, start: func(t testing.TB, r *groupRun, name string, _ bool) groupMember {
		return startKafkaGoMember(t, r, name)
	}}
}

type kafkaGoMember struct {
	*goMember
	rd *kafka.Reader
}

func startKafkaGoMember(t testing.TB, r *groupRun, name string) *kafkaGoMember {
	t.Helper()
	m := &kafkaGoMember{}
	var ctx context.Context
	m.goMember, ctx = newGoMember(t, name)
	m.rd = kafka.NewReader(kafka.ReaderConfig{
		Brokers:           r.c.Addrs(),
		GroupID:           r.group,
		Topic:             r.topic,
		Dialer:            &kafka.Dialer{ClientID: "it-" + name, Timeout: 3 * time.Second, DialFunc: m.dialer.DialContext},
		GroupBalancers:    []kafka.GroupBalancer{kafka.RoundRobinGroupBalancer{}},
		MaxWait:           500 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		CommitInterval:    groupCommitTick,
		HeartbeatInterval: groupHeartbeat,
		SessionTimeout:    groupSession,
		RebalanceTimeout:  groupRebalance,
		JoinGroupBackoff:  200 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
	})
	m.start(func() {
		var epoch int64
		for {
			msg, err := m.rd.FetchMessage(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				m.failed("FetchMessage", err)
				continue
			}
			epoch += m.rd.Stats().Rebalances
			if m.killed.Load() {
				continue
			}
			r.ledger.consume(name, epoch, int32(msg.Partition), msg.Offset, string(msg.Value))
			// Committed (asynchronously) only once the ledger has it.
			if err := m.rd.CommitMessages(ctx, msg); err != nil && ctx.Err() == nil {
				m.failed("CommitMessages", err)
			}
		}
	}, func() { _ = m.rd.Close() })
	return m
}

func (m *kafkaGoMember) Leave() {
	m.t.Helper()
	m.stop()
	if err := m.rd.Close(); err != nil { // commits what is pending, leaves
		m.t.Fatalf("%s: closing the reader: %v", m.name, err)
	}
}

func (m *kafkaGoMember) Kill() { m.kill(func() { _ = m.rd.Close() }) }

// kcatGroupClient is kcat's balanced consumer (-G, librdkafka), one
// process per member: leaving is SIGTERM (kcat closes its consumer:
// commits and leaves), killing SIGKILL. Its output interleaves records
// with librdkafka's rebalance notices (unbuffered, one thread), so a
// member's assignment epoch is the number of notices before a record.
//
// kcat leaves only when idle: librdkafka stores a message's offset when
// the poll returns it, but kcat drops a message polled after SIGTERM
// without printing it, then commits on close; leaving mid-stream would
// commit a record nobody saw.
func kcatGroupClient() groupClient {
	return groupClient{
		name:      "kcat",
		idleLeave: true,
		require:   func(t testing.TB) { requireCommand(t, "kcat") },
		start: func(t testing.TB, r *groupRun, name string, _ bool) groupMember {
			return startKcatMember(t, r, name)
		},
	}
}

type kcatMember struct {
	t      testing.TB
	name   string
	p      *harness.Process
	stop   chan struct{}
	done   chan struct{}
	killed atomic.Bool
}

func startKcatMember(t testing.TB, r *groupRun, name string) *kcatMember {
	t.Helper()
	bin := requireCommand(t, "kcat")
	log := filepath.Join(logDir(t), "kcat-"+name+".log")
	args := []string{"-b", strings.Join(r.c.Addrs(), ","), "-G", r.group, r.topic,
		"-u", "-f", `R %p %o %s\n`,
		"-X", "client.id=it-kcat-" + name,
		"-X", "auto.offset.reset=earliest",
		"-X", "partition.assignment.strategy=roundrobin",
		"-X", "session.timeout.ms=" + strconv.Itoa(int(groupSession/time.Millisecond)),
		"-X", "heartbeat.interval.ms=" + strconv.Itoa(int(groupHeartbeat/time.Millisecond)),
		"-X", "auto.commit.interval.ms=" + strconv.Itoa(int(groupCommitTick/time.Millisecond)),
		"-X", "fetch.wait.max.ms=500",
		"-X", "topic.metadata.refresh.interval.ms=1000",
	}
	p, err := harness.StartProcess(harness.Command{Name: "kcat " + name, Bin: bin, Args: args, Log: log})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m := &kcatMember{t: t, name: name, p: p, stop: make(chan struct{}), done: make(chan struct{})}
	go m.tail(r, log)
	t.Cleanup(func() {
		m.killed.Store(true)
		_ = p.Kill()
		m.finish()
		if t.Failed() {
			t.Logf("%s output (last lines):%s", name, p.LogTail())
		}
	})
	return m
}

// tail follows the member's output into the ledger until stop, reading
// what is left after it.
func (m *kcatMember) tail(r *groupRun, path string) {
	defer close(m.done)
	var (
		off     int64
		partial string
		epoch   int64
	)
	read := func() {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() <= off {
			return
		}
		buf := make([]byte, st.Size()-off)
		n, _ := f.ReadAt(buf, off)
		off += int64(n)
		lines := strings.Split(partial+string(buf[:n]), "\n")
		partial = lines[len(lines)-1]
		for _, line := range lines[:len(lines)-1] {
			if strings.Contains(line, "rebalanced") {
				epoch++
				continue
			}
			fields := strings.SplitN(line, " ", 4)
			if len(fields) != 4 || fields[0] != "R" {
				continue
			}
			p, err1 := strconv.ParseInt(fields[1], 10, 32)
			o, err2 := strconv.ParseInt(fields[2], 10, 64)
			if err1 != nil || err2 != nil {
				r.ledger.mu.Lock()
				r.ledger.violateLocked("%s: unreadable output line %q", m.name, line)
				r.ledger.mu.Unlock()
				continue
			}
			r.ledger.consume(m.name, epoch, int32(p), o, fields[3])
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			read()
			return
		case <-tick.C:
			read()
			if err := m.p.Alive(); err != nil && !m.killed.Load() {
				r.ledger.mu.Lock()
				r.ledger.violateLocked("%v", err)
				r.ledger.mu.Unlock()
				<-m.stop
				return
			}
		}
	}
}

// finish stops the tailer once it has read everything the process wrote.
func (m *kcatMember) finish() {
	select {
	case <-m.done:
	default:
		close(m.stop)
		<-m.done
	}
}

func (m *kcatMember) Leave() {
	m.t.Helper()
	m.killed.Store(true) // its exit is ours now
	if err := m.p.Stop(30 * time.Second); err != nil {
		m.t.Fatalf("%s: SIGTERM: %v", m.name, err)
	}
	m.finish()
}

func (m *kcatMember) Kill() {
	m.killed.Store(true)
	_ = m.p.Kill()
	m.finish()
}
