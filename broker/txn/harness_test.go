package txn

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// memLog is an in-memory __transaction_state partition: appends are
// committed at once unless held; the next append can be made to fail; reads
// can be gated to hold a load.
type memLog struct {
	mu        sync.Mutex
	batches   [][]byte
	end, hw   int64
	hold      bool
	failNext  error
	changed   chan struct{}
	readGate  chan struct{} // when set, Read waits for it to be closed
	appendErr error         // every append fails with it while set
}

func newMemLog() *memLog { return &memLog{changed: make(chan struct{})} }

func (l *memLog) Append(b []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failNext; err != nil {
		l.failNext = nil
		return 0, err
	}
	if l.appendErr != nil {
		return 0, l.appendErr
	}
	b = append([]byte(nil), b...)
	binary.BigEndian.PutUint64(b, uint64(l.end))
	l.end += int64(int32(binary.BigEndian.Uint32(b[23:27]))) + 1 // last offset delta
	l.batches = append(l.batches, b)
	if !l.hold {
		l.hw = l.end
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return l.end, nil
}

// commitAll moves the high watermark to the end (for held appends).
func (l *memLog) commitAll() {
	l.mu.Lock()
	l.hw = l.end
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *memLog) WaitCommitted(ctx context.Context, next int64) error {
	for {
		l.mu.Lock()
		hw, ch := l.hw, l.changed
		l.mu.Unlock()
		if hw >= next {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (l *memLog) Bounds() (int64, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return 0, l.end
}

func (l *memLog) Read(from int64, maxBytes int, end int64) ([]byte, error) {
	l.mu.Lock()
	gate := l.readGate
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []byte
	for _, b := range l.batches {
		base := int64(binary.BigEndian.Uint64(b))
		if base < from || base >= end {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > maxBytes {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}

func (l *memLog) String() string { return StateTopic + "-0" }

// records replays the log: the last state of each id (absent: tombstoned).
func (l *memLog) states(t *testing.T) map[string]meta {
	t.Helper()
	m, _, err := replay(l, func() bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fakeMarkers records the markers written; calls can fail, answer codes,
// or block until released.
type fakeMarkers struct {
	mu      sync.Mutex
	calls   []Marker
	written map[TopicPartition][]Marker
	errs    int                        // the next errs calls fail
	codes   map[TopicPartition][]int16 // answers queued per partition
	block   chan struct{}              // when set, calls wait for it (or ctx)
	called  chan struct{}              // signalled (non-blocking) on each call
}

func newFakeMarkers() *fakeMarkers {
	return &fakeMarkers{written: map[TopicPartition][]Marker{}, codes: map[TopicPartition][]int16{}, called: make(chan struct{}, 100)}
}

func (f *fakeMarkers) WriteMarkers(ctx context.Context, m Marker) ([]int16, error) {
	f.mu.Lock()
	f.calls = append(f.calls, m)
	block := f.block
	f.mu.Unlock()
	select {
	case f.called <- struct{}{}:
	default:
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs > 0 {
		f.errs--
		return nil, errors.New("connection refused")
	}
	codes := make([]int16, len(m.Partitions))
	for i, tp := range m.Partitions {
		if q := f.codes[tp]; len(q) > 0 {
			codes[i], f.codes[tp] = q[0], q[1:]
		}
		if codes[i] == 0 {
			f.written[tp] = append(f.written[tp], m)
		}
	}
	return codes, nil
}

// hold makes calls block until block is closed.
func (f *fakeMarkers) hold() {
	f.mu.Lock()
	f.block = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeMarkers) writtenTo(tp TopicPartition) []Marker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Marker(nil), f.written[tp]...)
}

type fakePIDs struct {
	mu   sync.Mutex
	next int64
	err  error
}

func (p *fakePIDs) NextProducerID(context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return -1, p.err
	}
	p.next++
	return p.next - 1, nil
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t       *testing.T
	c       *Coordinator
	log     *memLog
	markers *fakeMarkers
	pids    *fakePIDs
	clock   *fakeClock
	mu      sync.Mutex
	topics  map[string]int32
	parts   int32
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, log: newMemLog(), markers: newFakeMarkers(), pids: &fakePIDs{next: 1000},
		clock: &fakeClock{now: time.UnixMilli(1_700_000_000_000)}, topics: map[string]int32{"a": 3, "b": 2, "__consumer_offsets": 50},
		parts: 1}
	cfg := DefaultConfig()
	cfg.WriteTimeout = 5 * time.Second
	c, err := New(cfg, Deps{Now: h.clock.Now, ProducerIDs: h.pids, Markers: h.markers,
		Partitions: func() int32 { h.mu.Lock(); defer h.mu.Unlock(); return h.parts },
		TopicPartitions: func(topic string) int32 {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.topics[topic]
		},
		MarkerRetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h.c = c
	h.elect(h.log, 1)
	return h
}

// elect makes the coordinator lead partition 0 over l and waits for the
// load.
func (h *harness) elect(l Log, epoch int32) {
	h.t.Helper()
	h.c.elect(0, l, epoch)
	h.waitFor("load", func() bool {
		sh, code := h.c.shardFor("x")
		return code == 0 && sh != nil
	})
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) init(id string, timeoutMs int32, pid int64, epoch int16) (int16, int64, int16) {
	h.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 5, kmsg.StringPtr(id), timeoutMs
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp := h.c.InitProducerID(context.Background(), req)
	return resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch
}

// mustInit is a new producer's InitProducerId that succeeds.
func (h *harness) mustInit(id string) (int64, int16) {
	h.t.Helper()
	code, pid, epoch := h.init(id, 60000, -1, -1)
	if code != 0 {
		h.t.Fatalf("init %q: code %d", id, code)
	}
	return pid, epoch
}

// committing starts a producer of id, adds tps to its transaction and
// commits it with the markers held: on return the transaction is
// PrepareCommit and its markers are being written (h.markers.block).
func (h *harness) committing(id string, tps ...TopicPartition) (int64, int16) {
	h.t.Helper()
	pid, epoch := h.mustInit(id)
	wantCode(h.t, "add", h.add(id, pid, epoch, tps...), nil)
	h.markers.hold()
	wantCode(h.t, "commit", h.end(id, pid, epoch, true), nil)
	<-h.markers.called
	return pid, epoch
}

func (h *harness) add(id string, pid int64, epoch int16, tps ...TopicPartition) int16 {
	h.t.Helper()
	return h.addVersion(3, id, pid, epoch, tps...)
}

// addVersion sends AddPartitionsToTxn v0-3 and returns the code all its
// partitions got (failing if they differ).
func (h *harness) addVersion(version int16, id string, pid int64, epoch int16, tps ...TopicPartition) int16 {
	h.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = version, id, pid, epoch
	for _, tp := range tps {
		req.Topics = append(req.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
	}
	resp := h.c.AddPartitionsToTxn(context.Background(), req)
	code := int16(-100)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if code != -100 && p.ErrorCode != code {
				h.t.Fatalf("partitions answered differently: %+v", resp.Topics)
			}
			code = p.ErrorCode
		}
	}
	return code
}

func (h *harness) end(id string, pid int64, epoch int16, commit bool) int16 {
	h.t.Helper()
	return h.endVersion(4, id, pid, epoch, commit)
}

func (h *harness) endVersion(version int16, id string, pid int64, epoch int16, commit bool) int16 {
	h.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = version, id, pid, epoch, commit
	return h.c.EndTxn(context.Background(), req).ErrorCode
}

// state is the committed state of id in the coordinator's memory.
func (h *harness) state(id string) (meta, bool) {
	sh, code := h.c.shardFor(id)
	if code != 0 {
		return meta{}, false
	}
	t := sh.get(id)
	if t == nil {
		return meta{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur, !t.writing
}

// present reports whether the coordinator holds id.
func (h *harness) present(id string) bool {
	sh, code := h.c.shardFor(id)
	return code == 0 && sh.get(id) != nil
}

// settle waits until id is in state st with nothing in flight.
func (h *harness) settle(id string, st State) meta {
	h.t.Helper()
	var m meta
	h.waitFor(id+" "+st.String(), func() bool {
		var idle bool
		m, idle = h.state(id)
		return idle && m.state == st
	})
	return m
}

func tp(topic string, p int32) TopicPartition { return TopicPartition{topic, p} }
