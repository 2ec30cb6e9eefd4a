package segment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// TestConcurrentEverything runs appends with WaitDurable, reads, ListOffsets, retention and
// rolls at once, for the race detector and for refcounting of deleted segments.
func TestConcurrentEverything(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2048
	cfg.IndexIntervalBytes = 128
	cfg.RetentionBytes = 8 << 10
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := f(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for w := range 3 {
		seq := int32(0)
		run(func() error {
			r, err := l.AppendLeader(segmenttest.Idempotent(int64(w), 0, seq, fmt.Sprint(seq)), 1)
			if err != nil {
				return err
			}
			seq++
			if err := l.WaitDurable(ctx, r.LastOffset+1); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		})
	}
	for range 2 {
		run(func() error {
			off := l.LogStartOffset()
			for off < l.LogEndOffset() {
				s, err := l.Read(off, 1000, l.LogEndOffset(), true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					return nil // retention overtook us
				}
				if err != nil {
					return err
				}
				b, err := s.ReadAll()
				s.Release()
				if err != nil {
					return err
				}
				if len(b) == 0 {
					return nil
				}
				for len(b) > 0 {
					h, err := ValidateBatch(b)
					if err != nil {
						return err
					}
					off = h.NextOffset()
					b = b[h.Size():]
				}
			}
			return nil
		})
	}
	run(func() error {
		_, _, _, err := l.OffsetForTimestamp(0)
		l.MaxTimestamp()
		l.Segments()
		return err
	})
	run(func() error {
		_, err := l.ApplyRetention()
		clk.Advance(time.Millisecond)
		return err
	})
	run(func() error {
		time.Sleep(time.Millisecond)
		return l.Roll()
	})
	wg.Wait()
	if l.DurableOffset() > l.LogEndOffset() {
		t.Fatal("durable beyond end")
	}
	if l.Size() > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("size %d with retention.bytes %d", l.Size(), cfg.RetentionBytes)
	}
	// Files of deleted segments are gone.
	entries, _ := os.ReadDir(l.Dir())
	logs := 0
	for _, e := range entries {
		if _, ok := parseFileName(e.Name(), logSuffix); ok {
			logs++
		}
	}
	if logs != len(l.Segments()) {
		t.Fatalf("%d .log files for %d segments", logs, len(l.Segments()))
	}
}

// TestRebuildActiveIndexWhileAppending damages the active segment's index between a clean
// Close and Open, so that a reader rebuilds it while appends continue.
func TestRebuildActiveIndexWhileAppending(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 64
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		mustAppend(t, l, batchAt(1, "a", "b"))
	}
	idx := l.Segments()[0].IndexPath
	l.Close()
	b, _ := os.ReadFile(idx)
	b[(len(b)/16)*8+7]++ // a position in the middle, off by one: well-formed, but between batches
	os.WriteFile(idx, b, 0o644)
	logger, logs := testLogger(t)
	l2 := openTest(t, dir, cfg, Options{Logger: logger})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			if _, err := l2.AppendLeader(batchAt(1, "c"), 0); err != nil {
				t.Error(err)
			}
		}
	}()
	for off := int64(0); off < 100; off++ {
		s, err := l2.Read(off, 100, l2.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		s.Release()
	}
	wg.Wait()
	if got := readAll(t, l2, 0, 1<<20); len(got) != 150 {
		t.Fatalf("%d records", len(got))
	}
	if !contains(logs.String(), "rebuilding") {
		t.Fatalf("index was not rebuilt: %s", logs.String())
	}
}
