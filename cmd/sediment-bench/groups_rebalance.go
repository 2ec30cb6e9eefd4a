package main

// The rebalance measurement of the groups phase. Each join uses a fresh
// group on groupsRebalanceTopic, which a producer feeds steadily:
//
//  1. members 0 and 1 start and consume; the bench waits until their
//     callbacks show the 64 partitions owned exactly once between them, with
//     no change for the quiet period, and until each has read records;
//  2. after a random pause of up to one heartbeat interval, member 2
//     starts: t0 is taken just before its kgo.NewClient (the client begins
//     to join at once). Without the pause the join would fall at the same
//     point of the members' heartbeat cycle every time (their heartbeat
//     timers restart when a rebalance ends, and the wait above is a whole
//     number of intervals), right after a heartbeat: the worst case;
//     with it, at a random point, as a real join does;
//  3. the rebalance ends at the last change of ownership after which every
//     one of the three members owns at least one partition, every partition
//     is owned by exactly one member, and nothing changes for the quiet
//     period (several heartbeat intervals: a member that had more to do
//     would have done it). Ownership is what each member's own kgo
//     callbacks say: OnPartitionsAssigned adds (when the member may start
//     fetching), OnPartitionsRevoked and OnPartitionsLost remove (when
//     the member has stopped and, like kgo's default, committed);
//  4. the broker must agree: DescribeGroups (classic) or
//     ConsumerGroupDescribe (KIP-848) shows the group Stable with exactly
//     these three members and exactly the partitions each member's
//     callbacks gave it; and the third member must have read records.
//
// The rebalance time is the end minus t0; the figures are their median and
// maximum per protocol.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// groupProtocol is how a group's members agree on an assignment.
type groupProtocol int

const (
	protoClassic  groupProtocol = iota // JoinGroup/SyncGroup, cooperative-sticky, client-side
	protoConsumer                      // KIP-848 ConsumerGroupHeartbeat, server-side assignor
)

func (p groupProtocol) String() string {
	if p == protoConsumer {
		return "KIP-848"
	}
	return "classic"
}

// joinResult is one measured join.
type joinResult struct {
	elapsed time.Duration // from the third member's start to the last change of ownership
	sizes   []int         // partitions of each member at the end
	changes int           // ownership changes (callbacks) from t0 to the end
}

const (
	// rebalanceEvery paces the steady producer: rebalanceBurst records
	// every rebalanceEvery, each to the next partition in turn, so every
	// partition gets about 16 records a second.
	rebalanceEvery = 10 * time.Millisecond
	rebalanceBurst = 10
	// rebalanceValue is the size of those records.
	rebalanceValue = 100
	// rebalanceLimit bounds each wait for a group to settle.
	rebalanceLimit = 60 * time.Second
	// rebalancePoll is how often the bench looks at the ownership.
	rebalancePoll = 5 * time.Millisecond
)

// rebalanceQuiet is how long ownership must stay unchanged to count as
// final: four heartbeat intervals (every member heartbeats, so learns of
// anything left to do, within one), and at least a second.
func rebalanceQuiet(heartbeat time.Duration) time.Duration {
	return max(4*heartbeat, time.Second)
}

// measureRebalances runs cfg.joins joins per protocol, alternating the
// protocols, with a steady producer running throughout.
func measureRebalances(ctx context.Context, seeds []string, cfg groupsConfig, procs []*harness.Process, logDir string, phase func(string)) (classic, consumer []joinResult, err error) {
	js := joinSetup{seeds: seeds, heartbeat: cfg.heartbeat, procs: procs, logDir: logDir}
	pctx, stopProducer := context.WithCancel(ctx)
	produced := make(chan error, 1)
	go func() { produced <- produceSteadily(pctx, seeds, groupsRebalanceTopic, groupsRebalancePartitions) }()
	defer func() {
		stopProducer()
		if perr := <-produced; perr != nil && err == nil {
			err = fmt.Errorf("steady producer: %w", perr)
		}
	}()

	for i := range cfg.joins {
		for _, proto := range []groupProtocol{protoClassic, protoConsumer} {
			group := fmt.Sprintf("sediment-bench-rebalance-%s-%d", strings.ToLower(proto.String()), i)
			phase(fmt.Sprintf("rebalance %s %d/%d: group %s", proto, i+1, cfg.joins, group))
			jr, err := measureJoin(ctx, js, group, proto)
			if err != nil {
				return nil, nil, fmt.Errorf("%s join %d: %w", proto, i+1, err)
			}
			phase(fmt.Sprintf("rebalance %s %d/%d: %.3fs, partitions %v, %d ownership changes", proto, i+1, cfg.joins, jr.elapsed.Seconds(), jr.sizes, jr.changes))
			if proto == protoClassic {
				classic = append(classic, jr)
			} else {
				consumer = append(consumer, jr)
			}
		}
	}
	return classic, consumer, nil
}

// produceSteadily writes rebalanceBurst records every rebalanceEvery to
// topic, round robin over its partitions, until ctx ends; it returns the
// first failed record's error.
func produceSteadily(ctx context.Context, seeds []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return err
	}
	defer closeClient(cl)
	var (
		mu    sync.Mutex
		first error
		next  int
	)
	value := make([]byte, rebalanceValue)
	tick := time.NewTicker(rebalanceEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			return first
		case <-tick.C:
		}
		for range rebalanceBurst {
			r := &kgo.Record{Value: value, Partition: int32(next % partitions)}
			next++
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			})
		}
	}
}

// ownership is which member owns which partition, as the members' own kgo
// callbacks report it, and when it last changed. Safe for concurrent use:
// every member's callbacks call it.
type ownership struct {
	mu      sync.Mutex
	owned   []map[int32]bool // by member index
	changed time.Time        // of the last change
	changes int
	frozen  bool // the measurement is over: members closing revoke, which is no rebalance
}

func newOwnership(members int) *ownership {
	o := &ownership{owned: make([]map[int32]bool, members)}
	for i := range o.owned {
		o.owned[i] = map[int32]bool{}
	}
	return o
}

// change applies a callback of member: partitions ps added or removed.
func (o *ownership) change(member int, ps []int32, add bool) {
	at := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.frozen || len(ps) == 0 {
		return
	}
	for _, p := range ps {
		if add {
			o.owned[member][p] = true
		} else {
			delete(o.owned[member], p)
		}
	}
	o.changed = at
	o.changes++
}

// snapshot returns each member's partitions, sorted, the time of the last
// change and the number of changes so far.
func (o *ownership) snapshot() ([][]int32, time.Time, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sets := make([][]int32, len(o.owned))
	for i, m := range o.owned {
		sets[i] = slices.Sorted(maps.Keys(m))
	}
	return sets, o.changed, o.changes
}

func (o *ownership) freeze() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.frozen = true
}

// checkOwnership says why sets (each member's partitions) is not a
// complete assignment of partitions partitions: every member owns at least
// one, every partition is owned by exactly one member.
func checkOwnership(sets [][]int32, partitions int) error {
	owner := make([]int, partitions)
	for i := range owner {
		owner[i] = -1
	}
	for m, ps := range sets {
		if len(ps) == 0 {
			return fmt.Errorf("member %d owns no partition", m)
		}
		for _, p := range ps {
			switch {
			case p < 0 || int(p) >= partitions:
				return fmt.Errorf("member %d owns partition %d of a %d-partition topic", m, p, partitions)
			case owner[p] >= 0:
				return fmt.Errorf("partition %d is owned by members %d and %d", p, owner[p], m)
			}
			owner[p] = m
		}
	}
	if i := slices.Index(owner, -1); i >= 0 {
		return fmt.Errorf("partition %d is owned by no member", i)
	}
	return nil
}

// joinSetup is what every join runs with.
type joinSetup struct {
	seeds     []string
	heartbeat time.Duration
	procs     []*harness.Process // the broker: its exit ends a wait
	logDir    string             // if set, each member's kgo debug log goes to a file there
}

// member is one franz-go group consumer of the rebalance topic, polling in
// a goroutine of its own until close.
type member struct {
	cl    *kgo.Client
	log   *os.File // nil unless joinSetup.logDir is set
	read  atomic.Int64
	errMu sync.Mutex
	err   error // the first fetch error
	done  chan struct{}
}

func startMember(ctx context.Context, js joinSetup, group string, proto groupProtocol, own *ownership, idx int) (*member, error) {
	m := &member{done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(js.seeds...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(groupsRebalanceTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), // a fresh group reads what is produced from now on
		kgo.Balancers(kgo.CooperativeStickyBalancer()),  // kgo's default, named: the classic protocol's assignor
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			own.change(idx, m[groupsRebalanceTopic], true)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			// Commit before giving the partitions up, as kgo does
			// when no callback is set (it leaves out the last poll's
			// records; the cost is the same one commit).
			_ = cl.CommitUncommittedOffsets(ctx)
			own.change(idx, m[groupsRebalanceTopic], false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			own.change(idx, m[groupsRebalanceTopic], false)
		}),
	}
	if proto == protoConsumer {
		// The broker sets the heartbeat interval (--group-consumer-heartbeat-interval).
		opts = append(opts, kgo.ServerSideBalancer())
	} else {
		opts = append(opts, kgo.HeartbeatInterval(js.heartbeat))
	}
	if js.logDir != "" {
		f, err := os.Create(filepath.Join(js.logDir, fmt.Sprintf("%s-member%d.log", group, idx)))
		if err != nil {
			return nil, err
		}
		m.log = f
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(f, kgo.LogLevelDebug, func() string {
			return time.Now().Format("15:04:05.000000 ")
		})))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		if m.log != nil {
			m.log.Close()
		}
		return nil, err
	}
	m.cl = cl
	go m.poll(ctx)
	return m, nil
}

func (m *member) poll(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			m.errMu.Lock()
			if m.err == nil {
				m.err = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
			m.errMu.Unlock()
		})
		m.read.Add(int64(fs.NumRecords()))
	}
}

func (m *member) fetchErr() error {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return m.err
}

// closeMembers closes every member at once (a group's members leaving one
// after the other would rebalance in between) and waits for their polls.
func closeMembers(ms []*member) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			closeClient(m.cl)
			<-m.done
			if m.log != nil {
				m.log.Close()
			}
		})
	}
	wg.Wait()
}

// measureJoin measures one join of a third member to a stable group of two.
func measureJoin(ctx context.Context, js joinSetup, group string, proto groupProtocol) (res joinResult, err error) {
	quiet := rebalanceQuiet(js.heartbeat)
	own := newOwnership(3)
	var members []*member
	defer func() {
		own.freeze()
		closeMembers(members)
	}()
	settled := func(n int) (time.Time, int, error) {
		var at time.Time
		var changes int
		err := groupsWait(ctx, rebalanceLimit, rebalancePoll, js.procs, fmt.Sprintf("%d members settling", n), func() error {
			for i, m := range members {
				if err := m.fetchErr(); err != nil {
					return fmt.Errorf("member %d: %w", i, err)
				}
			}
			sets, changed, c := own.snapshot()
			if err := checkOwnership(sets[:n], groupsRebalancePartitions); err != nil {
				return err
			}
			if since := time.Since(changed); since < quiet {
				return fmt.Errorf("ownership changed %s ago, less than the quiet period %s", since.Round(time.Millisecond), quiet)
			}
			at, changes = changed, c
			return nil
		})
		return at, changes, err
	}

	// 1. Two members, consuming.
	for i := range 2 {
		m, err := startMember(ctx, js, group, proto, own, i)
		if err != nil {
			return res, err
		}
		members = append(members, m)
	}
	if _, _, err := settled(2); err != nil {
		return res, err
	}
	read0 := []int64{members[0].read.Load(), members[1].read.Load()}
	if err := groupsWait(ctx, 10*time.Second, rebalancePoll, js.procs, "2 members reading", func() error {
		for i := range 2 {
			if members[i].read.Load() == read0[i] {
				sets, _, _ := own.snapshot()
				return fmt.Errorf("member %d has read nothing since the group settled (%d records before; partitions by member: %v)", i, read0[i], sets)
			}
		}
		return nil
	}); err != nil {
		return res, err
	}
	_, _, changes0 := own.snapshot()

	// 2. The third member, at a random point of the heartbeat cycle.
	if err := sleepCtx(ctx, rand.N(js.heartbeat)); err != nil {
		return res, err
	}
	t0 := time.Now()
	m, err := startMember(ctx, js, group, proto, own, 2)
	if err != nil {
		return res, err
	}
	members = append(members, m)

	// 3. Until every member has its final partitions.
	end, changes, err := settled(3)
	if err != nil {
		sets, _, _ := own.snapshot()
		return res, fmt.Errorf("%w (partitions by member: %v)", err, sets)
	}
	sets, _, _ := own.snapshot()
	res.elapsed, res.changes = end.Sub(t0), changes-changes0
	for _, s := range sets {
		res.sizes = append(res.sizes, len(s))
	}

	// 4. The broker's view, and the third member consuming.
	if err := checkBrokerView(ctx, members, group, proto, sets); err != nil {
		return res, fmt.Errorf("after %.3fs, the members' callbacks showed %v: %w", res.elapsed.Seconds(), sets, err)
	}
	if err := groupsWait(ctx, 10*time.Second, rebalancePoll, js.procs, "the third member reading", func() error {
		if m.read.Load() == 0 {
			return fmt.Errorf("the third member has read nothing")
		}
		return nil
	}); err != nil {
		return res, err
	}
	return res, nil
}

// checkBrokerView compares the coordinator's description of group with
// sets, each member's partitions as its callbacks reported them: the group
// must be Stable with exactly these members, each assigned exactly its set
// (for KIP-848, also at the group's epoch, with nothing left to reconcile).
func checkBrokerView(ctx context.Context, members []*member, group string, proto groupProtocol, sets [][]int32) error {
	want := map[string][]int32{}
	for i, m := range members {
		id, _ := m.cl.GroupMetadata()
		if id == "" {
			return fmt.Errorf("member %d has no member id", i)
		}
		want[id] = sets[i]
	}
	view := classicView
	if proto == protoConsumer {
		view = consumerView
	}
	state, got, err := view(ctx, members[0].cl, group)
	if err != nil {
		return err
	}
	if state != "Stable" {
		return fmt.Errorf("the broker says the group is %s, not Stable", state)
	}
	for id, ps := range got {
		slices.Sort(ps)
		w, ok := want[id]
		switch {
		case !ok:
			return fmt.Errorf("the broker lists member %s, none of the three", id)
		case !slices.Equal(w, ps):
			return fmt.Errorf("the broker assigns member %s %v, its callbacks gave it %v", id, ps, w)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("the broker lists %d members, want %d", len(got), len(want))
	}
	return nil
}

// classicView is a classic group's state and its members' partitions of
// the rebalance topic, from DescribeGroups.
func classicView(ctx context.Context, cl *kgo.Client, group string) (string, map[string][]int32, error) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", nil, fmt.Errorf("DescribeGroups: %w", err)
	}
	if len(resp.Groups) != 1 {
		return "", nil, fmt.Errorf("DescribeGroups: %d groups answered", len(resp.Groups))
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return "", nil, fmt.Errorf("DescribeGroups: %w", err)
	}
	got := map[string][]int32{}
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.MemberAssignment); err != nil {
			return "", nil, fmt.Errorf("DescribeGroups: member %s: assignment: %w", m.MemberID, err)
		}
		got[m.MemberID] = []int32{}
		for _, t := range a.Topics {
			if t.Topic == groupsRebalanceTopic {
				got[m.MemberID] = append(got[m.MemberID], t.Partitions...)
			}
		}
	}
	return g.State, got, nil
}

// consumerView is a KIP-848 group's state and its members' partitions of
// the rebalance topic, from ConsumerGroupDescribe; every member must be at
// the group's epoch and own its target assignment.
func consumerView(ctx context.Context, cl *kgo.Client, group string) (string, map[string][]int32, error) {
	g, err := describeConsumerGroup(ctx, cl, group)
	if err != nil {
		return "", nil, err
	}
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return "", nil, fmt.Errorf("ConsumerGroupDescribe: %w (is the group a KIP-848 one?)", err)
	}
	parts := func(a kmsg.Assignment) []int32 {
		out := []int32{}
		for _, t := range a.TopicPartitions {
			if t.Topic == groupsRebalanceTopic {
				out = append(out, t.Partitions...)
			}
		}
		slices.Sort(out)
		return out
	}
	got := map[string][]int32{}
	for _, m := range g.Members {
		got[m.MemberID] = parts(m.Assignment)
		if m.MemberEpoch != g.Epoch {
			return "", nil, fmt.Errorf("ConsumerGroupDescribe: member %s at epoch %d, the group at %d", m.MemberID, m.MemberEpoch, g.Epoch)
		}
		if target := parts(m.TargetAssignment); !slices.Equal(target, got[m.MemberID]) {
			return "", nil, fmt.Errorf("ConsumerGroupDescribe: member %s has %v, its target is %v", m.MemberID, got[m.MemberID], target)
		}
	}
	return g.State, got, nil
}

// describeConsumerGroup is ConsumerGroupDescribe of one group; the group's
// error code is the caller's to judge.
func describeConsumerGroup(ctx context.Context, cl *kgo.Client, group string) (kmsg.ConsumerGroupDescribeResponseGroup, error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.ConsumerGroupDescribeResponseGroup{}, fmt.Errorf("ConsumerGroupDescribe: %w", err)
	}
	if len(resp.Groups) != 1 {
		return kmsg.ConsumerGroupDescribeResponseGroup{}, fmt.Errorf("ConsumerGroupDescribe: %d groups answered", len(resp.Groups))
	}
	return resp.Groups[0], nil
}
