package segment

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
)

// FuzzClean runs a program of appends (random batches over a few keys, tombstones, every
// codec, idempotent producers), rolls, cleans with offset maps of random small sizes,
// clock jumps past delete.retention.ms, restarts and tail truncations, with an oracle:
// every record appended, whose last value per key is what a compacted log must hold.
//
// Invariants: nothing fails; after every clean, below its end each key has exactly its
// last record (a tombstone only after a horizon passed may be gone) and from its end on
// every record appended is there, each with its offset, timestamp, value and headers;
// offsets strictly increase; after restarts the same holds; repeated cleans reach the log
// end and leave the exact compacted log.
func FuzzClean(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 1, 2, 0x13, 5, 7, 4, 5, 40})
	f.Add([]byte{1, 3, 0x81, 0x82, 0x83, 2, 1, 9, 4, 6, 5, 255, 7, 3, 2, 0x21, 0x22, 4, 5, 3})
	f.Add(bytes.Repeat([]byte{2, 2, 0x15, 0x24, 4, 5, 2}, 20))
	f.Add(bytes.Repeat([]byte{3, 1, 0x37, 6, 5, 0}, 30))
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 4096 {
			return
		}
		cfg := compactConfig()
		cfg.SegmentBytes = 512
		cfg.IndexIntervalBytes = 64
		cfg.DeleteRetention = time.Hour
		clk := newClock()
		fsys := vfs.NewMem()
		opts := Options{FS: fsys, Now: clk.Now}
		l, err := Open("/f/t-0", cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { l.Close() }()
		var orig []origRec
		seqs := map[int64]int32{}
		cleanEnd := int64(0)   // the end of the last clean: never truncated below
		horizonPassed := false // a clock jump may have let tombstones go
		byte_ := func(i *int) byte {
			if *i >= len(prog) {
				return 0
			}
			*i++
			return prog[*i-1]
		}
		for i := 0; i < len(prog); {
			switch op := byte_(&i) % 8; op {
			case 0, 1, 2, 3: // a batch
				n := 1 + int(byte_(&i)%5)
				codec := int8(byte_(&i) % 5)
				recs, out := fuzzRecords(n, func() byte { return byte_(&i) }, len(orig), clk.Now().UnixMilli())
				b := segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), Compression: codec, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}
				if op == 3 {
					pid := int64(1 + codec%2)
					b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, 0, seqs[pid]
					seqs[pid] += int32(n)
				}
				res, err := l.AppendLeader(b.Encode(), 0)
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				for j := range out {
					out[j].off = res.FirstOffset + int64(j)
				}
				orig = append(orig, out...)
				clk.Advance(time.Millisecond)
			case 4:
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			case 5:
				m := NewOffsetMap(int64(2+byte_(&i)%24) * offsetMapSlotSize)
				st, err := l.Clean(context.Background(), m, l.LogEndOffset())
				if err != nil {
					t.Fatalf("clean: %v", err)
				}
				// The cleaner's limit is the high watermark in the broker, and followers
				// truncate only above it: never into a batch a clean could have read.
				segs := l.Segments()
				cleanEnd = max(cleanEnd, segs[len(segs)-1].BaseOffset)
				checkCompacted(t, "after a clean", l, orig, st.EndOffset, horizonPassed)
			case 6:
				clk.Advance(cfg.DeleteRetention + time.Second)
				horizonPassed = true
			case 7:
				switch c := byte_(&i); c % 3 {
				case 0:
					err = l.Close()
				case 1:
					l.abandon()
				case 2: // a follower truncating a tail it had not committed
					to := max(cleanEnd, l.LogEndOffset()-int64(c/3%8))
					err = l.TruncateTo(to)
					end := l.LogEndOffset()
					kept := orig[:0]
					for _, o := range orig {
						if o.off < end {
							kept = append(kept, o)
						}
					}
					orig = kept
					if err != nil {
						t.Fatal(err)
					}
					seqs = nextSeqs(l)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if l, err = Open("/f/t-0", cfg, opts); err != nil {
					t.Fatalf("reopen: %v", err)
				}
				seqs = nextSeqs(l)
			}
		}
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
		m := NewOffsetMap(1 << 12)
		for end := int64(-1); end < l.LogEndOffset(); {
			st, err := l.Clean(context.Background(), m, l.LogEndOffset())
			if err != nil {
				t.Fatal(err)
			}
			if st.EndOffset <= end {
				t.Fatalf("no progress: clean ended at %d, then %d", end, st.EndOffset)
			}
			end = st.EndOffset
		}
		checkCompacted(t, "final", l, orig, l.LogEndOffset(), horizonPassed)
	})
}

// fuzzRecords makes n records over six keys from program bytes, one each (next): its
// high bit makes a tombstone, bit 6 a header; values tell records apart by seq, the
// number of records made before. Timestamps are ts on, a millisecond apart.
func fuzzRecords(n int, next func() byte, seq int, ts int64) ([]segmenttest.Record, []origRec) {
	recs := make([]segmenttest.Record, n)
	out := make([]origRec, n)
	for j := range recs {
		c := next()
		key := []byte{'k', '0' + c%6}
		var value []byte
		if c&0x80 == 0 {
			value = []byte{'v', byte(seq + j), c}
		}
		recs[j] = segmenttest.Record{Key: key, Value: value, TimestampDelta: int64(j)}
		out[j] = origRec{key: key, value: value, ts: ts + int64(j)}
		if c&0x40 != 0 {
			out[j].header = string([]byte{'h', c})
			recs[j].Headers = []segmenttest.Header{{Key: "h", Value: []byte(out[j].header)}}
		}
	}
	return recs, out
}

// nextSeqs returns the sequence each producer known to the log continues with (an
// unknown one may start anywhere).
func nextSeqs(l *Log) map[int64]int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int64]int32{}
	for id, e := range l.producers.m {
		if e.n > 0 {
			out[id] = e.batches[e.n-1].lastSeq + 1
		}
	}
	return out
}

// FuzzDecodeRecords feeds arbitrary bytes to the record decoder.
//
// Invariants: DecodeRecords never panics and its errors wrap ErrCorruptBatch or
// ErrUnsupportedMagic; what it decodes re-encodes with EncodeBatch (same codec, offsets,
// fields) into a batch that decodes to the same records.
func FuzzDecodeRecords(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	for codec := int8(0); codec <= 4; codec++ {
		f.Add(segmenttest.Batch{Compression: codec, ProducerID: -1, Records: []segmenttest.Record{
			{Key: []byte("k"), Value: []byte("v"), Headers: []segmenttest.Header{{Key: "a", Value: nil}}}, {Key: nil, Value: nil, TimestampDelta: -9}}}.Encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, recs, err := DecodeRecords(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(recs) != int(h.RecordCount) || h.Control() {
			return
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Offset <= recs[i-1].Offset {
				return // offsets not increasing: valid for the decoder, not for EncodeBatch
			}
		}
		if h.LogAppendTime() {
			return // record timestamps are not kept with LogAppendTime
		}
		b2, err := EncodeBatch(h, recs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, recs2, err := DecodeRecords(b2)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if len(recs2) != len(recs) {
			t.Fatalf("%d records, re-encoded %d", len(recs), len(recs2))
		}
		for i := range recs {
			a, c := recs[i], recs2[i]
			if a.Offset != c.Offset || a.Timestamp != c.Timestamp || !bytes.Equal(a.Key, c.Key) || (a.Key == nil) != (c.Key == nil) ||
				!bytes.Equal(a.Value, c.Value) || (a.Value == nil) != (c.Value == nil) || len(a.Headers) != len(c.Headers) || a.Attributes != c.Attributes {
				t.Fatalf("record %d: %+v, re-encoded %+v", i, a, c)
			}
		}
	})
}
