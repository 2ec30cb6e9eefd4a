package repl

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sedimentio/sediment/segment"
)

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// cluster resolves broker ids to fake leaders' addresses and counts lookups.
type cluster struct {
	mu      sync.Mutex
	addrs   map[int32]string
	lookups map[int32]int
}

func newCluster() *cluster {
	return &cluster{addrs: map[int32]string{}, lookups: map[int32]int{}}
}

func (c *cluster) set(id int32, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addrs[id] = addr
}

func (c *cluster) resolve(id int32) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups[id]++
	a, ok := c.addrs[id]
	return a, ok
}

func (c *cluster) lookupCount(id int32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups[id]
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestManager(t *testing.T, cfg Config, c *cluster) *Manager {
	t.Helper()
	m, err := NewManager(cfg, c.resolve, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// openLog opens a follower log with small segments, so catching up rolls many of them.
func openLog(t *testing.T) *segment.Log {
	t.Helper()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.Flush = segment.FlushOS
	l, err := segment.Open(t.TempDir(), cfg, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// logBytes is the follower log's content: its segment files, concatenated.
func logBytes(t *testing.T, l *segment.Log) []byte {
	t.Helper()
	var out []byte
	for _, s := range l.Segments() {
		b, err := os.ReadFile(s.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[:s.Size]...)
	}
	return out
}

// hwRecorder records the high watermarks a replica is given.
type hwRecorder struct {
	mu   sync.Mutex
	last int64
	bad  error
	l    *segment.Log
}

func (h *hwRecorder) set(hw int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hw > h.l.LogEndOffset() && h.bad == nil {
		h.bad = fmt.Errorf("high watermark %d above the log end %d", hw, h.l.LogEndOffset())
	}
	h.last = hw
}

func (h *hwRecorder) get() (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, h.bad
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(timeout, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds or timeout passes; safe off the test goroutine.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// testReplica is one followed partition in a test.
type testReplica struct {
	p   *fakePart // on the leader
	l   *segment.Log
	hw  *hwRecorder
	key PartitionKey
}

func (f *testReplica) replica(leader int32, epoch int32) Replica {
	return Replica{
		Topic: f.p.topic, TopicID: f.p.id, Partition: f.p.part, Leader: leader, LeaderEpoch: epoch,
		Log: f.l, SetHighWatermark: f.hw.set,
	}
}

func newFollower(t *testing.T, p *fakePart) *testReplica {
	l := openLog(t)
	return &testReplica{p: p, l: l, hw: &hwRecorder{l: l, last: -1}, key: PartitionKey{p.id, p.part}}
}

// caughtUp reports whether the follower holds exactly the leader's log and its high
// watermark reached the end.
func (f *testReplica) caughtUp(t *testing.T, fl *fakeLeader) bool {
	fl.mu.Lock()
	end := f.p.end
	want := f.p.bytes()
	fl.mu.Unlock()
	hw, err := f.hw.get()
	if err != nil {
		t.Fatal(err)
	}
	if f.l.LogEndOffset() != end || hw != end {
		return false
	}
	if got := logBytes(t, f.l); !bytes.Equal(got, want) {
		t.Fatalf("%v: follower log differs from the leader's (%d vs %d bytes)", f.key, len(got), len(want))
	}
	return true
}

// (1) A follower catches up from empty across many batches and partitions, over one
// connection, for each way of naming the replica and the topics.
func TestCatchUp(t *testing.T) {
	for _, fetchMax := range []int16{12, 13, 16} {
		t.Run(fmt.Sprintf("fetch v%d", fetchMax), func(t *testing.T) {
			fl := newFakeLeader(t)
			fl.fetchMax = fetchMax
			c := newCluster()
			c.set(1, fl.Addr())
			cfg := testConfig()
			cfg.PartitionMaxBytes = 3000 // many rounds, with partial tails
			m := newTestManager(t, cfg, c)

			var fs []*testReplica
			for _, topic := range []string{"orders", "payments"} {
				for part := range int32(3) {
					p := fl.addPartition(topic, part, 5, 0)
					fl.do(func() { p.appendN(120, 1+int(part), topic) })
					fs = append(fs, newFollower(t, p))
				}
			}
			for _, f := range fs {
				m.Follow(f.replica(1, 5))
			}
			waitFor(t, 20*time.Second, "catch-up", func() bool {
				for _, f := range fs {
					if !f.caughtUp(t, fl) {
						return false
					}
				}
				return true
			})
			// New data keeps flowing.
			fl.do(func() { fs[0].p.appendN(3, 2, "more") })
			waitFor(t, 10*time.Second, "new data", func() bool { return fs[0].caughtUp(t, fl) })

			if n := fl.acceptedConns(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
			fl.mu.Lock()
			maxParts, ids := fl.maxParts, fl.replicaID
			fl.mu.Unlock()
			if maxParts != len(fs) {
				t.Errorf("at most %d partitions per fetch, want %d", maxParts, len(fs))
			}
			for _, id := range ids {
				if id != cfg.NodeID {
					t.Fatalf("fetch with replica id %d, want %d", id, cfg.NodeID)
				}
			}
			var total int
			for _, f := range fs {
				total += len(f.p.bytes())
				if l := m.Lag()[f.key]; l != 0 {
					t.Errorf("%v: lag %d", f.key, l)
				}
			}
			if got := value(m.metrics.bytes[0]); got != float64(total) || value(m.metrics.bytes[1]) != got {
				t.Errorf("fetch_bytes_total %v (replicationbytesin_total %v), want %d", got, value(m.metrics.bytes[1]), total)
			}
			if n := fl.count(epochKey); n != 0 {
				t.Errorf("%d OffsetForLeaderEpoch requests for empty logs", n)
			}
		})
	}
}

// appendFollower writes batches to a follower log, as an earlier leader would have.
func appendFollower(t *testing.T, l *segment.Log, batches ...[]byte) {
	t.Helper()
	for _, b := range batches {
		if err := l.AppendFollower(b); err != nil {
			t.Fatal(err)
		}
	}
}

// (2) A divergent tail is truncated, then the follower matches the leader byte for byte.
func TestDivergentTail(t *testing.T) {
	t.Run("KIP-101", func(t *testing.T) {
		// Follower: epoch 0 at 0-9, then 10-14 written as leader in epoch 1 and never
		// replicated. The new leader took over in epoch 2 at 10.
		for _, noEpochAPI := range []bool{false, true} {
			name := "OffsetForLeaderEpoch"
			if noEpochAPI {
				name = "DivergingEpoch"
			}
			t.Run(name, func(t *testing.T) {
				fl := newFakeLeader(t)
				fl.noEpochAPI = noEpochAPI
				p := fl.addPartition("t", 0, 0, 0)
				shared := [][]byte{batch(0, 0, 5, "s"), batch(5, 0, 5, "s")}
				fl.do(func() {
					for _, b := range shared {
						p.appendRaw(b)
					}
					p.becomeLeader(2)
					p.appendN(4, 3, "leader")
				})
				f := newFollower(t, p)
				appendFollower(t, f.l, shared...)
				appendFollower(t, f.l, batch(10, 1, 5, "lost"))
				c := newCluster()
				c.set(1, fl.Addr())
				m := newTestManager(t, testConfig(), c)
				m.Follow(f.replica(1, 2))
				waitFor(t, 10*time.Second, "convergence", func() bool { return f.caughtUp(t, fl) })
				if got := value(m.metrics.truncations.WithLabelValues("divergence")); got != 1 {
					t.Errorf("%v divergence truncations, want 1", got)
				}
				if e := f.l.LatestEpoch(); e != 2 {
					t.Errorf("latest epoch %d, want 2", e)
				}
				if noEpochAPI && fl.count(epochKey) != 0 {
					t.Error("OffsetForLeaderEpoch used although not advertised")
				}
			})
		}
	})
	t.Run("KIP-279 two rounds", func(t *testing.T) {
		// Follower: epoch 0 at 0-9, epoch 1 at 10-14, epoch 3 at 15-19. Leader: epoch 0 at
		// 0-9, epoch 1 at 10-11 (replicated from the follower), epoch 2 at 12-19, and now
		// epoch 4. The leader does not know epoch 3; the follower does not know epoch 2.
		fl := newFakeLeader(t)
		p := fl.addPartition("t", 0, 0, 0)
		shared := [][]byte{batch(0, 0, 10, "s"), batch(10, 1, 2, "s")}
		fl.do(func() {
			for _, b := range shared {
				p.appendRaw(b)
			}
			p.becomeLeader(2)
			p.appendN(2, 4, "e2")
			p.becomeLeader(4)
			p.appendN(1, 5, "e4")
		})
		f := newFollower(t, p)
		appendFollower(t, f.l, shared...)
		appendFollower(t, f.l, batch(12, 1, 3, "lost1"), batch(15, 3, 5, "lost3"))
		c := newCluster()
		c.set(1, fl.Addr())
		m := newTestManager(t, testConfig(), c)
		m.Follow(f.replica(1, 4))
		waitFor(t, 10*time.Second, "convergence", func() bool { return f.caughtUp(t, fl) })
		if n := fl.count(epochKey); n != 2 {
			t.Errorf("%d OffsetForLeaderEpoch requests, want 2", n)
		}
		if got := value(m.metrics.truncations.WithLabelValues("divergence")); got != 2 {
			t.Errorf("%v divergence truncations, want 2", got)
		}
	})
}

// (3) Follow with a new leader moves the partition to that leader's fetcher; the old
// leader's connection closes once it has no partitions left.
func TestLeaderChange(t *testing.T) {
	a, b := newFakeLeader(t), newFakeLeader(t)
	c := newCluster()
	c.set(1, a.Addr())
	c.set(2, b.Addr())
	m := newTestManager(t, testConfig(), c)

	var fs []*testReplica
	var onB []*fakePart
	for part := range int32(2) {
		pa := a.addPartition("t", part, 1, 0)
		pb := b.addPartition("t", part, 1, 0)
		a.do(func() {
			for _, x := range pa.appendN(30, 2, "a") {
				b.do(func() { pb.appendRaw(x) })
			}
		})
		f := newFollower(t, pa)
		fs = append(fs, f)
		onB = append(onB, pb)
		m.Follow(f.replica(1, 1))
	}
	for _, f := range fs {
		waitFor(t, 10*time.Second, "catch-up from A", func() bool { return f.caughtUp(t, a) })
	}

	// Partition 0 moves to B in epoch 2; A is no longer its leader.
	a.do(func() { fs[0].p.err = 6 }) // NOT_LEADER_OR_FOLLOWER
	b.do(func() { onB[0].becomeLeader(2); onB[0].appendN(10, 3, "b") })
	m.Follow(fs[0].replica(2, 2))
	fs[0].p = onB[0]
	waitFor(t, 10*time.Second, "catch-up from B", func() bool { return fs[0].caughtUp(t, b) })
	before := a.fetchCount(fs[0].key)
	p1 := a.fetchCount(fs[1].key)
	a.do(func() {
		for _, x := range fs[1].p.appendN(2, 1, "a-more") {
			b.do(func() { onB[1].appendRaw(x) }) // B replicates partition 1 too
		}
	})
	waitFor(t, 10*time.Second, "partition 1 still from A", func() bool { return fs[1].caughtUp(t, a) })
	waitFor(t, 10*time.Second, "more fetches of partition 1", func() bool { return a.fetchCount(fs[1].key) > p1+2 })
	if after := a.fetchCount(fs[0].key); after != before {
		t.Fatalf("A was asked for moved partition 0 %d more times", after-before)
	}
	if b.fetchCount(fs[1].key) != 0 {
		t.Fatal("B was asked for partition 1")
	}

	// Partition 1 moves too: A's fetcher retires and closes its connection.
	b.do(func() { onB[1].becomeLeader(2) })
	m.Follow(fs[1].replica(2, 2))
	fs[1].p = onB[1]
	waitFor(t, 10*time.Second, "A's connection closed", func() bool { return a.openConns() == 0 })
	waitFor(t, 10*time.Second, "catch-up from B", func() bool { return fs[1].caughtUp(t, b) })
	if n := b.acceptedConns(); n != 1 {
		t.Errorf("%d connections to B, want 1", n)
	}
}

// (4) OFFSET_OUT_OF_RANGE below the leader's log start restarts the follower's log there.
func TestOutOfRangeBelowLogStart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		leaderFrom int64 // first batch on the leader
		logStart   int64 // leader's log start, inside that batch when above leaderFrom
	}{
		{"at a batch boundary", 100, 100},
		{"inside a batch (KAFKA-6977)", 100, 102},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := newFakeLeader(t)
			p := fl.addPartition("t", 0, 0, tc.leaderFrom)
			fl.do(func() {
				p.appendN(20, 5, "kept")
				p.start = tc.logStart
			})
			f := newFollower(t, p)
			// The follower has old data that the leader has since deleted.
			appendFollower(t, f.l, batch(0, 0, 10, "old"), batch(10, 0, 10, "old"))
			c := newCluster()
			c.set(1, fl.Addr())
			m := newTestManager(t, testConfig(), c)
			m.Follow(f.replica(1, 0))
			waitFor(t, 10*time.Second, "catch-up", func() bool { return f.caughtUp(t, fl) })
			if s := f.l.LogStartOffset(); s != tc.logStart {
				t.Errorf("follower log start %d, want %d", s, tc.logStart)
			}
			if got := value(m.metrics.truncations.WithLabelValues("reset")); got < 1 {
				t.Errorf("%v resets", got)
			}
		})
	}
}

// guardLog fails the test if the Manager uses the log after Unfollow returned.
type guardLog struct {
	*segment.Log
	t    *testing.T
	dead atomic.Bool
}

func (g *guardLog) check(op string) {
	if g.dead.Load() {
		g.t.Errorf("%s after Unfollow", op)
	}
}

func (g *guardLog) LogStartOffset() int64 { g.check("LogStartOffset"); return g.Log.LogStartOffset() }
func (g *guardLog) LogEndOffset() int64   { g.check("LogEndOffset"); return g.Log.LogEndOffset() }
func (g *guardLog) LatestEpoch() int32    { g.check("LatestEpoch"); return g.Log.LatestEpoch() }
func (g *guardLog) AppendFollower(b []byte) error {
	g.check("AppendFollower")
	return g.Log.AppendFollower(b)
}
func (g *guardLog) TruncateTo(o int64) error { g.check("TruncateTo"); return g.Log.TruncateTo(o) }
func (g *guardLog) TruncateFullyAndStartAt(o int64) error {
	g.check("TruncateFullyAndStartAt")
	return g.Log.TruncateFullyAndStartAt(o)
}
func (g *guardLog) EndOffsetForEpoch(e int32) (int32, int64) {
	g.check("EndOffsetForEpoch")
	return g.Log.EndOffsetForEpoch(e)
}
func (g *guardLog) DeleteRecordsBefore(o int64) (int64, error) {
	g.check("DeleteRecordsBefore")
	return g.Log.DeleteRecordsBefore(o)
}

// (5) Unfollow while fetching: once it returns the log is the caller's alone.
func TestUnfollowWhileFetching(t *testing.T) {
	fl := newFakeLeader(t)
	c := newCluster()
	c.set(1, fl.Addr())
	cfg := testConfig()
	cfg.PartitionMaxBytes = 1500
	m := newTestManager(t, cfg, c)

	const parts = 6
	var guards []*guardLog
	var ps []*fakePart
	for i := range int32(parts) {
		p := fl.addPartition("busy", i, 3, 0)
		fl.do(func() { p.appendN(400, 4, "busy") })
		g := &guardLog{Log: openLog(t), t: t}
		guards = append(guards, g)
		ps = append(ps, p)
		m.Follow(Replica{Topic: p.topic, TopicID: p.id, Partition: i, Leader: 1, LeaderEpoch: 3, Log: g, SetHighWatermark: func(int64) {}})
	}
	var wg sync.WaitGroup
	for i, g := range guards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Let it fetch a little (different amounts per partition), then take it back.
			if !eventually(10*time.Second, func() bool { return g.Log.LogEndOffset() > int64(20*(i+1)) }) {
				t.Error("partition did not start fetching")
			}
			m.Unfollow(ps[i].id, int32(i))
			g.dead.Store(true)
			// The log is ours: truncate it and append as a leader would.
			if err := g.Log.TruncateTo(4); err != nil {
				t.Error(err)
			}
			if _, err := g.Log.AppendLeader(batch(0, 9, 1, "mine"), 9); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	before := fl.count(fetchKey)
	// Nothing is fetched or touched any more; the fetcher retired with its connection.
	waitFor(t, 5*time.Second, "connection closed", func() bool { return fl.openConns() == 0 })
	time.Sleep(3 * cfg.MaxWait)
	if after := fl.count(fetchKey); after > before+1 {
		t.Errorf("%d fetches after every partition was unfollowed", after-before)
	}
	for _, g := range guards {
		if g.Log.LogEndOffset() != 5 {
			t.Errorf("log end %d after the caller's truncate and append", g.Log.LogEndOffset())
		}
	}
	if len(m.Lag()) != 0 {
		t.Error("Lag lists unfollowed partitions")
	}
	m.Unfollow(ps[0].id, 0) // again: a no-op
}

// Close while fetching stops every fetcher; Follow after Close does nothing.
func TestCloseWhileFetching(t *testing.T) {
	fl := newFakeLeader(t)
	c := newCluster()
	c.set(1, fl.Addr())
	cfg := testConfig()
	cfg.PartitionMaxBytes = 1000
	m, err := NewManager(cfg, c.resolve, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := fl.addPartition("t", 0, 1, 0)
	fl.do(func() { p.appendN(500, 4, "x") })
	g := &guardLog{Log: openLog(t), t: t}
	m.Follow(Replica{Topic: "t", TopicID: p.id, Leader: 1, LeaderEpoch: 1, Log: g})
	waitFor(t, 10*time.Second, "fetching", func() bool { return g.Log.LogEndOffset() > 0 })
	m.Close()
	g.dead.Store(true)
	m.Follow(Replica{Topic: "t", TopicID: p.id, Leader: 1, LeaderEpoch: 2, Log: g})
	waitFor(t, 5*time.Second, "connection closed", func() bool { return fl.openConns() == 0 })
	m.Close()
}

// (6) A leader that is down is retried with exponential backoff, never in a busy loop, and
// replication resumes when it comes back.
func TestLeaderDownBackoff(t *testing.T) {
	cfg := testConfig()
	cfg.Backoff = 40 * time.Millisecond // caps at 400ms
	c := newCluster()
	m := newTestManager(t, cfg, c)

	// The leader's address is unknown at first, then refuses connections, then accepts
	// and hangs up at once.
	fl := newFakeLeader(t)
	p := fl.addPartition("t", 0, 1, 0)
	fl.do(func() { p.appendN(10, 2, "x") })
	f := newFollower(t, p)
	m.Follow(f.replica(1, 1))

	ln := newFakeLeader(t)
	dead := ln.Addr()
	ln.Close()
	time.Sleep(300 * time.Millisecond)
	c.set(1, dead)
	time.Sleep(900 * time.Millisecond)
	n := c.lookupCount(1)
	// 1.2s at 40, 80, 160, 320, 400, 400... ms: about 6 attempts; a busy loop makes thousands.
	if n < 3 || n > 12 {
		t.Fatalf("%d connection attempts in 1.2s", n)
	}

	hangup := newFakeLeader(t)
	hangup.mu.Lock()
	hangup.closeOnAccept = true
	hangup.mu.Unlock()
	c.set(1, hangup.Addr())
	time.Sleep(time.Second)
	if n := hangup.acceptedConns(); n < 1 || n > 5 {
		t.Fatalf("%d connections in 1s to a leader that hangs up", n)
	}
	if f.l.LogEndOffset() != 0 {
		t.Fatal("fetched from nowhere")
	}
	if got := value(m.metrics.errors.WithLabelValues("connection")); got < 3 {
		t.Errorf("%v connection errors counted", got)
	}

	// The leader is back: replication resumes within the capped backoff.
	c.set(1, fl.Addr())
	waitFor(t, 5*time.Second, "catch-up", func() bool { return f.caughtUp(t, fl) })

	// It goes down while connected, and comes back at another address.
	fl2 := newFakeLeader(t)
	fl.mu.Lock()
	p2 := &fakePart{}
	*p2 = *p
	p2.batches = append([][]byte(nil), p.batches...)
	p2.epochs = append([]fakeEpoch(nil), p.epochs...)
	fl.mu.Unlock()
	fl2.do(func() { fl2.parts[f.key] = p2; p2.appendN(5, 2, "y") })
	fl.Close()
	c.set(1, fl2.Addr())
	f.p = p2
	waitFor(t, 5*time.Second, "catch-up after reconnect", func() bool { return f.caughtUp(t, fl2) })
}

// Partition errors back off that partition only; a fenced epoch waits for a new Follow.
func TestPartitionErrors(t *testing.T) {
	fl := newFakeLeader(t)
	c := newCluster()
	c.set(1, fl.Addr())
	cfg := testConfig()
	m := newTestManager(t, cfg, c)

	good := fl.addPartition("t", 0, 3, 0)
	fenced := fl.addPartition("t", 1, 3, 0)
	ahead := fl.addPartition("t", 2, 3, 0) // the follower knows epoch 4 before the leader
	fl.do(func() {
		good.appendN(5, 1, "g")
		fenced.appendN(5, 1, "f")
		ahead.appendN(5, 1, "a")
	})
	fg, ff, fa := newFollower(t, good), newFollower(t, fenced), newFollower(t, ahead)
	m.Follow(fg.replica(1, 3))
	m.Follow(ff.replica(1, 2)) // stale epoch: FENCED_LEADER_EPOCH
	m.Follow(fa.replica(1, 4)) // UNKNOWN_LEADER_EPOCH: retried
	waitFor(t, 5*time.Second, "good partition", func() bool { return fg.caughtUp(t, fl) })
	time.Sleep(500 * time.Millisecond)
	if n := fl.fetchCount(ff.key); n != 1 {
		t.Errorf("fenced partition fetched %d times, want 1", n)
	}
	if n := fl.fetchCount(fa.key); n < 2 || n > 10 {
		t.Errorf("partition with an unknown epoch fetched %d times in 0.5s", n)
	}
	if ff.l.LogEndOffset() != 0 || fa.l.LogEndOffset() != 0 {
		t.Fatal("fetched data despite errors")
	}
	// The leader catches up with epoch 4; a new Follow restarts the fenced partition.
	fl.do(func() { ahead.becomeLeader(4) })
	m.Follow(ff.replica(1, 3))
	waitFor(t, 5*time.Second, "fenced partition after Follow", func() bool { return ff.caughtUp(t, fl) })
	waitFor(t, 5*time.Second, "partition after the leader learned epoch 4", func() bool { return fa.caughtUp(t, fl) })
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"negative node id": func(c *Config) { c.NodeID = -1 },
		"no max wait":      func(c *Config) { c.MaxWait = 0 },
		"huge max bytes":   func(c *Config) { c.MaxBytes = 1 << 30 },
		"no backoff":       func(c *Config) { c.Backoff = 0 },
		"no part bytes":    func(c *Config) { c.PartitionMaxBytes = 0 },
		"no dial timeout":  func(c *Config) { c.DialTimeout = 0 },
		"no socket timeout": func(c *Config) {
			c.SocketTimeout = 0
		},
	} {
		c := DefaultConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewManager(DefaultConfig(), nil, nil, nil); err == nil {
		t.Error("nil resolver accepted")
	}
}
