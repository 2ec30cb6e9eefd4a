package segment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestGroupCommit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 32 << 10 // a few rolls on the way
	l := openTest(t, t.TempDir(), cfg, Options{})
	const goroutines, each = 32, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxAcked := int64(0)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := l.AppendLeader(segmenttest.Plain(fmt.Sprint(g, i)), 0)
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
					t.Error(err)
					return
				}
				if d := l.DurableOffset(); d < r.LastOffset+1 {
					t.Errorf("acked %d but durable offset is %d", r.LastOffset+1, d)
				}
				mu.Lock()
				maxAcked = max(maxAcked, r.LastOffset+1)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	syncs := l.syncs.Load()
	t.Logf("%d appends, %d fdatasyncs, %d segments", goroutines*each, syncs, len(l.Segments()))
	if syncs >= goroutines*each {
		t.Fatalf("%d fdatasyncs for %d appends: no group commit", syncs, goroutines*each)
	}
	if l.DurableOffset() < maxAcked || l.DurableOffset() != l.LogEndOffset() {
		t.Fatalf("durable %d, acked %d, leo %d", l.DurableOffset(), maxAcked, l.LogEndOffset())
	}
	// Covered offsets return without syncing.
	before := l.syncs.Load()
	if err := l.WaitDurable(context.Background(), 1); err != nil || l.syncs.Load() != before {
		t.Fatalf("covered wait synced: %v", err)
	}
}

func TestWaitDurableContext(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	r := mustAppend(t, l, segmenttest.Plain("a"))
	// Hold the sync token so the waiter queues, then cancel it.
	l.syncSem <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.WaitDurable(ctx, r.LastOffset+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	<-l.syncSem
	if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(context.Background(), 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("wait beyond the end: %v", err)
	}
}

func TestFlushOS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Flush = FlushOS
	l := openTest(t, t.TempDir(), cfg, Options{})
	r := mustAppend(t, l, segmenttest.Plain("a"))
	if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
		t.Fatal(err)
	}
	if l.syncs.Load() != 0 {
		t.Fatal("FlushOS synced")
	}
	if l.DurableOffset() != l.LogEndOffset() {
		t.Fatal("DurableOffset != LogEndOffset with FlushOS")
	}
	if err := l.Sync(); err != nil || l.syncs.Load() != 1 {
		t.Fatalf("Sync: %v", err)
	}
}
