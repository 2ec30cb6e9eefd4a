package partition

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
)

// TestFlusherOnDemand checks that a partition holds no flusher until it is
// written to, that acks=all appends are acknowledged once durable through a
// flusher started on demand, that the flusher ends when the partition idles,
// and that appends racing with its end are never left without one (an
// acknowledgement that never comes fails the test).
func TestFlusherOnDemand(t *testing.T) {
	old := flusherIdle
	t.Cleanup(func() { flusherIdle = old })
	flusherIdle = 20 * time.Millisecond
	e := newEnv(t, nil)
	e.createTopic("t", 3, []int32{1}, []int32{1}, 0)
	parts := make([]*Partition, 3)
	for i := range parts {
		p, err := e.m.Leader("t", int32(i), -1)
		if err != nil {
			t.Fatal(err)
		}
		if p.flushing.Load() {
			t.Fatalf("partition %d has a flusher before any append", i)
		}
		parts[i] = p
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := parts[0]
	appendAll := func(p *Partition) {
		t.Helper()
		res, err := p.AppendLeader(segmenttest.Plain("v"), AcksAll)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(ctx, res, AcksAll); err != nil {
			t.Fatalf("acks=all wait: %v", err)
		}
		if d := p.log.DurableOffset(); d <= res.LastOffset {
			t.Fatalf("acknowledged offset %d, but only offsets below %d are durable", res.LastOffset, d)
		}
	}
	appendAll(p)
	if parts[1].flushing.Load() || parts[2].flushing.Load() {
		t.Fatal("an append to partition 0 started the flusher of another partition")
	}
	waitUntil(t, 5*time.Second, func() bool { return !p.flushing.Load() })
	appendAll(p) // a new flusher for the idle partition
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after two acknowledged appends, want 2", hw)
	}

	// Appends arriving while flushers retire, with gaps around flusherIdle.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				res, err := parts[1+g%2].AppendLeader(segmenttest.Plain("w"), AcksAll)
				if err == nil {
					err = parts[1+g%2].Wait(ctx, res, AcksAll)
				}
				if err != nil {
					t.Errorf("goroutine %d append %d: %v", g, i, err)
					return
				}
				time.Sleep(time.Duration(i%4) * 10 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, q := range parts[1:] {
		if hw := q.HighWatermark(); hw != 50 {
			t.Errorf("partition %d: high watermark %d, want 50", q.Index(), hw)
		}
	}
}

// TestRetireFlusher checks the hand-over when a flusher decides to end.
func TestRetireFlusher(t *testing.T) {
	p := &Partition{flushReq: make(chan struct{}, 1)}
	p.flushing.Store(true)
	if !p.retireFlusher() || p.flushing.Load() {
		t.Fatal("a flusher with no request pending did not retire")
	}
	p.flushing.Store(true)
	p.flushReq <- struct{}{}
	if p.retireFlusher() || !p.flushing.Load() {
		t.Fatal("a flusher retired with a request pending and no other flusher")
	}
}

// TestFanOut checks that fanOut runs every task exactly once, never more than
// n at a time.
func TestFanOut(t *testing.T) {
	for _, tc := range []struct{ n, tasks int }{{1, 5}, {4, 100}, {32, 3}, {8, 0}} {
		var (
			mu           sync.Mutex
			running, top int
			ran          = make([]int, tc.tasks)
		)
		ts := make([]func(), tc.tasks)
		for i := range ts {
			ts[i] = func() {
				mu.Lock()
				running++
				top = max(top, running)
				ran[i]++
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				running--
				mu.Unlock()
			}
		}
		fanOut(tc.n, ts)
		for i, n := range ran {
			if n != 1 {
				t.Fatalf("n=%d: task %d ran %d times", tc.n, i, n)
			}
		}
		if top > tc.n {
			t.Errorf("n=%d: %d tasks ran at once", tc.n, top)
		}
	}
}

// TestCloseSyncsEveryLog checks that Close, which closes logs in parallel,
// still closes every one cleanly: each partition's log holds what was
// appended to it and its clean-shutdown marker, so its next open needs no
// recovery.
func TestCloseSyncsEveryLog(t *testing.T) {
	e := newEnv(t, nil)
	const n = 40
	e.createTopic("many", n, []int32{1}, []int32{1}, 0)
	for i := range n {
		p, err := e.m.Leader("many", int32(i), -1)
		if err != nil {
			t.Fatal(err)
		}
		for range i % 3 {
			if _, err := p.AppendLeader(segmenttest.Plain("x"), AcksNone); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		dir := filepath.Join(e.dir, "many-"+strconv.Itoa(i))
		if _, err := os.Stat(filepath.Join(dir, "clean-shutdown")); err != nil {
			t.Errorf("partition %d: no clean-shutdown marker: %v", i, err)
		}
		l, err := segment.Open(dir, segment.DefaultConfig(), segment.Options{})
		if err != nil {
			t.Fatalf("partition %d: reopening: %v", i, err)
		}
		if end := l.LogEndOffset(); end != int64(i%3) {
			t.Errorf("partition %d: log end %d after close, want %d", i, end, i%3)
		}
		l.Close()
	}
}

// TestPoolEach checks that each runs the task of every partition whose
// previous task is done, skips the others, clears the flags it set and never
// runs more than the pool's width at a time.
func TestPoolEach(t *testing.T) {
	w := &pool{sem: make(chan struct{}, 3)}
	ps := make([]*Partition, 50)
	for i := range ps {
		ps[i] = &Partition{index: int32(i)}
	}
	ps[7].rollBusy.Store(true) // a task of the previous tick still runs
	var (
		mu           sync.Mutex
		ran          = map[int32]int{}
		running, top int
	)
	w.each(context.Background(), ps, func(p *Partition) *atomic.Bool { return &p.rollBusy }, func(p *Partition) {
		mu.Lock()
		ran[p.index]++
		running++
		top = max(top, running)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
	})
	w.wait()
	for _, p := range ps {
		want := 1
		if p.index == 7 {
			want = 0
		}
		if ran[p.index] != want {
			t.Errorf("partition %d ran %d times, want %d", p.index, ran[p.index], want)
		}
		if busy := p.rollBusy.Load(); busy != (p.index == 7) {
			t.Errorf("partition %d: busy %v after the tick", p.index, busy)
		}
	}
	if top > 3 {
		t.Errorf("%d tasks ran at once on a pool of 3", top)
	}
}
