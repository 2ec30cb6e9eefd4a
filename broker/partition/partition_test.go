package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/meta/metatest"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
	"github.com/sedimentio/sediment/tier"
)

// env is one broker's partition layer over a real embedded etcd member.
type env struct {
	t     *testing.T
	store *meta.Store
	cache *meta.Cache
	m     *Manager
	dir   string
}

// newEnv starts etcd and a Manager for broker 1. settings, when not nil,
// replaces the default resolution of topic configs.
func newEnv(t *testing.T, settings func(meta.Topic) (TopicSettings, error), deps ...func(*Deps)) *env {
	t.Helper()
	dir := t.TempDir()
	store, cache := metatest.Start(t)
	logger := slog.New(slog.DiscardHandler)
	if settings == nil {
		settings = func(meta.Topic) (TopicSettings, error) {
			return TopicSettings{Log: segment.DefaultConfig(), MinInsyncReplicas: 1}, nil
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.ReplicaLagTimeMax = time.Second
	d := Deps{Logger: logger, Store: store, Cache: cache, Settings: settings,
		Resolve: func(int32) (string, bool) { return "", false }}
	for _, f := range deps {
		f(&d)
	}
	m, err := New(cfg, d)
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
			t.Errorf("close: %v", err)
		}
	})
	return &env{t: t, store: store, cache: cache, m: m, dir: cfg.DataDir}
}

// writeTopic writes a topic whose partitions are all led by broker 1 in
// epoch and returns the revision of the write.
func (e *env) writeTopic(name string, parts int, replicas, isr []int32, epoch int32) int64 {
	e.t.Helper()
	t := meta.Topic{Name: name, ID: meta.NewTopicID()}
	var states []meta.PartitionState
	for range parts {
		t.Partitions = append(t.Partitions, replicas)
		states = append(states, meta.PartitionState{Leader: 1, LeaderEpoch: epoch, ISR: isr})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := e.store.CreateTopic(ctx, t, states)
	if err != nil {
		e.t.Fatal(err)
	}
	return rev
}

// createTopic writes a topic whose partitions are all led by broker 1 in
// epoch, with replicas and isr as given, and waits until it leads them.
func (e *env) createTopic(name string, parts int, replicas, isr []int32, epoch int32) meta.Topic {
	e.t.Helper()
	rev := e.writeTopic(name, parts, replicas, isr, epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.sync(ctx, rev)
	for i := range parts {
		if _, err := e.m.Leader(name, int32(i), -1); err != nil {
			e.t.Fatalf("partition %d: %v", i, err)
		}
	}
	t, _ := e.cache.Topic(name)
	return t
}

// sync waits until the cache has applied rev and the partitions follow it.
func (e *env) sync(ctx context.Context, rev int64) {
	e.t.Helper()
	if err := e.cache.WaitRevision(ctx, rev); err != nil {
		e.t.Fatal(err)
	}
	if err := e.m.Reconcile(); err != nil {
		e.t.Fatal(err)
	}
}

func TestAppendCommitRead(t *testing.T) {
	e := newEnv(t, nil)
	e.createTopic("t", 2, []int32{1}, []int32{1}, 0)
	p, err := e.m.Leader("t", 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var want [][]byte
	for i, acks := range []Acks{AcksAll, AcksLeader, AcksAll} {
		b := segmenttest.Plain("a", "b")
		res, err := p.AppendLeader(b, acks)
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstOffset != int64(2*i) || res.LastOffset != int64(2*i+1) || res.LeaderEpoch != 0 {
			t.Fatalf("append %d: %+v", i, res)
		}
		if err := p.Wait(ctx, res, acks); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	if hw := p.HighWatermark(); hw != 6 {
		t.Fatalf("high watermark %d, want 6", hw)
	}
	res, err := p.Read(ctx, 0, ReadOptions{MaxBytes: 1 << 20, Replica: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Records.ReadAll()
	res.Records.Release()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(bytes.Join(want, nil)) || res.HighWatermark != 6 || res.LogStart != 0 || res.InTier {
		t.Fatalf("read %d bytes (want %d), result %+v", len(got), len(bytes.Join(want, nil)), res)
	}
	// The leader rewrote base offsets and leader epochs, which the CRC does
	// not cover; from the CRC on every batch is as appended.
	for i, b := range want {
		g := got[:len(b)]
		got = got[len(b):]
		if !bytes.Equal(g[17:], b[17:]) {
			t.Fatalf("batch %d differs from what was appended", i)
		}
	}
	for _, tc := range []struct {
		ts   int64
		want int64
	}{{TimestampLatest, 6}, {TimestampEarliest, 0}, {TimestampEarliestLocal, 0}, {TimestampLatestTiered, -1}} {
		o, err := p.ListOffset(ctx, tc.ts, ReadUncommitted)
		if err != nil || o.Offset != tc.want {
			t.Errorf("ListOffset(%d) = %+v, %v; want %d", tc.ts, o, err, tc.want)
		}
	}
	if _, err := p.ListOffset(ctx, -7, ReadUncommitted); !errors.Is(err, ErrInvalidTimestamp) {
		t.Errorf("ListOffset(-7): %v", err)
	}
	if e, end := p.EndOffsetForEpoch(ctx, 0); e != 0 || end != 6 {
		t.Errorf("EndOffsetForEpoch(0) = %d, %d; want 0, 6", e, end)
	}
	if _, err := p.DeleteRecordsBefore(7); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Errorf("DeleteRecordsBefore beyond the high watermark: %v", err)
	}
	if low, err := p.DeleteRecordsBefore(-1); err != nil || low != 6 {
		t.Errorf("DeleteRecordsBefore(-1) = %d, %v; want 6", low, err)
	}
	if _, err := p.Read(ctx, 0, ReadOptions{MaxBytes: 1 << 20, Replica: -1}); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Errorf("read below the log start: %v", err)
	}
	// The other partition is untouched.
	if q, _ := e.m.Leader("t", 0, -1); q.LogEnd() != 0 {
		t.Errorf("partition 0 log end %d", q.LogEnd())
	}
}

func TestLeaderLookup(t *testing.T) {
	e := newEnv(t, nil)
	e.createTopic("t", 1, []int32{1}, []int32{1}, 3)
	for _, tc := range []struct {
		topic string
		part  int32
		epoch int32
		want  error
	}{
		{"t", 0, -1, nil},
		{"t", 0, 3, nil},
		{"t", 0, 2, ErrFencedLeaderEpoch},
		{"t", 0, 4, ErrUnknownLeaderEpoch},
		{"t", 1, -1, ErrUnknownTopicOrPartition},
		{"t", -1, -1, ErrUnknownTopicOrPartition},
		{"nope", 0, -1, ErrUnknownTopicOrPartition},
	} {
		p, err := e.m.Leader(tc.topic, tc.part, tc.epoch)
		if !errors.Is(err, tc.want) || (err == nil) != (p != nil) {
			t.Errorf("Leader(%q, %d, %d) = %v, %v; want %v", tc.topic, tc.part, tc.epoch, p, err, tc.want)
		}
	}
}

// An ISR below min.insync.replicas refuses acks=all before appending; a
// commit waiting when the term ends fails with ErrNotLeader.
func TestCommitNeedsTheISRAndTheTerm(t *testing.T) {
	e := newEnv(t, func(t meta.Topic) (TopicSettings, error) {
		return TopicSettings{Log: segment.DefaultConfig(), MinInsyncReplicas: 2}, nil
	})
	// Broker 2 is assigned and in the ISR but never fetches.
	topic := e.createTopic("t", 1, []int32{1, 2}, []int32{1, 2}, 0)
	p, _ := e.m.Leader("t", 0, -1)
	res, err := p.AppendLeader(segmenttest.Plain("x"), AcksAll)
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.Wait(context.Background(), res, AcksAll) }()
	select {
	case err := <-waitErr:
		t.Fatalf("committed without the follower: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// acks=1 does not wait for the follower.
	r1, err := p.AppendLeader(segmenttest.Plain("y"), AcksLeader)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background(), r1, AcksLeader); err != nil {
		t.Fatal(err)
	}
	// A new term (broker 2 leads in epoch 1) ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _ := e.cache.Partition(topic.ID, 0)
	st.Leader, st.LeaderEpoch = 2, 1
	rev, err := e.store.UpdatePartition(ctx, topic.ID, 0, st)
	if err != nil {
		t.Fatal(err)
	}
	e.sync(ctx, rev)
	select {
	case err := <-waitErr:
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("wait after losing the term: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("wait outlived the term")
	}
	if _, err := p.AppendLeader(segmenttest.Plain("z"), AcksLeader); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append as follower: %v", err)
	}
	if _, err := e.m.Leader("t", 0, 1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Leader as follower: %v", err)
	}
}

func TestNotEnoughReplicasBeforeAppend(t *testing.T) {
	e := newEnv(t, func(t meta.Topic) (TopicSettings, error) {
		return TopicSettings{Log: segment.DefaultConfig(), MinInsyncReplicas: 2}, nil
	})
	e.createTopic("t", 1, []int32{1, 2}, []int32{1}, 0)
	p, _ := e.m.Leader("t", 0, -1)
	if res, err := p.AppendLeader(segmenttest.Plain("x"), AcksAll); !errors.Is(err, ErrNotEnoughReplicas) || res.LogStartOffset != -1 {
		t.Fatalf("acks=all with the ISR below min.insync.replicas: %+v, %v", res, err)
	}
	if p.LogEnd() != 0 {
		t.Fatalf("refused append reached the log: log end %d", p.LogEnd())
	}
	if _, err := p.AppendLeader(segmenttest.Plain("x"), AcksLeader); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
}

// TestNotEnoughReplicasAfterAppend: an acks=all append whose ISR shrinks
// below min.insync.replicas before it is committed fails with
// NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in Kafka, although the leader alone
// then moves the high watermark past it: it was acknowledged by fewer
// replicas than the topic asks for.
func TestNotEnoughReplicasAfterAppend(t *testing.T) {
	e := newEnv(t, func(t meta.Topic) (TopicSettings, error) {
		return TopicSettings{Log: segment.DefaultConfig(), MinInsyncReplicas: 2}, nil
	})
	// Broker 2 is in the ISR but never fetches; then it is dropped from it.
	topic := e.createTopic("t", 1, []int32{1, 2}, []int32{1, 2}, 0)
	p, _ := e.m.Leader("t", 0, -1)
	res, err := p.AppendLeader(segmenttest.Plain("x"), AcksAll)
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.Wait(context.Background(), res, AcksAll) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _ := e.cache.Partition(topic.ID, 0)
	st.ISR = []int32{1}
	st.PartitionEpoch++
	rev, err := e.store.UpdatePartition(ctx, topic.ID, 0, st)
	if err != nil {
		t.Fatal(err)
	}
	e.sync(ctx, rev)
	select {
	case err := <-waitErr:
		if !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
			t.Fatalf("acks=all after the ISR shrank below min.insync.replicas: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the wait outlived the ISR shrink")
	}
	// The leader alone is the ISR now: it moves the high watermark past the
	// append. A wait that starts then must fail all the same.
	waitUntil(t, 10*time.Second, func() bool { return p.HighWatermark() > res.LastOffset })
	if err := p.Wait(ctx, res, AcksAll); !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("a later wait: %v", err)
	}
}

// Removing a topic closes its partitions: waiters fail, the logs go.
func TestDeletedTopicRemovesLogs(t *testing.T) {
	e := newEnv(t, nil)
	e.createTopic("gone", 1, []int32{1}, []int32{1}, 0)
	p, _ := e.m.Leader("gone", 0, -1)
	if _, err := p.AppendLeader(segmenttest.Plain("x"), AcksAll); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := e.store.DeleteTopic(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	e.sync(ctx, rev)
	if e.m.Get("gone", 0) != nil || len(e.m.All()) != 0 {
		t.Fatal("partition still hosted after its topic was deleted")
	}
	if err := p.WaitCommitted(ctx, 100, 0); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotLeader) {
		t.Fatalf("wait on a removed partition: %v", err)
	}
	if _, err := e.m.Leader("gone", 0, -1); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("Leader of a deleted topic: %v", err)
	}
}

// stallingFS holds every MkdirAll below a path containing stall until
// release is closed, as a slow disk or a long recovery would.
type stallingFS struct {
	vfs.FS
	stall   string
	stalled chan struct{} // closed when the first stalled call begins
	release chan struct{}
	once    sync.Once
}

func (f *stallingFS) MkdirAll(dir string) error {
	if strings.Contains(dir, f.stall) {
		f.once.Do(func() { close(f.stalled) })
		<-f.release
	}
	return f.FS.MkdirAll(dir)
}

// A partition whose log takes long to open holds up no other: produce and
// reads of the partitions already open go on while a reconcile pass waits
// on the disk (the Manager's lock is never held across I/O).
func TestSlowOpenBlocksNoOtherPartition(t *testing.T) {
	fsys := &stallingFS{FS: vfs.OS{}, stall: "slow-0", stalled: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, nil, func(d *Deps) { d.FS = fsys })
	e.createTopic("fast", 1, []int32{1}, []int32{1}, 0)
	e.writeTopic("slow", 1, []int32{1}, []int32{1}, 0) // the Manager's Run loop reconciles it
	select {
	case <-fsys.stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow partition's open never began")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := e.m.Leader("fast", 0, -1)
		if err != nil {
			done <- err
			return
		}
		res, err := p.AppendLeader(segmenttest.Plain("x"), AcksAll)
		if err == nil {
			err = p.Wait(ctx, res, AcksAll)
		}
		if err == nil {
			_, err = p.Read(ctx, 0, ReadOptions{MaxBytes: 1 << 20, Replica: -1})
		}
		if err == nil && len(e.m.All()) != 1 {
			err = fmt.Errorf("%d partitions visible while one is still opening", len(e.m.All()))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("produce to an open partition waited for another partition's open")
	}
	if _, err := e.m.Leader("slow", 0, -1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a partition still opening: %v, want ErrNotLeader", err)
	}
	close(fsys.release)
	waitUntil(t, 10*time.Second, func() bool { _, err := e.m.Leader("slow", 0, -1); return err == nil })
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("condition not met in time")
		}
	}
}

// TestForgetRemote: remote retention takes a copy out of what reads see
// before deleting its objects; the log start clients see moves past it, to
// the next copy and then to the local log start.
func TestForgetRemote(t *testing.T) {
	e := newEnv(t, nil)
	e.createTopic("t", 1, []int32{1}, []int32{1}, 0)
	p, err := e.m.Leader("t", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := p.AppendLeader(segmenttest.Plain("a"), AcksAll)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(context.Background(), res, AcksAll); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.DeleteRecordsBefore(3); err != nil {
		t.Fatal(err)
	}
	// The tier holds [0,1] and [2,2] (as an uploader's copies would).
	segs := []tier.RemoteSegment{{UploadID: "a", BaseOffset: 0, EndOffset: 1}, {UploadID: "b", BaseOffset: 2, EndOffset: 2}}
	p.remoteSegs.Store(&segs)
	p.remoteStart.Store(0)
	for _, tc := range []struct {
		forget    string
		wantStart int64
		wantFound bool // offset 0 still readable from the tier
	}{{"other", 0, true}, {"a", 2, false}, {"b", 3, false}} {
		p.forgetRemote(tc.forget)
		if got := p.LogStart(); got != tc.wantStart {
			t.Errorf("after forgetting %q: log start %d, want %d", tc.forget, got, tc.wantStart)
		}
		if _, found := p.remoteSegmentFor(0); found != tc.wantFound {
			t.Errorf("after forgetting %q: offset 0 in the tier: %v", tc.forget, found)
		}
	}
}
