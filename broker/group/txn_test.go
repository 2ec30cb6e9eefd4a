package group

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
	etcdmeta "github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/meta/metatest"
	"github.com/sedimentio/sediment/segment"
)

// txnHarness is a coordinator over a real __consumer_offsets partition (one
// partition, this broker its leader) of a real partition layer on embedded
// etcd: records pass the log's validation, producer checks included, and
// are committed by its high watermark.
type txnHarness struct {
	t *testing.T
	c *Coordinator
	p *partition.Partition
}

const txnLeaderEpoch = 3

func newTxnHarness(t *testing.T) *txnHarness {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd")
	}
	dir := t.TempDir()
	store, cache := metatest.Start(t)
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := newTestCoordinator(t)
	pcfg := partition.DefaultConfig()
	pcfg.DataDir = filepath.Join(dir, "data")
	m, err := partition.New(pcfg, partition.Deps{Logger: logger, Store: store, Cache: cache, Roles: c,
		Settings: func(etcdmeta.Topic) (partition.TopicSettings, error) {
			return partition.TopicSettings{Log: segment.DefaultConfig(), MinInsyncReplicas: 1}, nil
		},
		Resolve: func(int32) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	rev, err := store.CreateTopic(ctx, etcdmeta.Topic{Name: OffsetsTopic, ID: etcdmeta.NewTopicID(), Partitions: [][]int32{{1}}},
		[]etcdmeta.PartitionState{{Leader: 1, LeaderEpoch: txnLeaderEpoch, ISR: []int32{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(); err != nil {
		t.Fatal(err)
	}
	p, err := m.Leader(OffsetsTopic, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	h := &txnHarness{t: t, c: c, p: p}
	h.waitLoaded(c)
	return h
}

func newTestCoordinator(t *testing.T) *Coordinator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	c, err := New(cfg, Deps{Partitions: func() int32 { return 1 }, Topics: func() []TopicInfo { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (h *txnHarness) waitLoaded(c *Coordinator) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, code := c.shardFor("g"); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the shard did not load")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reload elects a second coordinator over the same log, as a failover
// would, and returns it loaded.
func (h *txnHarness) reload() *Coordinator {
	h.t.Helper()
	c2 := newTestCoordinator(h.t)
	c2.Elected(h.p, txnLeaderEpoch)
	h.waitLoaded(c2)
	return c2
}

// txnReq is a TxnOffsetCommit of offsets of topic "t" (partition → offset).
type txnReq struct {
	version    int16
	group      string
	pid        int64
	epoch      int16
	generation int32
	member     string
	instance   *string
	offsets    map[int32]int64
}

func (h *txnHarness) txnCommit(c *Coordinator, r txnReq) map[int32]int16 {
	h.t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.TransactionalID, req.Group = r.version, "tx", r.group
	req.ProducerID, req.ProducerEpoch = r.pid, r.epoch
	req.Generation, req.MemberID, req.InstanceID = r.generation, r.member, r.instance
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p, o := range r.offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := c.TxnOffsetCommit(req)(ctx)
	out := map[int32]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.ErrorCode
		}
	}
	if len(out) != len(r.offsets) {
		h.t.Fatalf("response for %d partitions, asked %d: %+v", len(out), len(r.offsets), resp)
	}
	return out
}

// mustTxnCommit commits offsets in producer pid's transaction, unchecked.
func (h *txnHarness) mustTxnCommit(c *Coordinator, group string, pid int64, epoch int16, offsets map[int32]int64) {
	h.t.Helper()
	for p, code := range h.txnCommit(c, txnReq{version: 3, group: group, pid: pid, epoch: epoch, generation: -1, offsets: offsets}) {
		if code != 0 {
			h.t.Fatalf("txn commit of partition %d: %v", p, kerr.ErrorForCode(code))
		}
	}
}

// commit is a plain OffsetCommit of generation -1.
func (h *txnHarness) commit(c *Coordinator, group string, offsets map[int32]int64) {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range c.OffsetCommit(req)(ctx).Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				h.t.Fatalf("commit of partition %d: %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
}

// fetched is one partition's answer to OffsetFetch.
type fetched struct {
	offset int64
	code   int16
}

// fetch asks OffsetFetch v8 for partitions of topic "t".
func (h *txnHarness) fetch(c *Coordinator, group string, stable bool, partitions ...int32) map[int32]fetched {
	h.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.RequireStable = 8, stable
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = "t", partitions
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp := c.OffsetFetch(req)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		h.t.Fatalf("fetch: %+v", resp.Groups)
	}
	out := map[int32]fetched{}
	for _, t := range resp.Groups[0].Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = fetched{p.Offset, p.ErrorCode}
		}
	}
	return out
}

func (h *txnHarness) wantFetch(c *Coordinator, what, group string, stable bool, want map[int32]fetched) {
	h.t.Helper()
	var ps []int32
	for p := range want {
		ps = append(ps, p)
	}
	got := h.fetch(c, group, stable, ps...)
	for p, w := range want {
		if got[p] != w {
			h.t.Fatalf("%s: partition %d: got offset %d code %d, want offset %d code %d",
				what, p, got[p].offset, got[p].code, w.offset, w.code)
		}
	}
}

// marker writes producer pid's COMMIT or ABORT marker to the partition,
// waits until it is committed and tells the coordinator, as
// WriteTxnMarkers does.
func (h *txnHarness) marker(c *Coordinator, pid int64, epoch int16, commit bool) {
	h.t.Helper()
	res, err := h.p.AppendMarker(pid, epoch, commit, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.p.WaitCommitted(ctx, res.LastOffset+1, res.LeaderEpoch); err != nil {
		h.t.Fatal(err)
	}
	c.CompleteTransaction(0, pid, epoch, commit)
}

var unstable = fetched{-1, kerr.UnstableOffsetCommit.Code}

func none() fetched { return fetched{-1, 0} }

func at(o int64) fetched { return fetched{o, 0} }

// TestTxnOffsetsVisibility: pending offsets are invisible (the last
// committed offset, or UNSTABLE_OFFSET_COMMIT with require_stable); a
// COMMIT makes them visible, an ABORT drops them; a marker retried is a
// no-op, and the producer's later transactions continue (the sequences of
// its batches are what the log expects).
func TestTxnOffsetsVisibility(t *testing.T) {
	h := newTxnHarness(t)
	c := h.c
	h.commit(c, "g", map[int32]int64{0: 5})

	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{0: 10, 1: 20})
	h.wantFetch(c, "pending", "g", false, map[int32]fetched{0: at(5), 1: none()})
	h.wantFetch(c, "pending, stable", "g", true, map[int32]fetched{0: unstable, 1: unstable, 2: none()})
	// A second commit in the same transaction: the latest wins.
	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{0: 11})

	h.marker(c, 7, 0, true)
	h.wantFetch(c, "committed", "g", true, map[int32]fetched{0: at(11), 1: at(20)})
	h.marker(c, 7, 0, true) // retried
	h.wantFetch(c, "retried", "g", true, map[int32]fetched{0: at(11), 1: at(20)})

	// The producer's next transaction, aborted.
	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{0: 30, 1: 40})
	h.wantFetch(c, "pending again", "g", true, map[int32]fetched{0: unstable, 1: unstable})
	h.marker(c, 7, 0, false)
	h.wantFetch(c, "aborted", "g", true, map[int32]fetched{0: at(11), 1: at(20)})
	h.marker(c, 7, 0, false)
	h.wantFetch(c, "abort retried", "g", true, map[int32]fetched{0: at(11), 1: at(20)})

	// A new epoch (the producer re-initialised) starts its sequence anew.
	h.mustTxnCommit(c, "g", 7, 1, map[int32]int64{0: 50})
	h.marker(c, 7, 1, true)
	h.wantFetch(c, "new epoch", "g", false, map[int32]fetched{0: at(50)})
	// A fenced epoch is refused by the log.
	if code := h.txnCommit(c, txnReq{version: 3, group: "g", pid: 7, epoch: 0, generation: -1,
		offsets: map[int32]int64{0: 60}})[0]; code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced epoch: %v", kerr.ErrorForCode(code))
	}
	// The transaction coordinator aborts a timed-out transaction with the
	// epoch bumped; the producer goes on in that epoch.
	h.mustTxnCommit(c, "g", 7, 1, map[int32]int64{0: 70})
	h.marker(c, 7, 2, false)
	h.wantFetch(c, "aborted in a bumped epoch", "g", true, map[int32]fetched{0: at(50)})
	h.mustTxnCommit(c, "g", 7, 2, map[int32]int64{0: 80})
	h.marker(c, 7, 2, true)
	h.wantFetch(c, "after the bump", "g", true, map[int32]fetched{0: at(80)})

	// Another group's offsets in a transaction, for a group that does not
	// exist until the commit.
	h.mustTxnCommit(c, "other", 8, 0, map[int32]int64{3: 3})
	h.wantFetch(c, "other pending", "other", true, map[int32]fetched{3: unstable})
	h.wantFetch(c, "other pending, not stable", "other", false, map[int32]fetched{3: none()})
	h.marker(c, 8, 0, true)
	h.wantFetch(c, "other committed", "other", true, map[int32]fetched{3: at(3)})
}

// TestTxnOffsetsLaterPlainCommitWins: a plain commit written after a
// pending transactional offset of the same partition is not overridden by
// the transaction's COMMIT (the log order decides, live and on reload).
func TestTxnOffsetsLaterPlainCommitWins(t *testing.T) {
	h := newTxnHarness(t)
	c := h.c
	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{0: 10, 1: 10})
	h.commit(c, "g", map[int32]int64{0: 99})
	h.marker(c, 7, 0, true)
	want := map[int32]fetched{0: at(99), 1: at(10)}
	h.wantFetch(c, "live", "g", true, want)
	h.wantFetch(h.reload(), "reloaded", "g", true, want)

	// A plain commit before the transactional one: the transaction wins.
	h.commit(c, "g", map[int32]int64{2: 1})
	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{2: 2})
	h.marker(c, 7, 0, true)
	h.wantFetch(c, "txn later", "g", true, map[int32]fetched{2: at(2)})
}

// TestTxnOffsetsReload: a coordinator elected over the log rebuilds the
// transactions from their batches and markers: a committed transaction's
// offsets visible, an aborted one's never, an open one's pending (and
// resolved by its marker later).
func TestTxnOffsetsReload(t *testing.T) {
	h := newTxnHarness(t)
	c := h.c
	h.commit(c, "g", map[int32]int64{0: 1, 1: 1, 2: 1})
	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{0: 10}) // committed
	h.mustTxnCommit(c, "g", 8, 0, map[int32]int64{1: 20}) // aborted
	h.mustTxnCommit(c, "g", 9, 0, map[int32]int64{2: 30}) // open
	h.marker(c, 7, 0, true)
	h.marker(c, 8, 0, false)

	h.mustTxnCommit(c, "onlypending", 9, 0, map[int32]int64{0: 5})

	c2 := h.reload()
	if sh, _ := c2.shardFor("onlypending"); sh.group("onlypending", false) == nil {
		t.Fatal("a group with offsets pending only was not loaded")
	}
	want := map[int32]fetched{0: at(10), 1: at(1), 2: at(1)}
	h.wantFetch(c2, "reloaded", "g", false, want)
	h.wantFetch(c2, "reloaded, stable", "g", true, map[int32]fetched{0: at(10), 1: at(1), 2: unstable})
	// A marker retried against the new coordinator changes nothing.
	h.marker(c2, 7, 0, true)
	h.marker(c2, 8, 0, false)
	h.wantFetch(c2, "retried", "g", false, want)

	// The open transaction continues and commits on the new coordinator.
	h.mustTxnCommit(c2, "g", 9, 0, map[int32]int64{3: 40})
	h.marker(c2, 9, 0, true)
	h.wantFetch(c2, "open, committed", "g", true, map[int32]fetched{0: at(10), 1: at(1), 2: at(30), 3: at(40)})
	h.wantFetch(c2, "pending only, committed", "onlypending", true, map[int32]fetched{0: at(5)})
	h.wantFetch(h.reload(), "reloaded again", "g", true, map[int32]fetched{0: at(10), 1: at(1), 2: at(30), 3: at(40)})
}

// TestTxnOffsetsMarkerWhileLoading: a marker completed while the shard
// loads, past the end the load reads to, is applied once the load is done.
func TestTxnOffsetsMarkerWhileLoading(t *testing.T) {
	h := newTxnHarness(t)
	h.mustTxnCommit(h.c, "g", 7, 0, map[int32]int64{0: 10})
	h.mustTxnCommit(h.c, "g", 8, 0, map[int32]int64{1: 20})
	c2 := newTestCoordinator(t)
	sh := newShard(c2, h.p, txnLeaderEpoch)
	c2.mu.Lock()
	c2.shards[0] = sh
	c2.mu.Unlock()
	// As if their markers were written after the load read the log's end:
	// the load does not see them, the coordinator is told meanwhile.
	c2.CompleteTransaction(0, 7, 0, true)
	c2.CompleteTransaction(0, 8, 0, false)
	c2.wg.Go(sh.load)
	h.waitLoaded(c2)
	h.wantFetch(c2, "after load", "g", true, map[int32]fetched{0: at(10), 1: none()})
}

// TestTxnOffsetCommitFencing: KIP-447's checks of the member in v3+, none
// before.
func TestTxnOffsetCommitFencing(t *testing.T) {
	h := newTxnHarness(t)
	c := h.c
	sh, _ := c.shardFor("g")
	// A classic group in generation 4 with a dynamic and a static member.
	g := sh.group("g", true)
	g.mu.Lock()
	g.protocolType, g.protocol, g.generation = "consumer", "range", 4
	g.members["m1"] = &member{id: "m1", sessionTimeout: time.Minute}
	g.members["m2"] = &member{id: "m2", instanceID: kmsg.StringPtr("i2"), sessionTimeout: time.Minute}
	g.static["i2"] = "m2"
	g.setStateLocked(stateStable)
	g.mu.Unlock()
	// A consumer group (KIP-848) with a member in epoch 6.
	cgp := sh.group("cg", true)
	cgp.mu.Lock()
	cgp.kind, cgp.cg = kindConsumer, newConsumerGroup()
	cgp.cg.members["c1"] = &cmember{id: "c1", epoch: 6}
	cgp.setStateLocked(stateStable)
	cgp.mu.Unlock()

	one := map[int32]int64{0: 1}
	for _, tc := range []struct {
		name string
		r    txnReq
		want int16
	}{
		{"member in its generation", txnReq{version: 3, group: "g", generation: 4, member: "m1"}, 0},
		{"old generation", txnReq{version: 3, group: "g", generation: 3, member: "m1"}, kerr.IllegalGeneration.Code},
		{"unknown member", txnReq{version: 3, group: "g", generation: 4, member: "mx"}, kerr.UnknownMemberID.Code},
		{"static member", txnReq{version: 3, group: "g", generation: 4, member: "m2", instance: kmsg.StringPtr("i2")}, 0},
		{"fenced instance", txnReq{version: 3, group: "g", generation: 4, member: "m1", instance: kmsg.StringPtr("i2")}, kerr.FencedInstanceID.Code},
		{"unknown instance", txnReq{version: 3, group: "g", generation: 4, member: "m1", instance: kmsg.StringPtr("ix")}, kerr.UnknownMemberID.Code},
		{"no member, generation -1", txnReq{version: 3, group: "g", generation: -1}, 0},
		{"member without generation", txnReq{version: 3, group: "g", generation: -1, member: "m1"}, kerr.IllegalGeneration.Code},
		{"v2 unchecked", txnReq{version: 2, group: "g", generation: 3, member: "mx"}, 0},
		{"v0 unchecked", txnReq{version: 0, group: "g", generation: 3, member: "mx"}, 0},
		{"unknown group, generation", txnReq{version: 3, group: "nogroup", generation: 1, member: "m"}, kerr.IllegalGeneration.Code},
		{"unknown group, -1", txnReq{version: 3, group: "newgroup", generation: -1}, 0},
		{"consumer group member", txnReq{version: 3, group: "cg", generation: 6, member: "c1"}, 0},
		{"consumer group stale epoch", txnReq{version: 3, group: "cg", generation: 5, member: "c1"}, kerr.IllegalGeneration.Code},
		{"consumer group unknown member", txnReq{version: 3, group: "cg", generation: 6, member: "cx"}, kerr.UnknownMemberID.Code},
		{"consumer group, no member", txnReq{version: 3, group: "cg", generation: -1}, kerr.UnknownMemberID.Code},
		{"empty group id", txnReq{version: 3, group: "", generation: -1}, kerr.InvalidGroupID.Code},
		{"no producer", txnReq{version: 3, group: "g", generation: -1, pid: -1}, kerr.InvalidProducerIDMapping.Code},
	} {
		r := tc.r
		if r.pid == 0 {
			r.pid = 7
		}
		r.offsets = one
		if got := h.txnCommit(c, r)[0]; got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}

	// While the group completes a rebalance its members wait.
	g.mu.Lock()
	g.setStateLocked(stateCompletingRebalance)
	g.mu.Unlock()
	if got := h.txnCommit(c, txnReq{version: 3, group: "g", pid: 7, generation: 4, member: "m1", offsets: one})[0]; got != kerr.RebalanceInProgress.Code {
		t.Errorf("completing rebalance: %v", kerr.ErrorForCode(got))
	}
	// Not the coordinator, and not loaded.
	c2 := newTestCoordinator(t)
	if got := h.txnCommit(c2, txnReq{version: 3, group: "g", pid: 7, generation: -1, offsets: one})[0]; got != kerr.NotCoordinator.Code {
		t.Errorf("no shard: %v", kerr.ErrorForCode(got))
	}
	c2.mu.Lock()
	c2.shards[0] = newShard(c2, h.p, txnLeaderEpoch)
	c2.mu.Unlock()
	if got := h.txnCommit(c2, txnReq{version: 3, group: "g", pid: 7, generation: -1, offsets: one})[0]; got != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("loading: %v", kerr.ErrorForCode(got))
	}
}

// TestTxnOffsetsDeleteAndExpire: offset expiry keeps an offset with a
// transactional one pending and the group with it; DeleteGroups deletes the
// group with its pending offsets (Kafka 4), so a later COMMIT shows
// nothing, on reload too; OffsetDelete deletes a pending offset.
func TestTxnOffsetsDeleteAndExpire(t *testing.T) {
	h := newTxnHarness(t)
	c := h.c
	clock := time.Now()
	c.now = func() time.Time { return clock }
	h.commit(c, "g", map[int32]int64{0: 1, 1: 1})
	h.mustTxnCommit(c, "g", 7, 0, map[int32]int64{0: 10})
	sh, _ := c.shardFor("g")
	g := sh.group("g", false)
	clock = clock.Add(c.cfg.OffsetsRetention + time.Hour)
	sh.expire(g)
	if g := sh.group("g", false); g == nil {
		t.Fatal("the group expired with a transaction open")
	}
	h.wantFetch(c, "expired", "g", false, map[int32]fetched{0: at(1), 1: none()})
	h.marker(c, 7, 0, true)
	h.wantFetch(c, "committed after expiry", "g", false, map[int32]fetched{0: at(10)})

	// Pending only, and deleted.
	h.mustTxnCommit(c, "d", 8, 0, map[int32]int64{0: 10})
	h.commit(c, "d", map[int32]int64{1: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Groups: []string{"d"}})
	if code := resp.Groups[0].ErrorCode; code != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(code))
	}
	h.wantFetch(c, "deleted", "d", true, map[int32]fetched{0: none(), 1: none()})
	h.marker(c, 8, 0, true)
	h.wantFetch(c, "deleted, then committed", "d", true, map[int32]fetched{0: none(), 1: none()})
	h.wantFetch(h.reload(), "deleted, reloaded", "d", true, map[int32]fetched{0: none(), 1: none()})

	// OffsetDelete of a partition with a pending offset.
	h.mustTxnCommit(c, "o", 9, 0, map[int32]int64{0: 10})
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "o"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "t"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = append(od.Topics, odt)
	if r := c.OffsetDelete(ctx, od); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", r)
	}
	h.wantFetch(c, "offset deleted", "o", true, map[int32]fetched{0: none()})
	h.marker(c, 9, 0, true)
	h.wantFetch(c, "offset deleted, committed", "o", true, map[int32]fetched{0: none()})
	h.wantFetch(h.reload(), "offset deleted, reloaded", "o", true, map[int32]fetched{0: none()})
}

// TestTxnOffsetsConcurrent: producers committing and aborting transactions
// in parallel with plain commits and stable fetches; each group ends with
// its last committed transaction's offsets, live and reloaded.
func TestTxnOffsetsConcurrent(t *testing.T) {
	h := newTxnHarness(t)
	c := h.c
	const producers, rounds = 6, 6
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for k := range producers {
		wg.Go(func() {
			pid, group := int64(100+k), fmt.Sprintf("g%d", k)
			for r := range rounds {
				req := kmsg.NewPtrTxnOffsetCommitRequest()
				req.Version, req.Group, req.ProducerID, req.ProducerEpoch = 3, group, pid, 0
				rt := kmsg.NewTxnOffsetCommitRequestTopic()
				rt.Topic = "t"
				for p := range int32(3) {
					rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
					rp.Partition, rp.Offset = p, int64(r*10)+int64(p)
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
				for _, rp := range c.TxnOffsetCommit(req)(ctx).Topics[0].Partitions {
					if rp.ErrorCode != 0 {
						t.Errorf("%s round %d: %v", group, r, kerr.ErrorForCode(rp.ErrorCode))
						return
					}
				}
				commit := r%2 == 0
				res, err := h.p.AppendMarker(pid, 0, commit, 0)
				if err == nil {
					err = h.p.WaitCommitted(ctx, res.LastOffset+1, res.LeaderEpoch)
				}
				if err != nil {
					t.Errorf("%s round %d marker: %v", group, r, err)
					return
				}
				c.CompleteTransaction(0, pid, 0, commit)
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Version, req.Group, req.Generation = 8, "plain", -1
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = int64(i)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			c.OffsetCommit(req)(ctx)
			freq := kmsg.NewPtrOffsetFetchRequest()
			freq.Version, freq.RequireStable = 8, true
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = fmt.Sprintf("g%d", i%producers)
			freq.Groups = append(freq.Groups, rg)
			c.OffsetFetch(freq)
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	last := int64((rounds - 1) / 2 * 2 * 10) // the last committed round, an even one
	for _, cc := range []*Coordinator{c, h.reload()} {
		for k := range producers {
			h.wantFetch(cc, "after", fmt.Sprintf("g%d", k), true, map[int32]fetched{0: at(last), 1: at(last + 1), 2: at(last + 2)})
		}
	}
}
