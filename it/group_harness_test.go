package it

// The consumer-group tests' side of the harness: a ledger of what a group's
// members consumed, checked as it happens and at the end against what was
// produced; a sampler of the group's committed offsets; a paced producer; a
// dialer whose connections can be cut (a member that dies without leaving);
// and waits on the group as its coordinator describes it.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
)

// groupBrokerFlags are the broker settings of the group tests: a short
// initial rebalance delay and a low minimum session keep rebalances and
// session expiry fast, and a small __consumer_offsets a fast first
// FindCoordinator.
var groupBrokerFlags = []string{
	"--group-initial-rebalance-delay", "200ms",
	"--group-min-session-timeout", "1s",
	"--offsets-topic-num-partitions", strconv.Itoa(groupOffsetsPartitions),
	// KIP-848 groups: the broker sets their members' heartbeat and session.
	"--group-consumer-heartbeat-interval", groupHeartbeat.String(),
	"--group-consumer-session-timeout", groupSession.String(),
}

// groupOffsetsPartitions is the __consumer_offsets partition count
// groupBrokerFlags set.
const groupOffsetsPartitions = 12

// Settings of every group member, whatever its client. The session is long
// enough that a member of a loaded 2-core machine under -race does not miss
// it, short enough that a killed member is gone soon.
const (
	groupSession    = 4 * time.Second
	groupHeartbeat  = 400 * time.Millisecond
	groupRebalance  = 20 * time.Second
	groupCommitTick = 200 * time.Millisecond
	groupPartitions = 12
	// groupSettle bounds each wait for the group: a rebalance, a session
	// expiry, a coordinator moving.
	groupSettle = 60 * time.Second
)

// cutDialer dials TCP until Cut closes every connection it made and fails
// every later dial: the member using it dies as a crashed process would,
// without leaving its group. Safe for concurrent use.
type cutDialer struct {
	d     net.Dialer
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

var errCut = errors.New("it: the member's network is cut")

func newCutDialer() *cutDialer { return &cutDialer{d: net.Dialer{Timeout: 3 * time.Second}} }

// DialContext is a kgo.Dialer and a kafka.Dialer's DialFunc.
func (d *cutDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	cut := d.cut
	d.mu.Unlock()
	if cut {
		return nil, errCut
	}
	c, err := d.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		c.Close()
		return nil, errCut
	}
	d.conns = append(d.conns, c)
	return c, nil
}

// Dial is a proxy.Dialer (sarama's Net.Proxy.Dialer).
func (d *cutDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// Cut closes every connection and fails every dial from now on.
func (d *cutDialer) Cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// memberPartition names one member's consumption of one partition.
type memberPartition struct {
	member string
	p      int32
}

// period is a member's assignment of a partition: records must come
// contiguously, from the committed offset on.
type period struct {
	member      string
	epoch       int64
	first, next int64
	committed   int64 // the committed offset sampled last before it began
	at          time.Time
}

func (pr *period) String() string {
	return fmt.Sprintf("%s %s epoch %d: offsets %d-%d (committed %d before)",
		pr.at.Format("15:04:05.000"), pr.member, pr.epoch, pr.first, pr.next-1, pr.committed)
}

// groupLedger is what a group's members consumed of one topic. Each
// consumption names its member and the member's assignment epoch (a number
// the client adapter bumps whenever the member's assignment may have
// changed); the ledger checks as it goes that
//
//   - within one epoch, a member consumes each partition contiguously: no
//     gap and no duplicate; duplicates are only allowed across rebalances;
//   - a member's new epoch of a partition starts no lower than the offset
//     last sampled as committed before it (at-least-once, not from the
//     start);
//   - an offset yields the same value every time it is consumed;
//   - no committed offset ever goes backwards (the sampler's reports);
//
// and verify checks at the end that every offset below the end offsets was
// consumed, with the value its producer was acknowledged for. Safe for
// concurrent use.
type groupLedger struct {
	t          testing.TB
	topic      string
	partitions int32

	mu         sync.Mutex
	produced   []map[int64]string // by partition: acknowledged offset → value
	failed     map[string]int     // produce failures by reason
	values     []map[int64]string // by partition: offset → value consumed
	counts     []map[int64]int    // by partition: offset → times consumed
	records    int                // consumptions, duplicates included
	periods    map[memberPartition]*period
	nperiods   int
	history    [][]*period                // by partition, in order
	firsts     map[string]map[int32]int64 // member → partition → first offset consumed
	committed  []int64                    // by partition: latest committed offset sampled, -1 for none
	samples    int
	sampleErrs map[string]int // failed samples by reason
	// staleCommits excuses a client that commits offsets it read in an
	// earlier generation (see groupClient.staleCommits): a committed offset
	// going back, and an assignment starting below one, are only counted.
	staleCommits bool
	stale        int
	violations   []string
	changed      chan struct{} // closed and replaced on every consumption and sample
}

func newGroupLedger(t testing.TB, topic string, partitions int32) *groupLedger {
	l := &groupLedger{t: t, topic: topic, partitions: partitions, failed: map[string]int{},
		periods: map[memberPartition]*period{}, firsts: map[string]map[int32]int64{}, sampleErrs: map[string]int{}, changed: make(chan struct{})}
	for range partitions {
		l.produced = append(l.produced, map[int64]string{})
		l.values = append(l.values, map[int64]string{})
		l.counts = append(l.counts, map[int64]int{})
		l.committed = append(l.committed, -1)
		l.history = append(l.history, nil)
	}
	return l
}

// violateLocked notes a broken rule; the first ones end the test at the
// next check.
func (l *groupLedger) violateLocked(format string, args ...any) {
	if len(l.violations) < 20 {
		l.violations = append(l.violations, fmt.Sprintf(format, args...))
	}
}

// acked records a produce acknowledgement (or failure).
func (l *groupLedger) acked(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[err.Error()]++
		return
	}
	l.produced[r.Partition][r.Offset] = string(r.Value)
}

// consume records that member, in assignment epoch epoch, consumed the
// record at offset off of partition p.
func (l *groupLedger) consume(member string, epoch int64, p int32, off int64, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p < 0 || p >= l.partitions {
		l.violateLocked("%s consumed partition %d of %s, which has %d", member, p, l.topic, l.partitions)
		return
	}
	k := memberPartition{member, p}
	pr := l.periods[k]
	switch {
	case pr != nil && pr.epoch == epoch:
		if off != pr.next {
			kind := "a gap"
			if off < pr.next {
				kind = "a duplicate within one assignment"
			}
			l.violateLocked("%s: %s[%d] offset %d follows offset %d in one assignment (epoch %d): %s",
				member, l.topic, p, off, pr.next-1, epoch, kind)
		}
	default:
		if c := l.committed[p]; off < c && l.staleCommits {
			l.stale++
		} else if off < c {
			prev := "it had not consumed the partition before"
			if pr != nil {
				prev = fmt.Sprintf("its previous assignment (epoch %d) consumed up to offset %d", pr.epoch, pr.next-1)
			}
			l.violateLocked("%s: %s[%d] assignment (epoch %d) starts at offset %d, below the committed offset %d sampled before it; %s",
				member, l.topic, p, epoch, off, c, prev)
		}
		pr = &period{member: member, epoch: epoch, first: off, committed: l.committed[p], at: time.Now()}
		l.periods[k] = pr
		l.history[p] = append(l.history[p], pr)
		l.nperiods++
		if l.firsts[member] == nil {
			l.firsts[member] = map[int32]int64{}
		}
		if _, ok := l.firsts[member][p]; !ok {
			l.firsts[member][p] = off
		}
	}
	pr.next = off + 1
	if v, ok := l.values[p][off]; ok && v != value {
		l.violateLocked("%s: %s[%d] offset %d is %q, but %q before", member, l.topic, p, off, value, v)
	}
	l.values[p][off] = value
	l.counts[p][off]++
	l.records++
	close(l.changed)
	l.changed = make(chan struct{})
}

// sampled takes a sample of the group's committed offsets (partition →
// offset; a partition missing or at -1 has none). It must be called in the
// order the answers arrived, right after each.
func (l *groupLedger) sampled(offsets map[int32]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples++
	for p, o := range offsets {
		if p < 0 || p >= l.partitions || o < 0 {
			continue
		}
		if o < l.committed[p] && l.staleCommits {
			l.stale++
		} else if o < l.committed[p] {
			l.violateLocked("%s[%d]: the committed offset went backwards from %d to %d (%s)", l.topic, p, l.committed[p], o, l.consumersLocked(p))
		}
		l.committed[p] = o
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// consumersLocked says how far each member's latest assignment of p got.
func (l *groupLedger) consumersLocked(p int32) string {
	var out []string
	for k, pr := range l.periods {
		if k.p == p {
			out = append(out, fmt.Sprintf("%s epoch %d consumed up to %d", k.member, pr.epoch, pr.next-1))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// summaryLocked says how far production and consumption got.
func (l *groupLedger) summaryLocked() string {
	acked, consumed := 0, 0
	for p := range l.partitions {
		acked += len(l.produced[p])
		consumed += len(l.values[p])
	}
	return fmt.Sprintf("%d records acknowledged, produce failures %v, %d consumed, %d commit samples, failed samples %v",
		acked, l.failed, consumed, l.samples, l.sampleErrs)
}

// sampleFailed counts a sample that could not be taken.
func (l *groupLedger) sampleFailed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sampleErrs[err.Error()]++
}

// check fails the test if a rule was broken so far.
func (l *groupLedger) check() {
	l.t.Helper()
	l.mu.Lock()
	v := slices.Clone(l.violations)
	l.mu.Unlock()
	if len(v) > 0 {
		l.t.Fatalf("%d broken rules of group consumption, first ones:\n  %s", len(v), strings.Join(v, "\n  "))
	}
}

// consumedCount is how many distinct records have been consumed.
func (l *groupLedger) consumedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.values {
		n += len(m)
	}
	return n
}

// waitConsumed waits until more than n distinct records have been consumed
// in total, and returns how many.
func (l *groupLedger) waitConsumed(n int, timeout time.Duration) int {
	l.t.Helper()
	return l.waitFor(fmt.Sprintf("more than %d records consumed", n), timeout, func() (bool, string) {
		got := 0
		for _, m := range l.values {
			got += len(m)
		}
		return got > n, fmt.Sprintf("%d consumed", got)
	})
}

// waitAll waits until every offset below ends has been consumed.
func (l *groupLedger) waitAll(ends map[int32]int64, timeout time.Duration) {
	l.t.Helper()
	l.waitFor("every record consumed", timeout, func() (bool, string) {
		var missing []string
		for p := range l.partitions {
			if got := int64(len(l.values[p])); got < ends[p] {
				first := int64(0)
				for l.counts[p][first] > 0 {
					first++
				}
				missing = append(missing, fmt.Sprintf("p%d: %d of %d, first missing offset %d; assignments: %v", p, got, ends[p], first, l.history[p]))
			}
		}
		return len(missing) == 0, strings.Join(missing, ", ")
	})
}

// waitAcked waits until every acknowledged record has been consumed.
func (l *groupLedger) waitAcked(timeout time.Duration) {
	l.t.Helper()
	l.waitFor("every acknowledged record consumed", timeout, func() (bool, string) {
		var missing []string
		for p := range l.partitions {
			for off := range l.produced[p] {
				if l.counts[p][off] == 0 {
					missing = append(missing, fmt.Sprintf("p%d offset %d", p, off))
					break
				}
			}
		}
		return len(missing) == 0, strings.Join(missing, ", ")
	})
}

// waitCommitted waits until every partition has a committed offset
// sampled, and returns the latest samples.
func (l *groupLedger) waitCommitted(timeout time.Duration) []int64 {
	l.t.Helper()
	var out []int64
	l.waitFor("a committed offset sampled for every partition", timeout, func() (bool, string) {
		out = slices.Clone(l.committed)
		return !slices.Contains(out, -1), fmt.Sprint(out)
	})
	return out
}

// waitCommitsPast waits until every partition's sampled committed offset
// is beyond before's.
func (l *groupLedger) waitCommitsPast(before []int64, timeout time.Duration) {
	l.t.Helper()
	l.waitFor("every committed offset past "+fmt.Sprint(before), timeout, func() (bool, string) {
		for p, o := range l.committed {
			if o <= before[p] {
				return false, fmt.Sprint(l.committed)
			}
		}
		return true, ""
	})
}

// firstOffsets are, by partition, the first offset member consumed.
func (l *groupLedger) firstOffsets(member string) map[int32]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.firsts[member])
}

// waitFor waits until cond, evaluated under the lock, holds; it returns the
// distinct records consumed then. A broken rule ends the wait.
func (l *groupLedger) waitFor(what string, timeout time.Duration, cond func() (bool, string)) int {
	l.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.check()
		l.mu.Lock()
		ok, state := cond()
		ch := l.changed
		n := 0
		for _, m := range l.values {
			n += len(m)
		}
		l.mu.Unlock()
		if ok {
			return n
		}
		select {
		case <-ch:
		case <-deadline.C:
			l.mu.Lock()
			summary := l.summaryLocked()
			l.mu.Unlock()
			l.t.Fatalf("%s: not within %v (%s; %s)", what, timeout, state, summary)
		}
	}
}

// requireNoProduceFailures fails the test if a produce failed (where no
// fault excuses one).
func (l *groupLedger) requireNoProduceFailures() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) > 0 {
		l.t.Fatalf("%s: produce failures: %v", l.topic, l.failed)
	}
}

// verify requires every rule to have held, every offset below ends to have
// been consumed with the value acknowledged there, and, when no produce
// failed, every offset to have been acknowledged (nothing else is in the
// log). It logs the duplicates.
func (l *groupLedger) verify(ends map[int32]int64) {
	l.t.Helper()
	l.check()
	l.mu.Lock()
	defer l.mu.Unlock()
	acked, dups, unacked := 0, 0, 0
	for p := range l.partitions {
		for off := int64(0); off < ends[p]; off++ {
			v, ok := l.values[p][off]
			if !ok {
				l.t.Fatalf("%s[%d] offset %d (end %d) was never consumed: a gap", l.topic, p, off, ends[p])
			}
			want, ok := l.produced[p][off]
			switch {
			case !ok:
				unacked++
			case v != want:
				l.t.Fatalf("%s[%d] offset %d: consumed %q, but %q was acknowledged there", l.topic, p, off, v, want)
			}
			dups += l.counts[p][off] - 1
		}
		acked += len(l.produced[p])
		if int64(len(l.produced[p])) > ends[p] {
			l.t.Fatalf("%s[%d]: %d records acknowledged, but the end offset is %d", l.topic, p, len(l.produced[p]), ends[p])
		}
	}
	if unacked > 0 && len(l.failed) == 0 {
		l.t.Fatalf("%s: %d records in the log that no producer had acknowledged, and no produce failed", l.topic, unacked)
	}
	l.t.Logf("%s: %d records acknowledged (failures: %v), all consumed: %d consumptions, %d duplicates, %d assignment periods, %d commit samples",
		l.topic, acked, l.failed, l.records, dups, l.nperiods, l.samples)
	if l.stale > 0 {
		l.t.Logf("%s: %d stale commits seen (offsets committed in a later generation than they were read in)", l.topic, l.stale)
	}
}

// sampleCommits samples the group's committed offsets of l's topic every
// interval into l until the returned stop is called. Each sample asks the
// coordinator FindCoordinator names (again after a failure) for
// OffsetFetch directly: kgo's routing of OffsetFetch (a sharded request)
// keeps dialing a dead coordinator it has cached. A failed sample (the
// coordinator moving or loading) is counted and skipped.
func sampleCommits(cl *kgo.Client, group string, l *groupLedger, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		coord := int32(-1)
		for {
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			got, node, err := fetchCommitted(rctx, cl, group, l.topic, coord)
			rcancel()
			if err == nil {
				coord = node
				l.sampled(got)
			} else if ctx.Err() == nil {
				coord = -1
				l.sampleFailed(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// askCoordinator sends req to group's coordinator: broker coord, or (coord
// -1) the one FindCoordinator names. It returns the answer and the broker
// that gave it.
func askCoordinator(ctx context.Context, cl *kgo.Client, group string, coord int32, req kmsg.Request) (kmsg.Response, int32, error) {
	if coord < 0 {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = group            // up to v3
		fc.CoordinatorKeys = []string{group} // v4 on
		r, err := fc.RequestWith(ctx, cl)
		if err != nil {
			return nil, -1, fmt.Errorf("FindCoordinator: %w", err)
		}
		code, node := r.ErrorCode, r.NodeID
		if len(r.Coordinators) == 1 {
			code, node = r.Coordinators[0].ErrorCode, r.Coordinators[0].NodeID
		}
		if err := kerr.ErrorForCode(code); err != nil {
			return nil, -1, fmt.Errorf("FindCoordinator: %w", err)
		}
		coord = node
	}
	r, err := cl.Broker(int(coord)).Request(ctx, req)
	if err != nil {
		return nil, -1, fmt.Errorf("%s to broker %d: %w", kmsg.NameForKey(req.Key()), coord, err)
	}
	return r, coord, nil
}

// fetchCommitted asks broker coord (-1: the one FindCoordinator names) for
// group's committed offsets of topic, and says which broker answered.
func fetchCommitted(ctx context.Context, cl *kgo.Client, group, topic string, coord int32) (map[int32]int64, int32, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group // up to v7
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group // v8 on
	req.Groups = append(req.Groups, rg)
	r, coord, err := askCoordinator(ctx, cl, group, coord, req)
	if err != nil {
		return nil, -1, err
	}
	resp := r.(*kmsg.OffsetFetchResponse)
	code := resp.ErrorCode
	type part struct {
		p    int32
		off  int64
		code int16
	}
	var parts []part
	if len(resp.Groups) == 1 {
		g := resp.Groups[0]
		code = g.ErrorCode
		for _, t := range g.Topics {
			if t.Topic == topic {
				for _, p := range t.Partitions {
					parts = append(parts, part{p.Partition, p.Offset, p.ErrorCode})
				}
			}
		}
	} else {
		for _, t := range resp.Topics {
			if t.Topic == topic {
				for _, p := range t.Partitions {
					parts = append(parts, part{p.Partition, p.Offset, p.ErrorCode})
				}
			}
		}
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return nil, -1, fmt.Errorf("OffsetFetch to broker %d: %w", coord, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		if err := kerr.ErrorForCode(p.code); err != nil {
			return nil, -1, fmt.Errorf("OffsetFetch to broker %d: partition %d: %w", coord, p.p, err)
		}
		if p.off >= 0 {
			out[p.p] = p.off
		}
	}
	return out, coord, nil
}

// groupProducer is paced producers writing values producedValue(g, seq) to
// every partition of a topic round robin, each acknowledgement going to a
// ledger.
type groupProducer struct {
	t       testing.TB
	clients []*kgo.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	paused  atomic.Bool
}

// startGroupProducers starts n producers (idempotent, acks=all) of about
// rate records a second each to the topic of the ledgers, which all learn
// of every acknowledgement (one ledger per group consuming the topic).
func (c *Cluster) startGroupProducers(t testing.TB, n, rate int, ledgers ...*groupLedger) *groupProducer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	gp := &groupProducer{t: t, cancel: cancel}
	t.Cleanup(gp.stop)
	const tick = 20 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	l := ledgers[0]
	acked := func(r *kgo.Record, err error) {
		for _, l := range ledgers {
			l.acked(r, err)
		}
	}
	for g := range n {
		cl := c.Client(t, manualPartitions, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
			kgo.ProduceRequestTimeout(10*time.Second), kgo.RecordDeliveryTimeout(2*time.Minute))
		gp.clients = append(gp.clients, cl)
		gp.wg.Go(func() {
			tk := time.NewTicker(tick)
			defer tk.Stop()
			for seq := 0; ; {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
				if gp.paused.Load() {
					continue
				}
				for range perTick {
					p := int32((g + seq) % int(l.partitions))
					// Not ctx: finish stops the loop, not what it sent.
					cl.Produce(context.Background(), &kgo.Record{Topic: l.topic, Partition: p, Value: []byte(producedValue(g, seq))}, acked)
					seq++
				}
			}
		})
	}
	return gp
}

// pause stops producing until resume and waits for every record sent so
// far to be acknowledged or failed.
func (gp *groupProducer) pause() {
	gp.t.Helper()
	gp.paused.Store(true)
	gp.flush()
}

func (gp *groupProducer) resume() { gp.paused.Store(false) }

// finish stops producing and waits for every record sent to be
// acknowledged or failed.
func (gp *groupProducer) finish() {
	gp.t.Helper()
	gp.cancel()
	gp.wg.Wait()
	gp.flush()
}

func (gp *groupProducer) flush() {
	gp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, cl := range gp.clients {
		if err := cl.Flush(ctx); err != nil {
			gp.t.Fatalf("flushing the producers: %v", err)
		}
	}
}

func (gp *groupProducer) stop() {
	gp.cancel()
	gp.wg.Wait()
}

// groupView is a group as its coordinator describes it.
type groupView struct {
	State        string
	ProtocolType string
	Members      []string           // member ids
	Assigned     map[int32][]string // partition of the topic → members assigned it
}

func (v groupView) String() string {
	var parts []string
	for p := range int32(groupPartitions) {
		if len(v.Assigned[p]) != 1 {
			parts = append(parts, fmt.Sprintf("p%d:%d", p, len(v.Assigned[p])))
		}
	}
	return fmt.Sprintf("state %s, %d members, partitions not assigned exactly once: %v", v.State, len(v.Members), parts)
}

// describeClassic describes a classic group (DescribeGroups, asked of
// its coordinator: see sampleCommits).
func describeClassic(cl *kgo.Client, group, topic string) func(context.Context) (groupView, error) {
	return func(ctx context.Context) (groupView, error) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		d, err := describeOne(ctx, cl, group, req,
			func(r kmsg.Response) []kmsg.DescribeGroupsResponseGroup {
				return r.(*kmsg.DescribeGroupsResponse).Groups
			},
			func(g kmsg.DescribeGroupsResponseGroup) int16 { return g.ErrorCode })
		if err != nil {
			return groupView{}, err
		}
		v := groupView{State: d.State, ProtocolType: d.ProtocolType, Assigned: map[int32][]string{}}
		for _, m := range d.Members {
			v.Members = append(v.Members, m.MemberID)
			var a kmsg.ConsumerMemberAssignment
			if d.ProtocolType != "consumer" || a.ReadFrom(m.MemberAssignment) != nil {
				continue
			}
			for _, at := range a.Topics {
				if at.Topic == topic {
					for _, p := range at.Partitions {
						v.Assigned[p] = append(v.Assigned[p], m.MemberID)
					}
				}
			}
		}
		return v, nil
	}
}

// describeOne sends req, a describe request naming only group, to the
// group's coordinator and returns the one group of the answer (groups
// lists them, code is a group's error code).
func describeOne[G any](ctx context.Context, cl *kgo.Client, group string, req kmsg.Request,
	groups func(kmsg.Response) []G, code func(G) int16) (G, error) {
	var none G
	r, coord, err := askCoordinator(ctx, cl, group, -1, req)
	if err != nil {
		return none, err
	}
	name := kmsg.NameForKey(req.Key())
	gs := groups(r)
	if len(gs) != 1 {
		return none, fmt.Errorf("%s to broker %d: %d groups in the answer", name, coord, len(gs))
	}
	if err := kerr.ErrorForCode(code(gs[0])); err != nil {
		return none, fmt.Errorf("%s to broker %d: %w", name, coord, err)
	}
	return gs[0], nil
}

// waitGroupView polls describe until cond holds, within timeout.
func waitGroupView(t testing.TB, describe func(context.Context) (groupView, error), what string, timeout time.Duration, cond func(groupView) bool) groupView {
	t.Helper()
	ctx := testContext(t, timeout)
	var last string
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := describe(rctx)
		cancel()
		if err == nil && cond(v) {
			return v
		}
		if err != nil {
			last = err.Error()
		} else {
			last = v.String()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group not %s within %v (last: %s)", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stableWith is the condition of a group that has settled with n members
// sharing every partition of its topic, each partition with one of them.
func stableWith(n int) func(groupView) bool {
	return func(v groupView) bool {
		if v.State != "Stable" || len(v.Members) != n || len(v.Assigned) != groupPartitions {
			return false
		}
		for _, ms := range v.Assigned {
			if len(ms) != 1 {
				return false
			}
		}
		return true
	}
}

// committedOffsets are a group's committed offsets of topic, asked until an
// answer comes without error (a coordinator loading or moving), within
// timeout.
func committedOffsets(t testing.TB, cl *kgo.Client, group, topic string, timeout time.Duration) map[int32]int64 {
	t.Helper()
	ctx := testContext(t, timeout)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, _, err := fetchCommitted(rctx, cl, group, topic, -1)
		cancel()
		if err == nil {
			return out
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("committed offsets of group %s: no answer within %v (last error: %v)", group, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// requireCommittedAtEnd requires group's committed offsets of every
// partition of topic to be its end offsets.
func requireCommittedAtEnd(t testing.TB, cl *kgo.Client, group, topic string, ends map[int32]int64) {
	t.Helper()
	got := committedOffsets(t, cl, group, topic, 30*time.Second)
	var diff []string
	for p := range int32(len(ends)) {
		if got[p] != ends[p] {
			diff = append(diff, fmt.Sprintf("p%d: committed %d, end %d", p, got[p], ends[p]))
		}
	}
	if len(diff) > 0 {
		t.Fatalf("group %s: committed offsets are not the end offsets of %s: %s", group, topic, strings.Join(diff, ", "))
	}
}

// RestartAll stops every broker at once (SIGTERM; each must exit cleanly)
// and starts them all again on the same data and ports.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	start := time.Now()
	if err := c.hc.Stop(stopTimeout); err != nil {
		c.t.Fatalf("stopping the cluster: %v", err)
	}
	for _, b := range c.Brokers {
		if code := b.Process().ExitCode(); code != 0 {
			c.t.Fatalf("broker %d exited with code %d (%v) on SIGTERM, want 0%s", b.NodeID, code, b.Process().ExitErr(), b.Process().LogTail())
		}
	}
	stopped := time.Since(start)
	if err := c.hc.Start(context.Background()); err != nil {
		c.t.Fatalf("starting the cluster again: %v", err)
	}
	c.t.Logf("cluster stopped in %v and started again in %v", stopped.Round(time.Millisecond), (time.Since(start) - stopped).Round(time.Millisecond))
}

// logGroupOnFailure logs, when t has failed, the last records of groupID
// in its __consumer_offsets partition: how the group got where it is.
func (c *Cluster) logGroupOnFailure(t testing.TB, groupID string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("group %s in %s (last records):\n%s", groupID, group.OffsetsTopic, tail(c.groupLog(t, groupID), 100))
		}
	})
}

// groupLog lists the records of groupID in its __consumer_offsets
// partition: offset commits and group metadata, with their log offsets and
// times.
func (c *Cluster) groupLog(t testing.TB, groupID string) string {
	t.Helper()
	p := group.PartitionFor(groupID, groupOffsetsPartitions)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(c.Client(t)).ListEndOffsets(ctx, group.OffsetsTopic)
	if err != nil {
		return fmt.Sprintf("(end offset of %s[%d]: %v)", group.OffsetsTopic, p, err)
	}
	end, _ := ends.Lookup(group.OffsetsTopic, p)
	cl := c.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{group.OffsetsTopic: {p: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	var b strings.Builder
	for next := int64(0); next < end.Offset && ctx.Err() == nil; {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if len(r.Key) < 2 {
				return
			}
			at := r.Timestamp.Format("15:04:05.000")
			switch binary.BigEndian.Uint16(r.Key) { // the key's version says its kind
			case 0, 1:
				var k kmsg.OffsetCommitKey
				if k.ReadFrom(r.Key) != nil || k.Group != groupID {
					return
				}
				var v kmsg.OffsetCommitValue
				if r.Value == nil || v.ReadFrom(r.Value) != nil {
					fmt.Fprintf(&b, "%s @%d %s[%d] deleted\n", at, r.Offset, k.Topic, k.Partition)
					return
				}
				fmt.Fprintf(&b, "%s @%d %s[%d] committed %d\n", at, r.Offset, k.Topic, k.Partition, v.Offset)
			case 2:
				var k kmsg.GroupMetadataKey
				if k.ReadFrom(r.Key) != nil || k.Group != groupID {
					return
				}
				var v kmsg.GroupMetadataValue
				if r.Value == nil || v.ReadFrom(r.Value) != nil {
					fmt.Fprintf(&b, "%s @%d group deleted\n", at, r.Offset)
					return
				}
				fmt.Fprintf(&b, "%s @%d group generation %d, %d members\n", at, r.Offset, v.Generation, len(v.Members))
			}
		})
	}
	return b.String()
}
