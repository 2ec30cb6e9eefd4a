package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestAppendReadRoundTrip(t *testing.T) {
	clk := newClock()
	l := openTest(t, t.TempDir(), smallConfig(), Options{Now: clk.Now})
	var want []string
	for i := range 200 {
		vs := values(1+i%4, fmt.Sprint("b", i))
		r := mustAppend(t, l, batchAt(1000+int64(i), vs...))
		if r.FirstOffset != int64(len(want)) || r.LastOffset != int64(len(want)+len(vs)-1) {
			t.Fatalf("append %d: offsets [%d,%d], want first %d", i, r.FirstOffset, r.LastOffset, len(want))
		}
		if r.LogAppendTime != -1 || r.Duplicate {
			t.Fatalf("result %+v", r)
		}
		want = append(want, vs...)
	}
	if l.LogEndOffset() != int64(len(want)) {
		t.Fatalf("leo %d want %d", l.LogEndOffset(), len(want))
	}
	if n := len(l.Segments()); n < 5 {
		t.Fatalf("expected rolls with segment.bytes 4096, got %d segments", n)
	}
	check := func(l *Log) {
		t.Helper()
		for _, maxBytes := range []int{1, 300, 1 << 20} {
			got := readAll(t, l, 0, maxBytes)
			if len(got) != len(want) {
				t.Fatalf("maxBytes %d: %d records, want %d", maxBytes, len(got), len(want))
			}
			for i, r := range got {
				if r.Offset != int64(i) || r.Value != want[i] {
					t.Fatalf("record %d = %+v, want %q", i, r, want[i])
				}
			}
		}
		// Every offset can be read directly and the first record returned is at or before it.
		for off := int64(0); off < l.LogEndOffset(); off++ {
			s, err := l.Read(off, 1, l.LogEndOffset(), true)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := s.ReadAll()
			s.Release()
			rs := decodeBatches(t, b)
			if rs[0].Offset > off || rs[len(rs)-1].Offset < off {
				t.Fatalf("Read(%d) returned offsets [%d,%d]", off, rs[0].Offset, rs[len(rs)-1].Offset)
			}
		}
	}
	check(l)
	dir := l.Dir()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, dir, smallConfig(), Options{Now: clk.Now})
	if l2.LogEndOffset() != int64(len(want)) {
		t.Fatalf("reopened leo %d", l2.LogEndOffset())
	}
	check(l2)
}

func TestReadLimits(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	var sizes []int64
	for i := range 10 {
		b := batchAt(1, values(3, fmt.Sprint(i))...)
		sizes = append(sizes, int64(len(b)))
		mustAppend(t, l, b)
	}
	leo := l.LogEndOffset() // 30
	read := func(off int64, maxBytes int, maxOffset int64, minOne bool) (Slice, []rec) {
		t.Helper()
		s, err := l.Read(off, maxBytes, maxOffset, minOne)
		if err != nil {
			t.Fatalf("Read(%d,%d,%d,%v): %v", off, maxBytes, maxOffset, minOne, err)
		}
		b, _ := s.ReadAll()
		s.Release()
		return s, decodeBatches(t, b)
	}
	// Starts at the batch containing the offset.
	if _, rs := read(4, 1<<20, leo, false); rs[0].Offset != 3 || len(rs) != 27 {
		t.Fatalf("Read(4) = first %d, %d records", rs[0].Offset, len(rs))
	}
	// maxBytes: whole batches only.
	if s, rs := read(0, int(sizes[0]+sizes[1]+5), leo, false); s.Len != sizes[0]+sizes[1] || len(rs) != 6 {
		t.Fatalf("maxBytes: len %d, %d records", s.Len, len(rs))
	}
	// First batch larger than maxBytes: KIP-74.
	if s, _ := read(0, 10, leo, true); s.Len != sizes[0] {
		t.Fatalf("minOneBatch: len %d", s.Len)
	}
	if s, _ := read(0, 10, leo, false); s.Len != 0 {
		t.Fatalf("no minOneBatch: len %d", s.Len)
	}
	// maxOffset (high watermark): batches with base >= maxOffset excluded.
	if _, rs := read(0, 1<<20, 9, false); len(rs) != 9 {
		t.Fatalf("maxOffset 9: %d records", len(rs))
	}
	if _, rs := read(0, 1<<20, 10, false); len(rs) != 12 { // batch [9,11] starts below 10
		t.Fatalf("maxOffset 10: %d records", len(rs))
	}
	// Empty answers.
	for _, c := range []struct{ off, maxOff int64 }{{leo, leo}, {5, 5}, {7, 3}} {
		if s, _ := read(c.off, 100, c.maxOff, true); s.Len != 0 || s.File != nil {
			t.Fatalf("Read(%d, maxOffset %d) = %+v, want empty", c.off, c.maxOff, s)
		}
	}
	// Out of range.
	for _, off := range []int64{-1, leo + 1} {
		if _, err := l.Read(off, 100, leo, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) err = %v", off, err)
		}
	}
}

func TestLogAppendTime(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.LogAppendTime = true
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	b := batchAt(5, "a", "b")
	r := mustAppend(t, l, b)
	if r.LogAppendTime != clk.Now().UnixMilli() {
		t.Fatalf("LogAppendTime = %d", r.LogAppendTime)
	}
	h, err := ValidateBatch(b) // rewritten in place, CRC recomputed
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != r.LogAppendTime || h.BaseTimestamp != 5 {
		t.Fatalf("header %+v", h)
	}
	rs := readAll(t, l, 0, 1<<20)
	if rs[0].Ts != r.LogAppendTime {
		t.Fatalf("record ts %d", rs[0].Ts)
	}
}

func TestLeaderRewritesOffsetAndEpoch(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	mustAppend(t, l, batchAt(1, "x"))
	b := segmenttest.Batch{BaseOffset: 999, PartitionLeaderEpoch: 42, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: segmenttest.Values("a", "b")}.Encode()
	if _, err := l.AppendLeader(b, 7); err != nil {
		t.Fatal(err)
	}
	h, _ := ValidateBatch(b)
	if h.BaseOffset != 1 || h.PartitionLeaderEpoch != 7 {
		t.Fatalf("header %+v", h)
	}
	if l.LatestEpoch() != 7 {
		t.Fatalf("LatestEpoch = %d", l.LatestEpoch())
	}
}

func TestRollOnSegmentBytes(t *testing.T) {
	cfg := smallConfig()
	l := openTest(t, t.TempDir(), cfg, Options{})
	for range 100 {
		mustAppend(t, l, batchAt(1, values(5, "v")...))
	}
	segs := l.Segments()
	for i, s := range segs {
		if s.Size > cfg.SegmentBytes {
			t.Fatalf("segment %d is %d bytes", i, s.Size)
		}
		if i > 0 && s.BaseOffset != segs[i-1].NextOffset {
			t.Fatalf("segment %d base %d, previous ends at %d", i, s.BaseOffset, segs[i-1].NextOffset)
		}
		if s.Sealed != (i < len(segs)-1) {
			t.Fatalf("segment %d sealed=%v", i, s.Sealed)
		}
		if _, err := os.Stat(s.IndexPath); err != nil {
			t.Fatal(err)
		}
		if s.Sealed {
			// Sealed segments have a snapshot at the next segment's base.
			if _, err := os.Stat(fileName(l.Dir(), segs[i+1].BaseOffset, snapshotSuffix)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if filepath.Base(segs[1].LogPath) != fmt.Sprintf("%020d.log", segs[1].BaseOffset) {
		t.Fatalf("name %s", segs[1].LogPath)
	}
	// An append larger than a segment is rejected.
	if _, err := l.AppendLeader(batchAt(1, string(make([]byte, 5000))), 0); !errors.Is(err, ErrAppendTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestRollOnSegmentMs(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.SegmentMs = time.Hour
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	if err := l.MaybeRoll(); err != nil || len(l.Segments()) != 1 {
		t.Fatalf("empty segment rolled: %v", err)
	}
	clk.Advance(2 * time.Hour)
	if err := l.MaybeRoll(); err != nil || len(l.Segments()) != 1 {
		t.Fatalf("empty segment rolled after segment.ms: %v", err)
	}
	mustAppend(t, l, batchAt(1, "a"))
	clk.Advance(59 * time.Minute)
	mustAppend(t, l, batchAt(1, "b"))
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	clk.Advance(time.Minute)
	mustAppend(t, l, batchAt(1, "c")) // rolls on append
	if n := len(l.Segments()); n != 2 {
		t.Fatalf("%d segments after segment.ms", n)
	}
	clk.Advance(time.Hour)
	if err := l.MaybeRoll(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) != 3 || segs[2].BaseOffset != 3 || segs[2].Size != 0 {
		t.Fatalf("segments %+v", segs)
	}
	if err := l.Roll(); err != nil || len(l.Segments()) != 3 {
		t.Fatalf("Roll of an empty segment: %v, %d segments", err, len(l.Segments()))
	}
}

func TestRollOnIndexFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 0
	cfg.SegmentIndexBytes = 8 * 3 // three offset index entries
	l := openTest(t, t.TempDir(), cfg, Options{})
	for range 20 {
		mustAppend(t, l, batchAt(1, "a"))
	}
	if n := len(l.Segments()); n < 4 {
		t.Fatalf("%d segments, want rolls on full index", n)
	}
	if got := readAll(t, l, 0, 1<<20); len(got) != 20 {
		t.Fatalf("%d records", len(got))
	}
}

func TestConcurrentAppendRead(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 64 << 10
	l := openTest(t, t.TempDir(), cfg, Options{})
	const writers, perWriter = 8, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			off := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := l.Read(off, 4096, l.LogEndOffset(), true)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := s.ReadAll()
				s.Release()
				if err != nil {
					t.Error(err)
					return
				}
				for len(b) > 0 {
					h, err := ValidateBatch(b)
					if err != nil {
						t.Error(err)
						return
					}
					off = h.NextOffset()
					b = b[h.Size():]
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if _, err := l.AppendLeader(segmenttest.Idempotent(int64(w), 0, int32(i), fmt.Sprint(w, "-", i)), 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	got := readAll(t, l, 0, 1<<20)
	if len(got) != writers*perWriter {
		t.Fatalf("%d records", len(got))
	}
}

func TestClosed(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	mustAppend(t, l, batchAt(1, "a"))
	s, err := l.Read(0, 100, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// An outstanding Slice stays readable after Close.
	if b, err := s.ReadAll(); err != nil || len(b) == 0 {
		t.Fatalf("slice after close: %v", err)
	}
	s.Release()
	if _, err := l.AppendLeader(batchAt(1, "b"), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Read(0, 100, 1, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l, err := Open(dir, DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, batchAt(1, "a"))
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}
