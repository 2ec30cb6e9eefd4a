package segment

import (
	"errors"
	"math"
	"os"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestIdempotentProducer(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	idem := segmenttest.Idempotent
	steps := []struct {
		name      string
		batch     []byte
		wantErr   error
		wantFirst int64
		wantLast  int64
		wantDup   bool
	}{
		{"first batch", idem(1, 0, 0, "a", "b"), nil, 0, 1, false},
		{"next batch", idem(1, 0, 2, "c"), nil, 2, 2, false},
		{"other producer", idem(2, 3, 0, "x"), nil, 3, 3, false},
		{"duplicate of the first", idem(1, 0, 0, "a", "b"), nil, 0, 1, true},
		{"duplicate of the last", idem(1, 0, 2, "c"), nil, 2, 2, true},
		{"gap", idem(1, 0, 4, "e"), ErrOutOfOrderSequence, 0, 0, false},
		{"overlap, not a duplicate", idem(1, 0, 1, "b", "c"), ErrOutOfOrderSequence, 0, 0, false},
		{"in sequence", idem(1, 0, 3, "d"), nil, 4, 4, false},
		{"old epoch", idem(2, 2, 1, "y"), ErrInvalidProducerEpoch, 0, 0, false},
		{"new epoch not at 0", idem(2, 4, 1, "y"), ErrOutOfOrderSequence, 0, 0, false},
		{"new epoch at 0", idem(2, 4, 0, "y"), nil, 5, 5, false},
		{"fenced epoch", idem(2, 3, 1, "y"), ErrInvalidProducerEpoch, 0, 0, false},
		{"mixed duplicate and new", segmenttest.Concat(idem(1, 0, 3, "d"), idem(1, 0, 4, "e")), ErrOutOfOrderSequence, 0, 0, false},
		{"two batches of one producer in one append", segmenttest.Concat(idem(1, 0, 4, "e"), idem(1, 0, 5, "f", "g")), nil, 6, 8, false},
		{"non-idempotent", segmenttest.Plain("p"), nil, 9, 9, false},
		// As in Kafka since KIP-360: a producer whose state is gone (retention, a replica
		// restarted at the leader's local log start with the history in the tier) goes on.
		{"unknown producer at any sequence", idem(7, 0, 5, "u"), nil, 10, 10, false},
		{"and in sequence after it", idem(7, 0, 6, "v"), nil, 11, 11, false},
		{"but not out of it", idem(7, 0, 8, "w"), ErrOutOfOrderSequence, 0, 0, false},
	}
	for _, st := range steps {
		leo := l.LogEndOffset()
		r, err := l.AppendLeader(st.batch, 0)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if err != nil {
			if l.LogEndOffset() != leo {
				t.Fatalf("%s: failed append moved the log end", st.name)
			}
			continue
		}
		if r.FirstOffset != st.wantFirst || r.LastOffset != st.wantLast || r.Duplicate != st.wantDup {
			t.Fatalf("%s: result %+v, want [%d,%d] dup=%v", st.name, r, st.wantFirst, st.wantLast, st.wantDup)
		}
		if st.wantDup && l.LogEndOffset() != leo {
			t.Fatalf("%s: duplicate was written", st.name)
		}
	}
	// Only the last five batches are remembered: batch seq 0 is forgotten after 5 more.
	if got := len(readAll(t, l, 0, 1<<20)); got != 12 {
		t.Fatalf("%d records", got)
	}
}

func TestSequenceWrap(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	mustAppend(t, l, segmenttest.Idempotent(9, 0, 0, "a"))
	// Jump the state to near MaxInt32 by replaying a follower batch.
	b := segmenttest.Batch{BaseOffset: 1, ProducerID: 9, ProducerEpoch: 0, BaseSequence: math.MaxInt32 - 1, Records: segmenttest.Values("b", "c")}.Encode()
	if err := l.AppendFollower(b); err != nil {
		t.Fatal(err)
	}
	// (A one-record batch at sequence 0 would be a duplicate of the first batch.)
	r, err := l.AppendLeader(segmenttest.Idempotent(9, 0, 0, "d", "e"), 0)
	if err != nil || r.FirstOffset != 3 || r.Duplicate {
		t.Fatalf("wrapped sequence: %+v %v", r, err)
	}
	// A batch whose sequence range wraps.
	h, _ := ParseBatchHeader(segmenttest.Idempotent(9, 0, math.MaxInt32, "x", "y", "z"))
	if h.LastSequence() != 1 {
		t.Fatalf("LastSequence across the wrap = %d", h.LastSequence())
	}
}

func TestControlBatch(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	txn := segmenttest.Transactional(5, 1, 0, "a")
	mustAppend(t, l, txn)
	if _, err := l.AppendMarker(5, 1, true, 0, 0); err != nil {
		t.Fatal(err)
	}
	if e := l.producers.m[5]; e.txnFirstOffset != -1 || e.n != 1 {
		t.Fatalf("state after marker %+v", e)
	}
	// Sequences continue after the marker.
	mustAppend(t, l, segmenttest.Idempotent(5, 1, 1, "b"))
	if _, err := l.AppendMarker(5, 0, false, 0, 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker with old epoch: %v", err)
	}
	// Clients may not write markers (Kafka: INVALID_RECORD).
	if _, err := l.AppendLeader(testMarker(t, 0, 5, 1, true), 0); !errors.Is(err, ErrControlBatch) {
		t.Fatalf("control batch from a client: %v", err)
	}
}

// dedupSurvives appends, stops the log with stop, reopens it and checks that a retry is
// still recognised as a duplicate and the sequence continues.
func dedupSurvives(t *testing.T, stop func(*Log), rolls bool) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	if rolls {
		cfg.SegmentBytes = 300
	}
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	for i := range 10 {
		last = segmenttest.Idempotent(1, 0, int32(i), "v")
		mustAppend(t, l, append([]byte(nil), last...))
	}
	mustAppend(t, l, segmenttest.Plain("plain"))
	stop(l)
	l2 := openTest(t, dir, cfg, Options{})
	if rolls && len(l2.Segments()) < 3 {
		t.Fatalf("expected rolls, got %d segments", len(l2.Segments()))
	}
	r, err := l2.AppendLeader(last, 0)
	if err != nil || !r.Duplicate || r.FirstOffset != 9 || r.LastOffset != 9 {
		t.Fatalf("retry after reopen: %+v %v", r, err)
	}
	if _, err := l2.AppendLeader(segmenttest.Idempotent(1, 0, 11, "v"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after reopen: %v", err)
	}
	if r, err := l2.AppendLeader(segmenttest.Idempotent(1, 0, 10, "v"), 0); err != nil || r.FirstOffset != 11 {
		t.Fatalf("next after reopen: %+v %v", r, err)
	}
}

func TestDedupSurvivesClose(t *testing.T) {
	dedupSurvives(t, func(l *Log) {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}, false)
}

func TestDedupSurvivesUncleanStop(t *testing.T) {
	for _, rolls := range []bool{false, true} {
		dedupSurvives(t, func(l *Log) {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			l.abandon()
		}, rolls)
	}
}

func TestDedupSurvivesCorruptSnapshot(t *testing.T) {
	dedupSurvives(t, func(l *Log) {
		dir, leo := l.Dir(), l.LogEndOffset()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		path := fileName(dir, leo, snapshotSuffix)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		os.WriteFile(path, b, 0o644)
	}, true)
}

func TestSnapshotRoundTrip(t *testing.T) {
	ps := newProducerState()
	for i := range 7 {
		h := BatchHeader{BaseOffset: int64(i * 10), LastOffsetDelta: 2, RecordCount: 3, ProducerID: int64(i % 3), ProducerEpoch: 1, BaseSequence: int32(i * 3), MaxTimestamp: int64(i)}
		ps.apply(&h, marker{})
	}
	b := ps.encode(77)
	off, got, err := decodeSnapshot(b)
	if err != nil || off != 77 || len(got.m) != 3 {
		t.Fatalf("decode: %v %d %d", err, off, len(got.m))
	}
	for id, e := range ps.m {
		if *got.m[id] != *e {
			t.Fatalf("producer %d: %+v != %+v", id, got.m[id], e)
		}
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("corruption at byte %d not detected", i)
		}
		if _, _, err := decodeSnapshot(b[:i]); err == nil {
			t.Fatalf("truncation at %d not detected", i)
		}
	}
}
