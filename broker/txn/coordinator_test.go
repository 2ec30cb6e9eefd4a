package txn

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/partition"
)

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	w := int16(0)
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: code %d (%v), want %d (%v)", what, got, kerr.ErrorForCode(got), w, want)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for flag, mod := range map[string]func(*Config){
		"transaction.state.log.num.partitions":                        func(c *Config) { c.NumPartitions = 0 },
		"transaction.state.log.replication.factor":                    func(c *Config) { c.ReplicationFactor = 0 },
		"transaction.state.log.min.isr":                               func(c *Config) { c.MinISR = 0 },
		"transaction.state.log.segment.bytes":                         func(c *Config) { c.SegmentBytes = 1 },
		"transaction.max.timeout.ms":                                  func(c *Config) { c.MaxTimeout = 0 },
		"transactional.id.expiration.ms":                              func(c *Config) { c.IDExpiration = 0 },
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": func(c *Config) { c.AbortTimedOutInterval = 0 },
		"transaction.remove.expired.transaction.cleanup.interval.ms":  func(c *Config) { c.RemoveExpiredInterval = -1 },
		"request.timeout.ms":                                          func(c *Config) { c.WriteTimeout = 0 },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s: %v", flag, err)
		}
	}
	if tc := DefaultConfig().TopicConfigs(); tc["cleanup.policy"] != "compact" || tc["min.insync.replicas"] != "2" {
		t.Fatalf("topic configs %v", tc)
	}
	d := DefaultConfig()
	if d.NumPartitions != 50 || d.MaxTimeout != 900000*time.Millisecond || d.IDExpiration != 604800000*time.Millisecond ||
		d.AbortTimedOutInterval != 10000*time.Millisecond || d.RemoveExpiredInterval != 3600000*time.Millisecond {
		t.Fatalf("defaults are not Kafka's: %+v", d)
	}
}

func TestInitProducerIDNewAndBump(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t1")
	if pid != 1000 || epoch != 0 {
		t.Fatalf("first init: %d/%d", pid, epoch)
	}
	pid2, epoch2 := h.mustInit("t1")
	if pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: %d/%d, want the same id with epoch 1", pid2, epoch2)
	}
	// The first producer is fenced; before KIP-588's versions it is told
	// INVALID_PRODUCER_EPOCH.
	wantCode(t, "old epoch v3", h.add("t1", pid, 0, tp("a", 0)), kerr.ProducerFenced)
	wantCode(t, "old epoch v1", h.addVersion(1, "t1", pid, 0, tp("a", 0)), kerr.InvalidProducerEpoch)
	wantCode(t, "EndTxn old epoch v1", h.endVersion(1, "t1", pid, 0, true), kerr.InvalidProducerEpoch)
	wantCode(t, "new epoch", h.add("t1", pid, 1, tp("a", 0)), nil)
	if m := h.log.states(t)["t1"]; m.state != Ongoing || m.epoch != 1 || !m.has(tp("a", 0)) {
		t.Fatalf("log holds %+v", m)
	}
	// Another id gets another producer id.
	if pid3, _ := h.mustInit("t2"); pid3 == pid {
		t.Fatal("two ids share a producer id")
	}
}

func TestInitProducerIDRefusals(t *testing.T) {
	h := newHarness(t)
	code, _, _ := h.init("t", 0, -1, -1)
	wantCode(t, "zero timeout", code, kerr.InvalidTransactionTimeout)
	code, _, _ = h.init("t", 900001, -1, -1)
	wantCode(t, "timeout past transaction.max.timeout.ms", code, kerr.InvalidTransactionTimeout)
	code, _, _ = h.init("t", 900000, -1, -1)
	wantCode(t, "timeout at the max", code, nil)
	code, _, _ = h.init("", 1000, -1, -1)
	wantCode(t, "empty id", code, kerr.InvalidRequest)
	code, _, _ = h.init("t", 1000, 5, -1)
	wantCode(t, "producer id without epoch", code, kerr.InvalidRequest)
	h.pids.err = context.DeadlineExceeded
	code, _, _ = h.init("fresh", 1000, -1, -1)
	wantCode(t, "allocator down", code, kerr.CoordinatorNotAvailable)
	req := kmsg.NewPtrInitProducerIDRequest()
	wantCode(t, "no transactional id", h.c.InitProducerID(context.Background(), req).ErrorCode, kerr.InvalidRequest)
}

func TestKIP360Recovery(t *testing.T) {
	h := newHarness(t)
	pid, _ := h.mustInit("t")
	code, p, e := h.init("t", 1000, pid, 0)
	wantCode(t, "recover with the current epoch", code, nil)
	if p != pid || e != 1 {
		t.Fatalf("recovered to %d/%d", p, e)
	}
	code, p, e = h.init("t", 1000, pid, 0) // a retry: the answer was lost
	wantCode(t, "retry", code, nil)
	if p != pid || e != 1 {
		t.Fatalf("retry answered %d/%d, want the same epoch", p, e)
	}
	code, _, _ = h.init("t", 1000, pid, 7)
	wantCode(t, "unknown epoch", code, kerr.ProducerFenced)
	code, _, _ = h.init("t", 1000, pid+50, 1)
	wantCode(t, "another producer id", code, kerr.ProducerFenced)
	// A new producer resets the retry window: the old epoch is fenced.
	h.mustInit("t")
	code, _, _ = h.init("t", 1000, pid, 0)
	wantCode(t, "retry after another producer", code, kerr.ProducerFenced)
	// An id unknown here accepts any producer id (it was just created).
	code, p, e = h.init("fresh", 1000, 77, 3)
	wantCode(t, "unknown id with a producer id", code, nil)
	if p == 77 || e != 0 {
		t.Fatalf("fresh id answered %d/%d", p, e)
	}
}

func TestEpochExhaustionRotatesProducerID(t *testing.T) {
	h := newHarness(t)
	pid, _ := h.mustInit("t")
	sh, _ := h.c.shardFor("t")
	tx := sh.get("t")
	tx.mu.Lock()
	tx.cur.epoch = math.MaxInt16 - 1
	tx.mu.Unlock()
	code, p, e := h.init("t", 1000, pid, math.MaxInt16-1)
	wantCode(t, "rotate", code, nil)
	if p == pid || e != 0 {
		t.Fatalf("rotation answered %d/%d", p, e)
	}
	m, _ := h.state("t")
	if m.prevProducerID != pid {
		t.Fatalf("previous producer id %d, want %d", m.prevProducerID, pid)
	}
	code, p2, e2 := h.init("t", 1000, pid, math.MaxInt16-1) // retry of the rotation
	wantCode(t, "retry of the rotation", code, nil)
	if p2 != p || e2 != 0 {
		t.Fatalf("retry answered %d/%d, want %d/0", p2, e2, p)
	}
}

func TestCommit(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "EndTxn with no transaction", h.end("t", pid, epoch, true), kerr.InvalidTxnState)
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0), tp("b", 1)), nil)
	_, start := h.log.Bounds()
	h.clock.advance(time.Second)
	wantCode(t, "add again", h.add("t", pid, epoch, tp("a", 0)), nil)
	if _, end := h.log.Bounds(); end != start {
		t.Fatal("adding partitions already in the transaction wrote a record")
	}
	off := kmsg.NewPtrAddOffsetsToTxnRequest()
	off.TransactionalID, off.ProducerID, off.ProducerEpoch, off.Group = "t", pid, epoch, "g"
	wantCode(t, "add offsets", h.c.AddOffsetsToTxn(context.Background(), off).ErrorCode, nil)
	gtp := tp(group.OffsetsTopic, group.PartitionFor("g", 50))
	m, _ := h.state("t")
	if m.state != Ongoing || !m.has(gtp) || len(m.partitions) != 3 || m.startMs != h.clock.now.Add(-time.Second).UnixMilli() {
		t.Fatalf("ongoing: %+v", m)
	}
	wantCode(t, "commit", h.end("t", pid, epoch, true), nil)
	m = h.settle("t", CompleteCommit)
	if len(m.partitions) != 0 {
		t.Fatalf("complete state keeps partitions %v", m.partitions)
	}
	for _, p := range []TopicPartition{tp("a", 0), tp("b", 1), gtp} {
		ms := h.markers.writtenTo(p)
		if len(ms) != 1 || !ms[0].Commit || ms[0].ProducerID != pid || ms[0].ProducerEpoch != epoch || ms[0].CoordinatorEpoch != 1 {
			t.Fatalf("markers to %v: %+v", p, ms)
		}
	}
	if st := h.log.states(t)["t"]; st.state != CompleteCommit {
		t.Fatalf("log ends with %v", st.state)
	}
	wantCode(t, "EndTxn retried", h.end("t", pid, epoch, true), nil)
	wantCode(t, "abort after commit", h.end("t", pid, epoch, false), kerr.InvalidTxnState)
	// The next transaction starts from CompleteCommit.
	wantCode(t, "add after commit", h.add("t", pid, epoch, tp("a", 2)), nil)
	wantCode(t, "abort", h.end("t", pid, epoch, false), nil)
	h.settle("t", CompleteAbort)
	if ms := h.markers.writtenTo(tp("a", 2)); len(ms) != 1 || ms[0].Commit {
		t.Fatalf("abort markers: %+v", ms)
	}
	wantCode(t, "commit after abort", h.end("t", pid, epoch, true), kerr.InvalidTxnState)
	// EndTxn v5 answers the producer id and epoch.
	req := kmsg.NewPtrEndTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = 5, "t", pid, epoch
	if resp := h.c.EndTxn(context.Background(), req); resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != epoch {
		t.Fatalf("EndTxn v5: %+v", resp)
	}
}

func TestRequestErrors(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "EndTxn unknown id", h.end("nope", 1, 0, true), kerr.InvalidProducerIDMapping)
	wantCode(t, "add unknown id", h.add("nope", 1, 0, tp("a", 0)), kerr.InvalidProducerIDMapping)
	wantCode(t, "EndTxn empty id", h.end("", 1, 0, true), kerr.InvalidRequest)
	pid, epoch := h.mustInit("t")
	wantCode(t, "EndTxn other producer id", h.end("t", pid+1, epoch, true), kerr.InvalidProducerIDMapping)
	wantCode(t, "add other producer id", h.add("t", pid+1, epoch, tp("a", 0)), kerr.InvalidProducerIDMapping)
	wantCode(t, "EndTxn newer epoch", h.end("t", pid, epoch+1, true), kerr.ProducerFenced)

	// Unknown partitions: the request is not attempted.
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = 3, "t", pid, epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "a", Partitions: []int32{0, 0, 9}}, {Topic: "zz", Partitions: []int32{0}}}
	resp := h.c.AddPartitionsToTxn(context.Background(), req)
	got := map[TopicPartition]int16{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got[tp(rt.Topic, p.Partition)] = p.ErrorCode
		}
	}
	want := map[TopicPartition]int16{tp("a", 0): kerr.OperationNotAttempted.Code, tp("a", 9): kerr.UnknownTopicOrPartition.Code,
		tp("zz", 0): kerr.UnknownTopicOrPartition.Code}
	if len(resp.Topics[0].Partitions) != 2 || len(got) != len(want) {
		t.Fatalf("answer %+v", resp.Topics)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%v: %d, want %d", k, got[k], v)
		}
	}
	if m, _ := h.state("t"); m.state != Empty {
		t.Fatalf("refused request changed the state to %v", m.state)
	}

	// Writes that fail leave the state as it was.
	h.log.mu.Lock()
	h.log.failNext = partition.ErrNotEnoughReplicas
	h.log.mu.Unlock()
	wantCode(t, "ISR too small", h.add("t", pid, epoch, tp("a", 0)), kerr.CoordinatorNotAvailable)
	h.log.mu.Lock()
	h.log.failNext = partition.ErrNotLeader
	h.log.mu.Unlock()
	wantCode(t, "not the leader", h.add("t", pid, epoch, tp("a", 0)), kerr.NotCoordinator)
	if m, idle := h.state("t"); m.state != Empty || !idle {
		t.Fatalf("failed writes left %v (idle %v)", m.state, idle)
	}
	wantCode(t, "add after failures", h.add("t", pid, epoch, tp("a", 0)), nil)

	// A write not committed in time: COORDINATOR_NOT_AVAILABLE, pending
	// meanwhile, applied once committed.
	h.c.cfg.WriteTimeout = 20 * time.Millisecond
	h.log.mu.Lock()
	h.log.hold = true
	h.log.mu.Unlock()
	wantCode(t, "commit not committed in time", h.end("t", pid, epoch, true), kerr.CoordinatorNotAvailable)
	wantCode(t, "while the write is pending", h.end("t", pid, epoch, true), kerr.ConcurrentTransactions)
	h.log.mu.Lock()
	h.log.hold = false
	h.log.mu.Unlock()
	h.log.commitAll()
	h.settle("t", CompleteCommit)
}

func TestCoordinatorLookup(t *testing.T) {
	h := newHarness(t)
	h.mu.Lock()
	h.parts = 0
	h.mu.Unlock()
	code, _, _ := h.init("t", 1000, -1, -1)
	wantCode(t, "no __transaction_state", code, kerr.CoordinatorNotAvailable)
	h.mu.Lock()
	h.parts = 2
	h.mu.Unlock()
	id := "a"
	for PartitionFor(id, 2) != 1 {
		id += "a"
	}
	code, _, _ = h.init(id, 1000, -1, -1)
	wantCode(t, "partition led elsewhere", code, kerr.NotCoordinator)
	d := h.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{id}})
	wantCode(t, "describe elsewhere", d.TransactionStates[0].ErrorCode, kerr.NotCoordinator)
}

func TestConcurrentWhileCompleting(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.committing("t", tp("a", 0))
	wantCode(t, "EndTxn again", h.end("t", pid, epoch, true), kerr.ConcurrentTransactions)
	wantCode(t, "EndTxn opposite", h.end("t", pid, epoch, false), kerr.ConcurrentTransactions)
	h.c.settleWait = 50 * time.Millisecond
	start := time.Now()
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 1)), kerr.ConcurrentTransactions)
	if waited := time.Since(start); waited < h.c.settleWait {
		t.Fatalf("add answered CONCURRENT_TRANSACTIONS after %v, before the settle wait", waited)
	}
	code, _, _ := h.init("t", 1000, -1, -1)
	wantCode(t, "init", code, kerr.ConcurrentTransactions)
	if m, _ := h.state("t"); m.state != PrepareCommit {
		t.Fatalf("state while markers are written: %v", m.state)
	}
	d := h.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"t"}})
	if st := d.TransactionStates[0]; st.State != "PrepareCommit" || len(st.Topics) != 1 {
		t.Fatalf("describe: %+v", st)
	}
	close(h.markers.block)
	h.settle("t", CompleteCommit)
}

// TestAddWaitsForCompletion: the next transaction's first
// AddPartitionsToTxn, sent while the last one's markers are being written,
// is held until that transaction is complete and then succeeds, instead of
// sending the producer into its CONCURRENT_TRANSACTIONS backoff.
func TestAddWaitsForCompletion(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.committing("t", tp("a", 0))
	added := make(chan int16, 1)
	go func() { added <- h.add("t", pid, epoch, tp("b", 0)) }()
	select {
	case code := <-added:
		t.Fatalf("add answered %d while the markers were blocked", code)
	case <-time.After(100 * time.Millisecond):
	}
	close(h.markers.block)
	select {
	case code := <-added:
		wantCode(t, "add after completion", code, nil)
	case <-time.After(10 * time.Second):
		t.Fatal("add still waiting after the transaction completed")
	}
	m, _ := h.state("t")
	if m.state != Ongoing || len(m.partitions) != 1 || m.partitions[0] != tp("b", 0) {
		t.Fatalf("after the held add: %v %v", m.state, m.partitions)
	}
	if got := h.markers.writtenTo(tp("a", 0)); len(got) != 1 || !got[0].Commit {
		t.Fatalf("markers of the first transaction: %+v", got)
	}
}

// TestNextAddSharesCompletesCommit: once the markers are written, the
// Complete state is appended and the producer's next AddPartitionsToTxn is
// appended right after it, without waiting for the Complete state's
// commit (one sync covers both); the add is answered when its own record
// is committed.
func TestNextAddSharesCompletesCommit(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.committing("t", tp("a", 0))
	h.log.mu.Lock()
	h.log.hold = true
	before := len(h.log.batches)
	h.log.mu.Unlock()
	added := make(chan int16, 1)
	go func() { added <- h.add("t", pid, epoch, tp("b", 0)) }()
	close(h.markers.block)
	h.waitFor("the Complete state and the next add appended, neither committed", func() bool {
		h.log.mu.Lock()
		defer h.log.mu.Unlock()
		return len(h.log.batches) == before+2
	})
	select {
	case code := <-added:
		t.Fatalf("add answered %d before its record was committed", code)
	default:
	}
	h.log.commitAll()
	wantCode(t, "add after the commit", <-added, nil)
	if m, _ := h.state("t"); m.state != Ongoing || len(m.partitions) != 1 || m.partitions[0] != tp("b", 0) {
		t.Fatalf("state %v %v", m.state, m.partitions)
	}
}

func TestFenceZombie(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "zombie adds", h.add("t", pid, epoch, tp("a", 0), tp("a", 1)), nil)
	// A new producer with the same id: the ongoing transaction is aborted
	// with a bumped epoch and the newcomer retries.
	code, _, _ := h.init("t", 1000, -1, -1)
	wantCode(t, "new producer while the zombie's transaction runs", code, kerr.ConcurrentTransactions)
	m := h.settle("t", CompleteAbort)
	if m.epoch != epoch+1 {
		t.Fatalf("epoch after the fence %d", m.epoch)
	}
	for _, p := range []TopicPartition{tp("a", 0), tp("a", 1)} {
		ms := h.markers.writtenTo(p)
		if len(ms) != 1 || ms[0].Commit || ms[0].ProducerEpoch != epoch+1 {
			t.Fatalf("fence markers to %v: %+v", p, ms)
		}
	}
	code, p2, e2 := h.init("t", 1000, -1, -1)
	wantCode(t, "newcomer retries", code, nil)
	if p2 != pid || e2 != epoch+2 {
		t.Fatalf("newcomer got %d/%d", p2, e2)
	}
	wantCode(t, "zombie commits", h.end("t", pid, epoch, true), kerr.ProducerFenced)
	wantCode(t, "zombie adds", h.add("t", pid, epoch, tp("a", 0)), kerr.ProducerFenced)
	wantCode(t, "newcomer adds", h.add("t", pid, e2, tp("a", 0)), nil)
}

func TestFenceWriteFailsThenRetries(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0)), nil)
	h.log.mu.Lock()
	h.log.failNext = partition.ErrNotEnoughReplicas
	h.log.mu.Unlock()
	code, _, _ := h.init("t", 1000, -1, -1)
	wantCode(t, "fence not written", code, kerr.CoordinatorNotAvailable)
	if m, _ := h.state("t"); m.state != Ongoing || m.epoch != epoch {
		t.Fatalf("after a failed fence: %v epoch %d", m.state, m.epoch)
	}
	code, _, _ = h.init("t", 1000, -1, -1)
	wantCode(t, "fence", code, kerr.ConcurrentTransactions)
	if m := h.settle("t", CompleteAbort); m.epoch != epoch+1 {
		t.Fatalf("the failed fence bumped the epoch twice: %d", m.epoch)
	}
}

func TestTimedOutTransactionIsAborted(t *testing.T) {
	h := newHarness(t)
	code, pid, epoch := h.init("t", 1000, -1, -1)
	wantCode(t, "init", code, nil)
	h.mustInit("idle") // Empty: never aborted
	wantCode(t, "add", h.add("t", pid, epoch, tp("b", 0)), nil)
	h.clock.advance(time.Second)
	h.c.abortTimedOut()
	if m, _ := h.state("t"); m.state != Ongoing {
		t.Fatalf("aborted at its timeout: %v", m.state)
	}
	h.clock.advance(time.Millisecond)
	h.c.abortTimedOut()
	m := h.settle("t", CompleteAbort)
	if m.epoch != epoch+1 {
		t.Fatalf("timeout abort left epoch %d", m.epoch)
	}
	if ms := h.markers.writtenTo(tp("b", 0)); len(ms) != 1 || ms[0].Commit || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("markers: %+v", ms)
	}
	wantCode(t, "producer commits late", h.end("t", pid, epoch, true), kerr.ProducerFenced)
	if m, _ := h.state("idle"); m.state != Empty {
		t.Fatalf("idle id: %v", m.state)
	}
	// KIP-360: the timed-out producer recovers with its old epoch only if
	// it is the last one handed out; it was bumped by the coordinator, so
	// it is fenced.
	code, _, _ = h.init("t", 1000, pid, epoch)
	wantCode(t, "recover after the timeout abort", code, kerr.ProducerFenced)
}

func TestMarkerRetry(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0), tp("a", 1), tp("b", 0), tp("b", 1)), nil)
	h.markers.mu.Lock()
	h.markers.errs = 2
	h.markers.codes[tp("a", 1)] = []int16{kerr.NotLeaderForPartition.Code, kerr.NotEnoughReplicas.Code}
	h.markers.codes[tp("b", 0)] = []int16{kerr.RequestTimedOut.Code}
	h.markers.mu.Unlock()
	// Topic b is deleted before the markers go out: its partitions are
	// skipped.
	h.mu.Lock()
	delete(h.topics, "b")
	h.mu.Unlock()
	wantCode(t, "commit", h.end("t", pid, epoch, true), nil)
	h.settle("t", CompleteCommit)
	for _, p := range []TopicPartition{tp("a", 0), tp("a", 1)} {
		if ms := h.markers.writtenTo(p); len(ms) != 1 {
			t.Fatalf("markers to %v: %d", p, len(ms))
		}
	}
	if ms := h.markers.writtenTo(tp("b", 1)); len(ms) != 0 {
		t.Fatal("a marker went to a deleted topic")
	}
	h.markers.mu.Lock()
	calls := len(h.markers.calls)
	last := h.markers.calls[calls-1]
	h.markers.mu.Unlock()
	if calls != 5 || len(last.Partitions) != 1 || last.Partitions[0] != tp("a", 1) {
		t.Fatalf("%d calls, the last for %v", calls, last.Partitions)
	}
}

func TestMarkersRefusedByNewerEpochStop(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0)), nil)
	h.markers.mu.Lock()
	h.markers.codes[tp("a", 0)] = []int16{kerr.TransactionCoordinatorFenced.Code}
	h.markers.mu.Unlock()
	wantCode(t, "commit", h.end("t", pid, epoch, true), nil)
	<-h.markers.called
	time.Sleep(20 * time.Millisecond) // no retry follows
	h.markers.mu.Lock()
	n := len(h.markers.calls)
	h.markers.mu.Unlock()
	if m, idle := h.state("t"); n != 1 || m.state != PrepareCommit || idle {
		t.Fatalf("%d calls; state %v idle %v", n, m.state, idle)
	}
}

func TestFailoverCompletesPreparedTransaction(t *testing.T) {
	h := newHarness(t)
	_, epoch := h.committing("t", tp("a", 0), tp("a", 2))
	// Another producer's transaction is ongoing at the failover.
	pid2, e2 := h.mustInit("u")
	wantCode(t, "add u", h.add("u", pid2, e2, tp("b", 0)), nil)

	// The coordinator loses the partition mid-commit: its marker sender
	// stops. The new leader (here: this broker again, in epoch 2, over the
	// same log) loads and completes the transaction.
	h.c.resign(0)
	code, _, _ := h.init("t", 1000, -1, -1)
	wantCode(t, "after resigning", code, kerr.NotCoordinator)
	h.markers.mu.Lock()
	h.markers.block = nil
	h.markers.mu.Unlock()
	if st := h.log.states(t)["t"]; st.state != PrepareCommit {
		t.Fatalf("log at failover: %v", st.state)
	}
	gate := make(chan struct{})
	h.log.mu.Lock()
	h.log.readGate = gate
	h.log.mu.Unlock()
	h.c.elect(0, h.log, 2)
	code, _, _ = h.init("t", 1000, -1, -1)
	wantCode(t, "while loading", code, kerr.CoordinatorLoadInProgress)
	l := h.c.ListTransactions(kmsg.NewPtrListTransactionsRequest())
	wantCode(t, "list while loading", l.ErrorCode, kerr.CoordinatorLoadInProgress)
	close(gate)
	h.settle("t", CompleteCommit)
	ms := h.markers.writtenTo(tp("a", 2))
	if len(ms) != 1 || !ms[0].Commit || ms[0].CoordinatorEpoch != 2 || ms[0].ProducerEpoch != epoch {
		t.Fatalf("markers after failover: %+v", ms)
	}
	if st := h.log.states(t)["t"]; st.state != CompleteCommit {
		t.Fatalf("log after failover: %v", st.state)
	}
	// The ongoing transaction survived the load, and still times out.
	m, _ := h.state("u")
	if m.state != Ongoing || !m.has(tp("b", 0)) || m.producerID != pid2 {
		t.Fatalf("u after load: %+v", m)
	}
	wantCode(t, "u commits", h.end("u", pid2, e2, true), nil)
	h.settle("u", CompleteCommit)
}

func TestExpiry(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("old")
	wantCode(t, "add", h.add("old", pid, epoch, tp("a", 0)), nil)
	h.clock.advance(DefaultConfig().IDExpiration)
	h.mustInit("live") // recent
	h.c.expireIDs()
	if m, _ := h.state("old"); m.state != Ongoing {
		t.Fatal("an ongoing transaction's id expired")
	}
	wantCode(t, "commit", h.end("old", pid, epoch, true), nil)
	h.settle("old", CompleteCommit)
	h.clock.advance(DefaultConfig().IDExpiration + time.Millisecond)
	h.mustInit("fresh")
	h.c.expireIDs()
	h.waitFor("expiry", func() bool {
		return !h.present("old") && !h.present("live")
	})
	d := h.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"old", "live", "fresh"}})
	wantCode(t, "describe expired", d.TransactionStates[0].ErrorCode, kerr.TransactionalIDNotFound)
	wantCode(t, "describe expired", d.TransactionStates[1].ErrorCode, kerr.TransactionalIDNotFound)
	wantCode(t, "describe fresh", d.TransactionStates[2].ErrorCode, nil)
	states := h.log.states(t)
	if _, ok := states["old"]; ok || len(states) != 1 {
		t.Fatalf("log after expiry: %v", states)
	}
	wantCode(t, "expired producer", h.add("old", pid, epoch, tp("a", 0)), kerr.InvalidProducerIDMapping)
	// Reloading finds the tombstones; the id starts afresh.
	h.c.resign(0)
	h.elect(h.log, 2)
	if h.present("old") {
		t.Fatal("expired id reloaded")
	}
	if p, _ := h.mustInit("old"); p == pid {
		t.Fatal("an expired id got its old producer id back")
	}
}

func TestDescribeAndList(t *testing.T) {
	h := newHarness(t)
	p1, e1 := h.mustInit("one")
	p2, e2 := h.mustInit("two")
	h.mustInit("three")
	wantCode(t, "add", h.add("one", p1, e1, tp("b", 1), tp("a", 2), tp("a", 0)), nil)
	h.clock.advance(5 * time.Second)
	wantCode(t, "add", h.add("two", p2, e2, tp("a", 1)), nil)
	d := h.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"one", "nope"}})
	st := d.TransactionStates[0]
	if st.ErrorCode != 0 || st.State != "Ongoing" || st.ProducerID != p1 || st.ProducerEpoch != e1 || st.TimeoutMillis != 60000 ||
		st.StartTimestamp != h.clock.now.Add(-5*time.Second).UnixMilli() || len(st.Topics) != 2 ||
		st.Topics[0].Topic != "a" || !slices.Equal(st.Topics[0].Partitions, []int32{0, 2}) {
		t.Fatalf("describe one: %+v", st)
	}
	wantCode(t, "describe unknown", d.TransactionStates[1].ErrorCode, kerr.TransactionalIDNotFound)
	d = h.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{""}})
	wantCode(t, "describe empty id", d.TransactionStates[0].ErrorCode, kerr.InvalidRequest)

	list := func(mod func(*kmsg.ListTransactionsRequest)) []string {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version = 2
		mod(req)
		resp := h.c.ListTransactions(req)
		if resp.ErrorCode != 0 {
			t.Fatalf("list: code %d", resp.ErrorCode)
		}
		var ids []string
		for _, s := range resp.TransactionStates {
			ids = append(ids, s.TransactionalID+":"+s.TransactionState)
		}
		return ids
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	check("all", list(func(*kmsg.ListTransactionsRequest) {}), "one:Ongoing", "three:Empty", "two:Ongoing")
	check("state", list(func(r *kmsg.ListTransactionsRequest) { r.StateFilters = []string{"Empty"} }), "three:Empty")
	check("producer", list(func(r *kmsg.ListTransactionsRequest) { r.ProducerIDFilters = []int64{p2} }), "two:Ongoing")
	check("duration", list(func(r *kmsg.ListTransactionsRequest) {
		r.StateFilters = []string{"Ongoing"}
		r.DurationFilterMillis = 4000
	}), "one:Ongoing")
	check("pattern", list(func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("^t") }), "three:Empty", "two:Ongoing")
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = []string{"Bogus"}
	resp := h.c.ListTransactions(req)
	if len(resp.TransactionStates) != 0 || !slices.Equal(resp.UnknownStateFilters, []string{"Bogus"}) {
		t.Fatalf("unknown filter: %+v", resp)
	}
	req = kmsg.NewPtrListTransactionsRequest()
	req.Version, req.TransactionalIDPattern = 2, kmsg.StringPtr("(")
	wantCode(t, "bad pattern", h.c.ListTransactions(req).ErrorCode, kerr.InvalidRegularExpression)
}

func TestAddPartitionsBatchedAndVerify(t *testing.T) {
	h := newHarness(t)
	p1, e1 := h.mustInit("one")
	p2, e2 := h.mustInit("two")
	wantCode(t, "add", h.add("one", p1, e1, tp("a", 0)), nil)
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 4
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{
		{TransactionalID: "one", ProducerID: p1, ProducerEpoch: e1, VerifyOnly: true,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "a", Partitions: []int32{0, 1}}}},
		{TransactionalID: "two", ProducerID: p2, ProducerEpoch: e2,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "b", Partitions: []int32{0, 1}}}},
		{TransactionalID: "one", ProducerID: p1, ProducerEpoch: e1 + 1, VerifyOnly: true,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "a", Partitions: []int32{0}}}},
		{TransactionalID: "nope", ProducerID: 1, ProducerEpoch: 0, VerifyOnly: true,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "a", Partitions: []int32{0}}}},
		{TransactionalID: "two", ProducerID: p2, ProducerEpoch: e2, VerifyOnly: true,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "q", Partitions: []int32{0}}}},
	}
	resp := h.c.AddPartitionsToTxn(context.Background(), req)
	codes := func(i int) []int16 {
		var out []int16
		for _, t := range resp.Transactions[i].Topics {
			for _, p := range t.Partitions {
				out = append(out, p.ErrorCode)
			}
		}
		return out
	}
	for i, want := range [][]int16{
		{0, kerr.TransactionAbortable.Code},
		{0, 0},
		{kerr.ProducerFenced.Code},
		{kerr.InvalidProducerIDMapping.Code},
		{kerr.UnknownTopicOrPartition.Code},
	} {
		if got := codes(i); !slices.Equal(got, want) || resp.Transactions[i].TransactionalID != req.Transactions[i].TransactionalID {
			t.Fatalf("transaction %d: %v, want %v", i, got, want)
		}
	}
	if m, _ := h.state("two"); m.state != Ongoing || len(m.partitions) != 2 {
		t.Fatalf("batched add: %+v", m)
	}
	if m, _ := h.state("one"); len(m.partitions) != 1 {
		t.Fatalf("verify added partitions: %+v", m)
	}
	// A prepared transaction refuses verification.
	h.markers.mu.Lock()
	h.markers.block = make(chan struct{})
	h.markers.mu.Unlock()
	wantCode(t, "commit", h.end("one", p1, e1, true), nil)
	all, _ := h.c.verify("one", p1, e1, []TopicPartition{tp("a", 0)})
	wantCode(t, "verify while prepared", all, kerr.ConcurrentTransactions)
	close(h.markers.block)
	h.settle("one", CompleteCommit)
	all, missing := h.c.verify("one", p1, e1, []TopicPartition{tp("a", 0)})
	if all != 0 || !missing[tp("a", 0)] {
		t.Fatalf("verify after commit: %d %v", all, missing)
	}
}

func TestAddOffsetsToTxn(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = 1, "t", pid, epoch+1, "g"
	wantCode(t, "fenced v1", h.c.AddOffsetsToTxn(context.Background(), req).ErrorCode, kerr.InvalidProducerEpoch)
	req.Version = 3
	wantCode(t, "fenced v3", h.c.AddOffsetsToTxn(context.Background(), req).ErrorCode, kerr.ProducerFenced)
	req.TransactionalID = ""
	wantCode(t, "empty id", h.c.AddOffsetsToTxn(context.Background(), req).ErrorCode, kerr.InvalidRequest)
	h.mu.Lock()
	delete(h.topics, group.OffsetsTopic)
	h.mu.Unlock()
	req.TransactionalID, req.ProducerEpoch = "t", epoch
	wantCode(t, "no __consumer_offsets", h.c.AddOffsetsToTxn(context.Background(), req).ErrorCode, kerr.CoordinatorNotAvailable)
}

func TestUndecodableRecordKeepsThePartitionLoading(t *testing.T) {
	h := newHarness(t)
	h.mustInit("t")
	bad := meta{producerID: 1, state: 9}
	b := mustBatch(t, encodeKey("t"), encodeValue(bad), 1)
	if _, err := h.log.Append(b); err != nil {
		t.Fatal(err)
	}
	h.c.resign(0)
	h.c.elect(0, h.log, 2)
	time.Sleep(20 * time.Millisecond)
	code, _, _ := h.init("t", 1000, -1, -1)
	wantCode(t, "after a bad record", code, kerr.CoordinatorLoadInProgress)
}

func TestCloseStopsEverything(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0)), nil)
	h.markers.mu.Lock()
	h.markers.block = make(chan struct{}) // never released: Close must not wait for it
	h.markers.mu.Unlock()
	wantCode(t, "commit", h.end("t", pid, epoch, true), nil)
	<-h.markers.called
	h.log.mu.Lock()
	h.log.hold = true
	h.log.mu.Unlock()
	initDone := make(chan int16, 1)
	go func() { code, _, _ := h.init("u", 1000, -1, -1); initDone <- code }() // a write that is never committed
	time.Sleep(5 * time.Millisecond)
	closed := make(chan struct{})
	go func() { h.c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	wantCode(t, "init cut short by Close", <-initDone, kerr.NotCoordinator)
}

func TestTransitions(t *testing.T) {
	for _, c := range []struct {
		from, to State
		ok       bool
	}{
		{Empty, Ongoing, true}, {CompleteCommit, Ongoing, true}, {Ongoing, PrepareCommit, true},
		{PrepareCommit, CompleteCommit, true}, {PrepareAbort, CompleteAbort, true}, {CompleteAbort, Empty, true},
		{Empty, Dead, true}, {Empty, PrepareCommit, false}, {Ongoing, Empty, false}, {PrepareCommit, PrepareAbort, false},
		{CompleteCommit, CompleteAbort, false}, {Ongoing, Dead, false}, {Dead, Empty, false},
	} {
		if canTransition(c.from, c.to) != c.ok {
			t.Errorf("%v → %v: %v", c.from, c.to, !c.ok)
		}
	}
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0)), nil)
	wantCode(t, "commit", h.end("t", pid, epoch, true), nil)
	h.settle("t", CompleteCommit)
	// CompleteCommit → Empty: a new producer after a commit.
	if p, e := h.mustInit("t"); p != pid || e != epoch+1 {
		t.Fatalf("init after commit: %d/%d", p, e)
	}
	if m, _ := h.state("t"); m.state != Empty {
		t.Fatalf("after init: %v", m.state)
	}
	// An invalid transition is refused without a write.
	sh, _ := h.c.shardFor("t")
	tx := sh.get("t")
	_, end := h.log.Bounds()
	tx.mu.Lock()
	next := tx.cur
	next.state = CompleteAbort
	ch := sh.writeLocked(tx, next, nil)
	tx.mu.Unlock()
	wantCode(t, "Empty → CompleteAbort", <-ch, kerr.UnknownServerError)
	if _, e := h.log.Bounds(); e != end {
		t.Fatal("an invalid transition was written")
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("t")
	h.mustInit("u")
	wantCode(t, "add", h.add("t", pid, epoch, tp("a", 0)), nil)
	reg := prometheus.NewRegistry()
	m, err := newMetrics(h.c, reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ended(true)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mm := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mm.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = mm.GetGauge().GetValue() + mm.GetCounter().GetValue()
		}
	}
	if got["sediment_txn_transactional_ids/Ongoing"] != 1 || got["sediment_txn_transactional_ids/Empty"] != 1 ||
		got["sediment_txn_committed_total"] != 1 {
		t.Fatalf("metrics: %v", got)
	}
}
