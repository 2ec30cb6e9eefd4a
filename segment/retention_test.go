package segment

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// rolledLog makes a log with n segments of 3 one-record batches each, the batches of
// segment i stamped ts0 + i hours.
func rolledLog(t *testing.T, clk *fakeClock, cfg Config, n int) *Log {
	t.Helper()
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	ts0 := clk.Now().UnixMilli()
	for i := range n {
		for range 3 {
			mustAppend(t, l, batchAt(ts0+int64(i)*time.Hour.Milliseconds(), "v"))
		}
		if i < n-1 {
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(l.Segments()) != n {
		t.Fatalf("%d segments", len(l.Segments()))
	}
	return l
}

func TestRetentionByTime(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.RetentionMs = 90 * time.Minute
	l := rolledLog(t, clk, cfg, 4) // segment max timestamps: +0h, +1h, +2h, +3h
	if n, err := l.ApplyRetention(); err != nil || n != 0 {
		t.Fatalf("nothing expired yet: %d %v", n, err)
	}
	clk.Advance(2 * time.Hour) // now = +2h: +0h expired (120m > 90m); +1h is 60m old
	if n, err := l.ApplyRetention(); err != nil || n != 1 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if l.LogStartOffset() != 3 || l.Segments()[0].BaseOffset != 3 {
		t.Fatalf("log start %d", l.LogStartOffset())
	}
	if _, err := l.Read(0, 100, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	// Everything expired: the active segment goes too, after a roll.
	clk.Advance(10 * time.Hour)
	if n, err := l.ApplyRetention(); err != nil || n != 3 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	segs := l.Segments()
	if len(segs) != 1 || segs[0].BaseOffset != 12 || segs[0].Size != 0 || l.LogStartOffset() != 12 || l.LogEndOffset() != 12 {
		t.Fatalf("after full expiry: %+v start %d", segs, l.LogStartOffset())
	}
	// The empty active segment is never deleted.
	if n, err := l.ApplyRetention(); err != nil || n != 0 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	r := mustAppend(t, l, batchAt(clk.Now().UnixMilli(), "new"))
	if r.FirstOffset != 12 || r.LogStartOffset != 12 {
		t.Fatalf("append after retention %+v", r)
	}
	// Unlimited retention.
	cfg.RetentionMs = -1
	l.SetConfig(cfg)
	clk.Advance(1000 * time.Hour)
	if n, _ := l.ApplyRetention(); n != 0 {
		t.Fatal("retention.ms=-1 deleted")
	}
}

func TestRetentionBySize(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.RetentionMs = -1
	l := rolledLog(t, clk, cfg, 5)
	segSize := l.Segments()[0].Size
	cfg.RetentionBytes = 2*segSize + 1 // keep the newest 2 whole segments, plus a bit
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if n, err := l.ApplyRetention(); err != nil || n != 2 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if l.Size() != 3*segSize || l.LogStartOffset() != 6 {
		t.Fatalf("size %d start %d", l.Size(), l.LogStartOffset())
	}
	// Files and snapshots of deleted segments are gone.
	if fileExists(fileName(l.Dir(), 0, logSuffix)) || fileExists(fileName(l.Dir(), 3, snapshotSuffix)) {
		t.Fatal("deleted segment's files remain")
	}
	// The checkpoint keeps the log start across a restart.
	dir := l.Dir()
	l.Close()
	l2 := openTest(t, dir, cfg, Options{Now: clk.Now})
	if l2.LogStartOffset() != 6 {
		t.Fatalf("log start after reopen %d", l2.LogStartOffset())
	}
}

func TestRetentionKeepsSliceReadable(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.RetentionMs = time.Minute
	l := rolledLog(t, clk, cfg, 3)
	s, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	if n, err := l.ApplyRetention(); err != nil || n != 3 {
		t.Fatalf("deleted %d %v", n, err)
	}
	b, err := s.ReadAll()
	s.Release()
	if err != nil || len(decodeBatches(t, b)) != 3 {
		t.Fatalf("slice of a deleted segment: %v", err)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	clk := newClock()
	l := rolledLog(t, clk, DefaultConfig(), 4) // segments at 0, 3, 6, 9; leo 12
	if _, err := l.DeleteRecordsBefore(13); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond leo: %v", err)
	}
	start, err := l.DeleteRecordsBefore(4)
	if err != nil || start != 4 || l.LogStartOffset() != 4 {
		t.Fatalf("DeleteRecordsBefore(4) = %d, %v", start, err)
	}
	segs := l.Segments()
	if segs[0].BaseOffset != 3 {
		t.Fatalf("first segment %d", segs[0].BaseOffset)
	}
	if _, err := l.Read(3, 100, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below new start: %v", err)
	}
	if got := readAll(t, l, 4, 1<<20); len(got) != 8 || got[0].Offset != 4 {
		t.Fatalf("read from start: %+v", got)
	}
	// Going backwards is a no-op.
	if start, _ := l.DeleteRecordsBefore(2); start != 4 {
		t.Fatalf("start went back to %d", start)
	}
	// Up to the log end: every sealed segment goes, the active one stays.
	if start, err := l.DeleteRecordsBefore(12); err != nil || start != 12 {
		t.Fatal(start, err)
	}
	if segs := l.Segments(); len(segs) != 1 || segs[0].BaseOffset != 9 {
		t.Fatalf("segments %+v", segs)
	}
	// Survives restart, including an unclean one.
	dir := l.Dir()
	l.Sync()
	l.abandon()
	l2 := openTest(t, dir, DefaultConfig(), Options{Now: clk.Now})
	if l2.LogStartOffset() != 12 || l2.LogEndOffset() != 12 {
		t.Fatalf("after reopen start %d end %d", l2.LogStartOffset(), l2.LogEndOffset())
	}
	if s, err := l2.Read(12, 100, 100, true); err != nil || s.Len != 0 {
		t.Fatalf("read at end: %v", err)
	}
	b, _ := os.ReadFile(dir + "/" + logStartName)
	if string(b) != "0\n12\n" {
		t.Fatalf("checkpoint %q", b)
	}
}

func TestProducerStateSurvivesRetention(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.RetentionMs = time.Minute
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	mustAppend(t, l, segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), ProducerID: 3, ProducerEpoch: 0, BaseSequence: 0, Records: segmenttest.Values("a")}.Encode())
	clk.Advance(time.Hour)
	if n, err := l.ApplyRetention(); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if _, err := l.AppendLeader(segmenttest.Idempotent(3, 0, 1, "b"), 0); err != nil {
		t.Fatalf("sequence after retention: %v", err)
	}
	dir := l.Dir()
	l.Close()
	l2 := openTest(t, dir, cfg, Options{Now: clk.Now})
	if _, err := l2.AppendLeader(segmenttest.Idempotent(3, 0, 2, "c"), 0); err != nil {
		t.Fatalf("sequence after retention and reopen: %v", err)
	}
}
