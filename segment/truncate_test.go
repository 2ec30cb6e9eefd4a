package segment

import (
	"errors"
	"os"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestTruncateTo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		to     int64
		wantTo int64 // new log end
	}{
		{"batch boundary in the active segment", 27, 27},
		{"inside a batch removes it whole", 28, 27},
		{"segment boundary", 15, 15},
		{"inside an earlier segment", 10, 9},
		{"first segment", 1, 0},
		{"everything", 0, 0},
		{"no-op at the end", 30, 30},
		{"beyond the end", 99, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.IndexIntervalBytes = 1
			dir := t.TempDir()
			l := openTest(t, dir, cfg, Options{})
			// 10 batches of 3 records, epochs 1..3, idempotent producer 1, a roll every 5 batches.
			for i := range 10 {
				b := segmenttest.Batch{FirstTimestamp: int64(100 + i), ProducerID: 1, ProducerEpoch: 0, BaseSequence: int32(3 * i), Records: segmenttest.Values("a", "b", "c")}.Encode()
				if _, err := l.AppendLeader(b, int32(1+i/4)); err != nil {
					t.Fatal(err)
				}
				if i == 4 {
					l.Roll()
				}
			}
			if err := l.TruncateTo(tc.to); err != nil {
				t.Fatal(err)
			}
			if l.LogEndOffset() != tc.wantTo {
				t.Fatalf("leo %d, want %d", l.LogEndOffset(), tc.wantTo)
			}
			if got := readAll(t, l, l.LogStartOffset(), 1<<20); int64(len(got)) != tc.wantTo-l.LogStartOffset() {
				t.Fatalf("%d records", len(got))
			}
			if l.DurableOffset() > tc.wantTo {
				t.Fatalf("durable %d above the new end", l.DurableOffset())
			}
			// Epochs: 1 at 0, 2 at 12, 3 at 24.
			wantEpoch := int32(-1)
			switch {
			case tc.wantTo > 24:
				wantEpoch = 3
			case tc.wantTo > 12:
				wantEpoch = 2
			case tc.wantTo > 0:
				wantEpoch = 1
			}
			if l.LatestEpoch() != wantEpoch {
				t.Fatalf("latest epoch %d, want %d", l.LatestEpoch(), wantEpoch)
			}
			// Producer state follows: the next sequence is the one after the new end.
			next := int32(tc.wantTo)
			if tc.wantTo == 0 {
				next = 0
			}
			r, err := l.AppendLeader(segmenttest.Idempotent(1, 0, next, "n"), 4)
			if err != nil || r.FirstOffset != tc.wantTo {
				t.Fatalf("append after truncate: %+v %v", r, err)
			}
			if tc.wantTo >= 3 {
				if _, err := l.AppendLeader(segmenttest.Idempotent(1, 0, next-3, "a", "b", "c"), 4); err != nil {
					t.Fatalf("duplicate of a kept batch: %v", err)
				}
			}
			// A reopen agrees.
			end := l.LogEndOffset()
			l.Close()
			l2 := openTest(t, dir, cfg, Options{})
			if l2.LogEndOffset() != end {
				t.Fatalf("reopen leo %d want %d", l2.LogEndOffset(), end)
			}
			if got := readAll(t, l2, l2.LogStartOffset(), 100); int64(len(got)) != end-l2.LogStartOffset() {
				t.Fatalf("%d records after reopen", len(got))
			}
			if off, _, ok, err := l2.OffsetForTimestamp(100); err != nil || !ok || off != l2.LogStartOffset() {
				t.Fatalf("OffsetForTimestamp after truncation: %d %v %v", off, ok, err)
			}
		})
	}
}

func TestTruncateToRemovesSnapshots(t *testing.T) {
	cfg := DefaultConfig()
	l := openTest(t, t.TempDir(), cfg, Options{})
	for i := range 6 {
		mustAppend(t, l, segmenttest.Idempotent(1, 0, int32(i), "v"))
		l.Roll()
	}
	if !fileExists(fileName(l.Dir(), 5, snapshotSuffix)) {
		t.Fatal("no snapshot at 5")
	}
	if err := l.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{4, 5, 6} {
		if fileExists(fileName(l.Dir(), off, snapshotSuffix)) {
			t.Fatalf("snapshot %d survived truncation to 3", off)
		}
	}
	if _, err := l.AppendLeader(segmenttest.Idempotent(1, 0, 4, "v"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence 4 after truncation to 3: %v", err)
	}
	entries, _ := os.ReadDir(l.Dir())
	for _, e := range entries {
		if b, ok := parseFileName(e.Name(), logSuffix); ok && b > 3 {
			t.Fatalf("segment %s survived", e.Name())
		}
	}
}

func TestAppendFollower(t *testing.T) {
	leader := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	follower := openTest(t, t.TempDir(), smallConfig(), Options{})
	for i := range 50 {
		if _, err := leader.AppendLeader(segmenttest.Idempotent(1, 0, int32(3*i), values(3, "f")...), int32(i/20)); err != nil {
			t.Fatal(err)
		}
	}
	// Replicate in chunks of whole batches, as follower fetches do.
	off := int64(0)
	for off < leader.LogEndOffset() {
		s, err := leader.Read(off, 1000, leader.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.ReadAll()
		s.Release()
		if err := follower.AppendFollower(b); err != nil {
			t.Fatal(err)
		}
		off = follower.LogEndOffset()
	}
	if follower.LogEndOffset() != leader.LogEndOffset() || len(follower.Segments()) < 2 {
		t.Fatalf("follower leo %d, %d segments", follower.LogEndOffset(), len(follower.Segments()))
	}
	// Wrong start offset.
	if err := follower.AppendFollower(segmenttest.Batch{BaseOffset: 3, ProducerID: -1, Records: segmenttest.Values("x")}.Encode()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("misplaced follower append: %v", err)
	}
	// Producer state was replicated: the follower, become leader, dedups a retry.
	if follower.LatestEpoch() != 2 {
		t.Fatalf("follower epoch %d", follower.LatestEpoch())
	}
	if e, o := follower.EndOffsetForEpoch(1); e != 1 || o != 120 {
		t.Fatalf("follower EndOffsetForEpoch(1) = %d %d", e, o)
	}
	last := segmenttest.Idempotent(1, 0, 3*49, values(3, "f")...)
	if r, err := follower.AppendLeader(last, 5); err != nil || !r.Duplicate {
		t.Fatalf("dedup on the follower: %+v %v", r, err)
	}
}

func TestLeaderEpochs(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig(), Options{})
	if e, o := l.EndOffsetForEpoch(0); e != -1 || o != -1 || l.LatestEpoch() != -1 {
		t.Fatalf("empty cache: %d %d", e, o)
	}
	app := func(epoch int32, n int) {
		for range n {
			if _, err := l.AppendLeader(batchAt(1, "v"), epoch); err != nil {
				t.Fatal(err)
			}
		}
	}
	app(2, 3) // epoch 2 at 0
	app(5, 4) // epoch 5 at 3
	app(3, 1) // an older epoch does not change the cache
	app(7, 2) // epoch 7 at 8; leo 10
	cases := []struct {
		req int32
		e   int32
		off int64
	}{
		{1, 1, 0}, // below every epoch: the requested epoch and the first start offset
		{2, 2, 3}, // end of epoch 2 = start of 5
		{3, 2, 3}, // largest epoch <= 3 is 2
		{5, 5, 8},
		{6, 5, 8},
		{7, 7, 10},  // latest: log end
		{8, -1, -1}, // newer than any
		{-1, -1, -1},
	}
	for _, c := range cases {
		if e, o := l.EndOffsetForEpoch(c.req); e != c.e || o != c.off {
			t.Errorf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", c.req, e, o, c.e, c.off)
		}
	}
	b, _ := os.ReadFile(dir + "/" + epochCheckpointName)
	if string(b) != "0\n3\n2 0\n5 3\n7 8\n" {
		t.Fatalf("checkpoint %q", b)
	}
	// DeleteRecords moves the first epoch's start.
	l.DeleteRecordsBefore(4)
	b, _ = os.ReadFile(dir + "/" + epochCheckpointName)
	if string(b) != "0\n2\n5 4\n7 8\n" {
		t.Fatalf("checkpoint after DeleteRecords %q", b)
	}
	l.Close()
	l2 := openTest(t, dir, DefaultConfig(), Options{})
	if e, o := l2.EndOffsetForEpoch(5); e != 5 || o != 8 || l2.LatestEpoch() != 7 {
		t.Fatalf("after reopen: %d %d", e, o)
	}
	// A corrupt checkpoint is rebuilt from the recovered segment's batches on unclean open.
	l2.Sync()
	l2.abandon()
	os.WriteFile(dir+"/"+epochCheckpointName, []byte("garbage"), 0o644)
	l3 := openTest(t, dir, DefaultConfig(), Options{})
	if l3.LatestEpoch() != 7 {
		t.Fatalf("rebuilt latest epoch %d", l3.LatestEpoch())
	}
	if e, o := l3.EndOffsetForEpoch(5); e != 5 || o != 8 {
		t.Fatalf("rebuilt: %d %d", e, o)
	}
}

// TestTruncateToEndDropsEmptyEpoch: a leader deposed before it appended anything in its
// epoch has that epoch starting at its log end. Told, as a follower, to truncate at the
// end, it drops the empty epoch (on disk too), so its last fetched epoch is the one the
// new leader knows again. An epoch holding batches is never dropped this way.
func TestTruncateToEndDropsEmptyEpoch(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig(), Options{})
	for range 3 {
		if _, err := l.AppendLeader(batchAt(1, "v"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AssignEpochStart(2); err != nil || l.LatestEpoch() != 2 {
		t.Fatalf("assign: %v, latest %d", err, l.LatestEpoch())
	}
	if err := l.TruncateTo(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 1 || l.LogEndOffset() != 3 {
		t.Fatalf("after truncating at the end: latest epoch %d, end %d; want 1, 3", l.LatestEpoch(), l.LogEndOffset())
	}
	if err := l.TruncateTo(l.LogEndOffset()); err != nil || l.LatestEpoch() != 1 {
		t.Fatalf("epoch 1 holds batches and must stay: %v, latest %d", err, l.LatestEpoch())
	}
	l.Close()
	l = openTest(t, dir, DefaultConfig(), Options{})
	if l.LatestEpoch() != 1 {
		t.Fatalf("after reopening: latest epoch %d", l.LatestEpoch())
	}
}
