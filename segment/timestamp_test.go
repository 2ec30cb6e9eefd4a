package segment

import (
	"fmt"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestOffsetForTimestamp(t *testing.T) {
	for codec := int8(0); codec <= 4; codec++ {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.IndexIntervalBytes = 50
			cfg.SegmentBytes = 1000
			l := openTest(t, t.TempDir(), cfg, Options{})
			// 40 batches of 4 records; batch i has record timestamps 1000+10i + {0, 2, 4, 6}
			// except that batch 20 goes back in time (max timestamps need not be monotonic).
			for i := range 40 {
				base := int64(1000 + 10*i)
				if i == 20 {
					base = 900
				}
				recs := []segmenttest.Record{{Value: []byte("a")}, {Value: []byte("b"), TimestampDelta: 2}, {Value: []byte("c"), TimestampDelta: 4}, {Value: []byte("d"), TimestampDelta: 6}}
				b := segmenttest.Batch{FirstTimestamp: base, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Compression: codec, Records: recs}.Encode()
				mustAppend(t, l, b)
			}
			if len(l.Segments()) < 3 {
				t.Fatalf("%d segments", len(l.Segments()))
			}
			cases := []struct {
				ts      int64
				off, rt int64
				ok      bool
			}{
				{0, 0, 1000, true},
				{1000, 0, 1000, true},
				{1001, 1, 1002, true},
				{1006, 3, 1006, true},
				{1007, 4, 1010, true},
				{1153, 62, 1154, true},
				{1390, 156, 1390, true},
				{1396, 159, 1396, true},
				{1397, -1, -1, false},
			}
			for _, c := range cases {
				off, rt, ok, err := l.OffsetForTimestamp(c.ts)
				if err != nil || ok != c.ok || (ok && (off != c.off || rt != c.rt)) {
					t.Errorf("OffsetForTimestamp(%d) = %d %d %v %v, want %d %d %v", c.ts, off, rt, ok, err, c.off, c.rt, c.ok)
				}
			}
			if ts, off := l.MaxTimestamp(); ts != 1396 || off != 159 {
				t.Errorf("MaxTimestamp = %d %d", ts, off)
			}
			// The log start bounds the answer.
			l.DeleteRecordsBefore(2)
			if off, rt, ok, _ := l.OffsetForTimestamp(0); !ok || off != 2 || rt != 1004 {
				t.Errorf("after DeleteRecords: %d %d %v", off, rt, ok)
			}
		})
	}
}

func TestOffsetForTimestampLogAppendTime(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	cfg.LogAppendTime = true
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	var times []int64
	for range 5 {
		r := mustAppend(t, l, batchAt(5, "a", "b"))
		times = append(times, r.LogAppendTime)
		clk.Advance(1000)
		clk.Advance(1e6)
	}
	off, ts, ok, err := l.OffsetForTimestamp(times[2])
	if err != nil || !ok || off != 4 || ts != times[2] {
		t.Fatalf("got %d %d %v %v", off, ts, ok, err)
	}
	if ts, off := l.MaxTimestamp(); ts != times[4] || off != 8 {
		t.Fatalf("MaxTimestamp = %d %d", ts, off)
	}
}

func TestMaxTimestampEmpty(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	if ts, off := l.MaxTimestamp(); ts != -1 || off != -1 {
		t.Fatal(ts, off)
	}
	if _, _, ok, err := l.OffsetForTimestamp(0); ok || err != nil {
		t.Fatal(ok, err)
	}
}
