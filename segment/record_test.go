package segment

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// TestRecordCodecRoundTrip decodes batches segmenttest encodes with every codec, then
// re-encodes them with EncodeBatch and decodes that again.
func TestRecordCodecRoundTrip(t *testing.T) {
	for codec := int8(0); codec <= 4; codec++ {
		recs := []segmenttest.Record{
			{Key: []byte("k1"), Value: []byte("v1"), Headers: []segmenttest.Header{{Key: "h", Value: []byte("x")}, {Key: "n"}}},
			{Key: []byte("k2"), Value: nil, TimestampDelta: 5},
			{Key: nil, Value: bytes.Repeat([]byte("z"), 70000), TimestampDelta: -3},
			{Key: []byte{}, Value: []byte{}},
		}
		b := segmenttest.Batch{BaseOffset: 100, FirstTimestamp: 1_700_000_000_000, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 40, Compression: codec, Records: recs}.Encode()
		h, got, err := DecodeRecords(b)
		if err != nil {
			t.Fatalf("codec %d: %v", codec, err)
		}
		if len(got) != len(recs) {
			t.Fatalf("codec %d: %d records", codec, len(got))
		}
		for i, r := range got {
			w := recs[i]
			if r.Offset != 100+int64(i) || r.Timestamp != 1_700_000_000_000+w.TimestampDelta || !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) ||
				!bytes.Equal(r.Value, w.Value) || (r.Value == nil) != (w.Value == nil) || len(r.Headers) != len(w.Headers) {
				t.Fatalf("codec %d record %d: %+v", codec, i, r)
			}
			for j, x := range r.Headers {
				if x.Key != w.Headers[j].Key || !bytes.Equal(x.Value, w.Headers[j].Value) || (x.Value == nil) != (w.Headers[j].Value == nil) {
					t.Fatalf("codec %d record %d header %d: %+v", codec, i, j, x)
				}
			}
		}
		// Drop a record, keep the last offset, as the cleaner does.
		h.LastOffsetDelta = 3
		b2, err := EncodeBatch(h, append(got[:1:1], got[2:]...))
		if err != nil {
			t.Fatal(err)
		}
		h2, got2, err := DecodeRecords(b2)
		if err != nil {
			t.Fatalf("codec %d re-encoded: %v", codec, err)
		}
		if h2.Compression() != int(codec) || h2.RecordCount != 3 || h2.LastOffset() != 103 || h2.ProducerID != 7 || h2.BaseSequence != 40 ||
			h2.BaseTimestamp != 1_700_000_000_000 || h2.MaxTimestamp != 1_700_000_000_000 {
			t.Fatalf("codec %d re-encoded header %+v", codec, h2)
		}
		if got2[1].Offset != 102 || got2[1].Timestamp != 1_700_000_000_000-3 || len(got2[1].Value) != 70000 || got2[0].Headers[0].Key != "h" {
			t.Fatalf("codec %d re-encoded records %+v", codec, got2[:2])
		}
	}
}

// TestDeleteHorizonKeepsTimestamps: a batch with the delete-horizon bit holds the horizon
// in baseTimestamp and the records keep their timestamps.
func TestDeleteHorizonKeepsTimestamps(t *testing.T) {
	h := BatchHeader{BaseOffset: 5, Attributes: attrDeleteHorizon | CompressionZstd, BaseTimestamp: 9_000_000_000_000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	b, err := EncodeBatch(h, []Record{{Offset: 5, Timestamp: 1000, Key: []byte("a")}, {Offset: 7, Timestamp: 3000, Key: []byte("b"), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	h2, recs, err := DecodeRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	if hz, ok := h2.DeleteHorizon(); !ok || hz != 9_000_000_000_000 || h2.MaxTimestamp != 3000 || h2.LastOffset() != 7 {
		t.Fatalf("header %+v", h2)
	}
	if recs[0].Timestamp != 1000 || recs[1].Timestamp != 3000 || recs[1].Offset != 7 {
		t.Fatalf("records %+v", recs)
	}
}

func TestCompactedLogRefusesNullKeys(t *testing.T) {
	cfg := smallConfig()
	cfg.CleanupPolicy = CleanupCompact
	l := openTest(t, t.TempDir(), cfg, Options{})
	for codec := int8(0); codec <= 4; codec++ {
		ok := segmenttest.Batch{ProducerID: -1, Compression: codec, Records: []segmenttest.Record{{Key: []byte("k"), Value: []byte("v")}}}.Encode()
		if _, err := l.AppendLeader(ok, 0); err != nil {
			t.Fatalf("codec %d: keyed record refused: %v", codec, err)
		}
		bad := segmenttest.Batch{ProducerID: -1, Compression: codec, Records: []segmenttest.Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("no key")}}}.Encode()
		if _, err := l.AppendLeader(bad, 0); !errors.Is(err, ErrNoKey) {
			t.Fatalf("codec %d: null key: %v", codec, err)
		}
	}
	cfg.CleanupPolicy = CleanupDelete
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendLeader(segmenttest.Plain("no key"), 0); err != nil {
		t.Fatalf("delete policy: %v", err)
	}
}
