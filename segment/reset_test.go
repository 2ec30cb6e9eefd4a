package segment

import (
	"errors"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestTruncateFullyAndStartAt(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   int64
	}{
		{"above the end", 1000},
		{"at the end", 30},
		{"inside the log", 12},
		{"at zero", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.IndexIntervalBytes = 1
			dir := t.TempDir()
			l := openTest(t, dir, cfg, Options{})
			for i := range 10 {
				b := segmenttest.Batch{FirstTimestamp: int64(100 + i), ProducerID: 1, ProducerEpoch: 0, BaseSequence: int32(3 * i), Records: segmenttest.Values("a", "b", "c")}.Encode()
				if _, err := l.AppendLeader(b, int32(1+i/4)); err != nil {
					t.Fatal(err)
				}
				if i == 4 {
					l.Roll()
				}
			}
			if err := l.TruncateFullyAndStartAt(tc.at); err != nil {
				t.Fatal(err)
			}
			check := func(l *Log) {
				t.Helper()
				if l.LogStartOffset() != tc.at || l.LogEndOffset() != tc.at {
					t.Fatalf("start %d end %d, want %d", l.LogStartOffset(), l.LogEndOffset(), tc.at)
				}
				if segs := l.Segments(); len(segs) != 1 || segs[0].BaseOffset != tc.at || segs[0].Size != 0 {
					t.Fatalf("segments %+v", segs)
				}
				if e := l.LatestEpoch(); e != -1 {
					t.Fatalf("latest epoch %d, want an empty cache", e)
				}
				if l.DurableOffset() > tc.at {
					t.Fatalf("durable %d above %d", l.DurableOffset(), tc.at)
				}
			}
			check(l)

			// Producer state is gone: producer 1 may start again at sequence 0 (with its
			// old state the next sequence would have to be 30).
			b := segmenttest.Batch{FirstTimestamp: 500, ProducerID: 1, ProducerEpoch: 0, BaseSequence: 0, Records: segmenttest.Values("x")}.Encode()
			if _, err := l.AppendLeader(b, 7); err != nil {
				t.Fatalf("append after reset: %v", err)
			}
			if e, end := l.EndOffsetForEpoch(7); e != 7 || end != tc.at+1 {
				t.Fatalf("EndOffsetForEpoch(7) = %d, %d", e, end)
			}
			if got := readAll(t, l, tc.at, 1<<20); len(got) != 1 || got[0].Offset != tc.at || got[0].Value != "x" {
				t.Fatalf("read %+v", got)
			}

			// It survives a reopen, clean and unclean.
			if err := l.TruncateFullyAndStartAt(tc.at); err != nil {
				t.Fatal(err)
			}
			l.abandon()
			l2 := openTest(t, dir, cfg, Options{})
			check(l2)
			if _, err := l2.AppendLeader(batchAt(1, "y"), 9); err != nil {
				t.Fatal(err)
			}
			if l2.LogEndOffset() != tc.at+1 {
				t.Fatalf("leo %d after append", l2.LogEndOffset())
			}
		})
	}
}

func TestTruncateFullyAndStartAtErrors(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	if err := l.TruncateFullyAndStartAt(-1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("negative offset: %v", err)
	}
	l.Close()
	if err := l.TruncateFullyAndStartAt(5); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed log: %v", err)
	}
}

// TestAssignEpochStart: a new leader's epoch starts at its log end, so the
// previous epoch's end is answered even before any batch of the new epoch.
func TestAssignEpochStart(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.AppendLeader(segmenttest.Plain("a", "b", "c"), 1); err != nil {
		t.Fatal(err)
	}
	if err := l.AssignEpochStart(4); err != nil {
		t.Fatal(err)
	}
	if e, end := l.EndOffsetForEpoch(1); e != 1 || end != 3 {
		t.Fatalf("EndOffsetForEpoch(1) = %d, %d; want 1, 3", e, end)
	}
	if e, end := l.EndOffsetForEpoch(3); e != 1 || end != 3 {
		t.Fatalf("EndOffsetForEpoch(3) = %d, %d; want 1, 3", e, end)
	}
	if got := l.LatestEpoch(); got != 4 {
		t.Fatalf("LatestEpoch = %d, want 4", got)
	}
	// An older epoch is ignored.
	if err := l.AssignEpochStart(2); err != nil || l.LatestEpoch() != 4 {
		t.Fatalf("older epoch assigned: %v, latest %d", err, l.LatestEpoch())
	}
}

// TestApplyLocalRetention: a tiered log deletes only segments wholly below
// the uploaded end, by local retention, and never the active segment.
func TestApplyLocalRetention(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 200
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 20; i++ {
		if _, err := l.AppendLeader(segmenttest.Plain("0123456789012345678901234567890123456789"), 0); err != nil {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments; the test needs rolls", len(segs))
	}
	// Nothing uploaded: nothing goes, even with zero local retention.
	if n, err := l.ApplyLocalRetention(0, 0, -1); err != nil || n != 0 {
		t.Fatalf("deleted %d (%v) with nothing uploaded", n, err)
	}
	// Segments 0 and 1 uploaded: exactly those go.
	n, err := l.ApplyLocalRetention(0, 0, segs[2].BaseOffset)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d (%v), want 2", n, err)
	}
	if l.LogStartOffset() != segs[2].BaseOffset {
		t.Fatalf("local log start %d, want %d", l.LogStartOffset(), segs[2].BaseOffset)
	}
	// Everything uploaded, unlimited local retention: nothing goes.
	if n, err := l.ApplyLocalRetention(-1, -1, l.LogEndOffset()); err != nil || n != 0 {
		t.Fatalf("deleted %d (%v) with unlimited local retention", n, err)
	}
	// Everything uploaded, zero retention: all but the active segment.
	if _, err := l.ApplyLocalRetention(0, 0, l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if got := len(l.Segments()); got != 1 {
		t.Fatalf("%d segments left, want the active one", got)
	}
}
