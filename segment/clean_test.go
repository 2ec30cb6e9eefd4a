package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
)

// origRec is a record as it was appended: the oracle of the compaction tests.
type origRec struct {
	off, ts    int64
	key, value []byte   // nil: null
	header     string   // one header "h" with this value, "" for none
	txn        *txnFate // the transaction of a transactional record, nil for others
}

// txnFate is what became of a transaction: set when its marker is appended.
type txnFate struct{ open, aborted bool }

func (o *origRec) aborted() bool { return o.txn != nil && o.txn.aborted }

// keyedWorkload appends batches of records over nkeys keys (every tenth value a
// tombstone, now and then a null key when allowed), with every codec, from plain and
// idempotent producers, and returns what it appended in offset order.
type keyedWorkload struct {
	rng      *rand.Rand
	nkeys    int
	nullKeys bool // the log is not compacted yet: null keys are allowed
	tombs    int  // one value in tombs is a tombstone
	plain    bool // no compressed batch
	txn      bool // a third of the batches transactional, ended by random markers
	pidBase  int64
	open     map[int64]*txnFate // transactions open, by producer
	seqs     map[int64]int32
	n        int
	ts       int64
}

func newWorkload(seed uint64, nkeys int) *keyedWorkload {
	return &keyedWorkload{rng: rand.New(rand.NewPCG(seed, seed^0x9e37)), nkeys: nkeys, tombs: 10, seqs: map[int64]int32{}, open: map[int64]*txnFate{},
		ts: 1_700_000_000_000}
}

func (w *keyedWorkload) batch() ([]byte, []origRec) {
	r := w.rng
	recs := make([]segmenttest.Record, 1+r.IntN(6))
	out := make([]origRec, len(recs))
	for i := range recs {
		w.n++
		key := []byte(fmt.Sprintf("key-%04d", r.IntN(w.nkeys)))
		if w.nullKeys && r.IntN(15) == 0 {
			key = nil
		}
		var value []byte
		if r.IntN(w.tombs) != 0 {
			value = []byte(fmt.Sprintf("value-%d-%s", w.n, bytes.Repeat([]byte{'x'}, r.IntN(40))))
		}
		o := origRec{ts: w.ts + int64(i)*3, key: key, value: value}
		recs[i] = segmenttest.Record{Key: key, Value: value, TimestampDelta: int64(i) * 3}
		if r.IntN(4) == 0 {
			o.header = fmt.Sprintf("hdr-%d", w.n)
			recs[i].Headers = []segmenttest.Header{{Key: "h", Value: []byte(o.header)}}
		}
		out[i] = o
	}
	codec := int8(0)
	if r.IntN(3) == 0 && !w.plain { // compressed batches are slow to make and read under -race: a third
		codec = int8(1 + r.IntN(4))
	}
	b := segmenttest.Batch{FirstTimestamp: w.ts, Compression: codec, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}
	if pid := int64(r.IntN(4)); pid > 0 { // three idempotent producers and plain ones
		pid += w.pidBase
		txn := w.txn && r.IntN(3) == 0 // or two transactional ones
		if txn {
			pid = w.pidBase + 10 + int64(r.IntN(2))
		}
		b.ProducerID, b.ProducerEpoch, b.BaseSequence, b.Transactional = pid, 0, w.seqs[pid], txn
		w.seqs[pid] += int32(len(recs))
		if txn {
			if w.open[pid] == nil {
				w.open[pid] = &txnFate{open: true}
			}
			for i := range out {
				out[i].txn = w.open[pid]
			}
		}
	}
	w.ts += 100
	return b.Encode(), out
}

// appendBatches appends n batches and returns the records with their offsets.
func (w *keyedWorkload) appendBatches(t testing.TB, l *Log, n int) []origRec {
	t.Helper()
	var all []origRec
	for range n {
		b, recs := w.batch()
		res, err := l.AppendLeader(b, 0)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		for i := range recs {
			recs[i].off = res.FirstOffset + int64(i)
		}
		all = append(all, recs...)
		for _, pid := range slices.Sorted(maps.Keys(w.open)) {
			if w.rng.IntN(3) == 0 {
				w.endTxn(t, l, pid, w.rng.IntN(2) == 0)
			}
		}
	}
	return all
}

// endTxn appends the marker ending producer pid's open transaction.
func (w *keyedWorkload) endTxn(t testing.TB, l *Log, pid int64, commit bool) {
	t.Helper()
	if _, err := l.AppendMarker(pid, 0, commit, 0, 0); err != nil {
		t.Fatalf("marker: %v", err)
	}
	w.open[pid].open, w.open[pid].aborted = false, !commit
	delete(w.open, pid)
}

// endTxns ends every open transaction, committing or aborting at random.
func (w *keyedWorkload) endTxns(t testing.TB, l *Log) {
	for _, pid := range slices.Sorted(maps.Keys(w.open)) {
		w.endTxn(t, l, pid, w.rng.IntN(2) == 0)
	}
}

// logRecords reads every data record of the log from its start (read_uncommitted, control
// batches skipped), checking that batches and records come in strictly increasing offsets.
func logRecords(t testing.TB, l *Log) []Record {
	t.Helper()
	var out []Record
	next := l.LogStartOffset()
	prev := int64(-1)
	for next < l.LogEndOffset() {
		s, err := l.Read(next, 64<<10, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("Read(%d): %v", next, err)
		}
		b, err := s.ReadAll()
		s.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing below the log end %d", next, l.LogEndOffset())
		}
		for len(b) > 0 {
			h, recs, err := DecodeRecords(b)
			if err != nil {
				t.Fatalf("batch at %d: %v", next, err)
			}
			if h.BaseOffset <= prev || h.RecordCount > 0 && recs[0].Offset < h.BaseOffset {
				t.Fatalf("batch [%d, %d] after offset %d", h.BaseOffset, h.LastOffset(), prev)
			}
			for _, r := range recs {
				if r.Offset <= prev || r.Offset > h.LastOffset() {
					t.Fatalf("record at %d after %d in batch [%d, %d]", r.Offset, prev, h.BaseOffset, h.LastOffset())
				}
				prev = r.Offset
			}
			prev = max(prev, h.LastOffset())
			next = h.NextOffset()
			if !h.Control() {
				out = append(out, recs...)
			}
			b = b[h.Size():]
		}
	}
	return out
}

// checkCompacted checks the log against what was appended: below end exactly the last
// record of each key below end (a tombstone possibly gone when tombstonesMayGo, and never
// a record without a key; aborted records do not count and are gone), at and after end
// every record appended (aborted ones maybe gone); each record as it was appended, at its
// offset.
func checkCompacted(t testing.TB, what string, l *Log, orig []origRec, end int64, tombstonesMayGo bool) {
	t.Helper()
	checkView(t, what, logRecords(t, l), orig, end, tombstonesMayGo, math.MaxInt64)
}

// checkView checks records read from a compacted log as checkCompacted says; with upper
// below MaxInt64 they were read read_committed up to upper (the last stable offset): no
// aborted record at all, and none at or after upper.
func checkView(t testing.TB, what string, recs []Record, orig []origRec, end int64, tombstonesMayGo bool, upper int64) {
	t.Helper()
	committed := upper < math.MaxInt64
	byOff := map[int64]*origRec{}
	last := map[string]*origRec{}
	for i := range orig {
		o := &orig[i]
		byOff[o.off] = o
		if o.off < end && o.key != nil && !o.aborted() {
			last[string(o.key)] = o
		}
	}
	seen := map[string]bool{}
	tail := 0
	for _, r := range recs {
		o := byOff[r.Offset]
		if o == nil || !bytes.Equal(r.Key, o.key) || (r.Key == nil) != (o.key == nil) || !bytes.Equal(r.Value, o.value) ||
			(r.Value == nil) != (o.value == nil) || r.Timestamp != o.ts {
			t.Fatalf("%s: record at %d is %q=%q ts %d, appended %+v", what, r.Offset, r.Key, r.Value, r.Timestamp, o)
		}
		if hv := ""; o.header != "" {
			if len(r.Headers) == 1 && r.Headers[0].Key == "h" {
				hv = string(r.Headers[0].Value)
			}
			if hv != o.header {
				t.Fatalf("%s: record at %d lost its header %q: %+v", what, r.Offset, o.header, r.Headers)
			}
		}
		if o.aborted() && (committed || r.Offset < end) {
			t.Fatalf("%s: aborted record at %d read (cleaned below %d)", what, r.Offset, end)
		}
		if r.Offset >= upper {
			t.Fatalf("%s: record at %d read above the last stable offset %d", what, r.Offset, upper)
		}
		if o.aborted() {
			continue
		}
		if r.Offset >= end {
			tail++
			continue
		}
		if r.Key == nil || last[string(r.Key)] != o || seen[string(r.Key)] {
			t.Fatalf("%s: record at %d of key %q below the cleaned end %d is not the key's last (%d)", what, r.Offset, r.Key, end, last[string(r.Key)].off)
		}
		seen[string(r.Key)] = true
	}
	for k, o := range last {
		if !seen[k] && !(tombstonesMayGo && o.value == nil) && o.off < upper {
			t.Fatalf("%s: key %q lost: its last record at %d (value %q) is gone", what, k, o.off, o.value)
		}
	}
	want := 0
	for _, o := range orig {
		if o.off >= end && o.off < upper && !o.aborted() {
			want++
		}
	}
	if tail != want {
		t.Fatalf("%s: %d records at or after %d, appended %d", what, tail, end, want)
	}
}

func compactConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 2048
	c.IndexIntervalBytes = 256
	c.CleanupPolicy = CleanupCompact
	c.MinCleanableDirtyRatio = 0.01
	return c
}

func TestCleanKeepsLastValuePerKey(t *testing.T) {
	dir, mem := "/c/t-0", vfs.NewMem()
	cfg := compactConfig()
	l := openTest(t, dir, cfg, Options{FS: mem})
	w := newWorkload(1, 50)
	orig := w.appendBatches(t, l, 400)
	before := len(l.Segments())
	c := l.Cleanable(l.LogEndOffset())
	if !c.Due || c.FirstDirty != 0 || c.CleanBytes != 0 || c.DirtyBytes == 0 {
		t.Fatalf("before the first clean: %+v", c)
	}
	st, err := l.Clean(context.Background(), NewOffsetMap(1<<20), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v; %d segments before, %d after", st, before, len(l.Segments()))
	active := l.Segments()[len(l.Segments())-1].BaseOffset
	// Groups are made by the segments' sizes before the clean (Kafka's rule): the small
	// cleaned segments merge in the next clean.
	if st.EndOffset != active || st.RecordsKept >= st.RecordsRead || st.BytesWritten >= st.BytesRead || st.SegmentsAfter > st.SegmentsBefore {
		t.Fatalf("stats %+v (active segment at %d)", st, active)
	}
	checkCompacted(t, "after the clean", l, orig, st.EndOffset, false)
	for _, s := range l.Segments()[:len(l.Segments())-1] {
		if s.Size > cfg.SegmentBytes {
			t.Fatalf("cleaned segment %d is %d bytes, segment.bytes %d", s.BaseOffset, s.Size, cfg.SegmentBytes)
		}
	}
	if c := l.Cleanable(l.LogEndOffset()); c.Due || c.FirstDirty != st.EndOffset || c.DirtyBytes != 0 {
		t.Fatalf("after the clean: %+v", c)
	}
	// Nothing dirty: a clean does nothing.
	if st2, err := l.Clean(context.Background(), NewOffsetMap(1<<20), l.LogEndOffset()); err != nil || st2.BytesRead != 0 {
		t.Fatalf("second clean: %+v %v", st2, err)
	}

	// More data, a second clean: the clean section is cleaned again with the new keys.
	orig = append(orig, w.appendBatches(t, l, 200)...)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	st, err = l.Clean(context.Background(), NewOffsetMap(1<<20), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if st.EndOffset != l.LogEndOffset() {
		t.Fatalf("second clean ended at %d, log end %d", st.EndOffset, l.LogEndOffset())
	}
	if st.SegmentsAfter > st.SegmentsBefore/2 {
		t.Fatalf("small cleaned segments were not merged: %+v", st)
	}
	checkCompacted(t, "after the second clean", l, orig, st.EndOffset, false)

	// The cleaned log survives a clean restart and an unclean one.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg, Options{FS: mem})
	checkCompacted(t, "after reopening", l, orig, st.EndOffset, false)
	if c := l.Cleanable(l.LogEndOffset()); c.FirstDirty != st.EndOffset {
		t.Fatalf("cleaner checkpoint lost: %+v", c)
	}
	l.abandon()
	l = openTest(t, dir, cfg, Options{FS: mem})
	checkCompacted(t, "after an unclean stop", l, orig, st.EndOffset, false)
}

// TestCleanLimit: nothing at or above the limit (the high watermark) is cleaned, nor
// does it remove older records.
func TestCleanLimit(t *testing.T) {
	cfg := compactConfig()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(2, 20)
	orig := w.appendBatches(t, l, 400)
	segs := l.Segments()
	limit := segs[len(segs)/2].BaseOffset + 1 // inside a segment: that one is not cleaned
	st, err := l.Clean(context.Background(), NewOffsetMap(1<<20), limit)
	if err != nil {
		t.Fatal(err)
	}
	if st.EndOffset != segs[len(segs)/2].BaseOffset {
		t.Fatalf("cleaned up to %d, want the base %d of the segment holding the limit %d", st.EndOffset, segs[len(segs)/2].BaseOffset, limit)
	}
	checkCompacted(t, "limited clean", l, orig, st.EndOffset, false)
}

// TestCleanSmallOffsetMap: a map too small for the dirty section cleans up to where it
// filled; further cleans go on from there until the log is clean.
func TestCleanSmallOffsetMap(t *testing.T) {
	cfg := compactConfig()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(3, 150)
	orig := w.appendBatches(t, l, 300)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	m := NewOffsetMap(60 * offsetMapSlotSize) // 54 keys
	var end int64
	var util float64
	for i := 0; end < l.LogEndOffset(); i++ {
		if i > 100 {
			t.Fatal("the cleaner makes no progress")
		}
		st, err := l.Clean(context.Background(), m, l.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if st.EndOffset <= end {
			t.Fatalf("clean %d ended at %d, after %d", i, st.EndOffset, end)
		}
		end = st.EndOffset
		util = max(util, st.MapUtilization)
		if i%4 == 0 || end == l.LogEndOffset() {
			checkCompacted(t, fmt.Sprintf("clean %d", i), l, orig, end, false)
		}
	}
	if util < 0.99 {
		t.Fatalf("the offset map never filled: utilization %v", util)
	}
}

// TestCleanTombstones: tombstones stay until delete.retention.ms after the clean that
// first kept them (KIP-534), then a clean removes them; Cleanable says when.
func TestCleanTombstones(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetention = time.Hour
	clk := newClock()
	dir, mem := "/c/t-0", vfs.NewMem()
	l := openTest(t, dir, cfg, Options{FS: mem, Now: clk.Now})
	w := newWorkload(4, 30)
	w.tombs = 3
	orig := w.appendBatches(t, l, 300)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	m := NewOffsetMap(1 << 20)
	st, err := l.Clean(context.Background(), m, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, "first clean", l, orig, st.EndOffset, false)
	tombs := func() int {
		n := 0
		for _, r := range logRecords(t, l) {
			if r.Value == nil {
				n++
			}
		}
		return n
	}
	if tombs() == 0 {
		t.Fatal("the workload left no tombstone to test")
	}
	clk.Advance(59 * time.Minute)
	if c := l.Cleanable(l.LogEndOffset()); c.Due || c.HorizonPassed {
		t.Fatalf("due before the delete horizon: %+v", c)
	}
	if _, err := l.Clean(context.Background(), m, l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if tombs() == 0 {
		t.Fatal("tombstones removed before delete.retention.ms")
	}
	// The horizon survives a restart in the cleaner checkpoint.
	l.Close()
	l = openTest(t, dir, cfg, Options{FS: mem, Now: clk.Now})
	clk.Advance(2 * time.Minute)
	if c := l.Cleanable(l.LogEndOffset()); !c.Due || !c.HorizonPassed {
		t.Fatalf("not due after the delete horizon: %+v", c)
	}
	st, err = l.Clean(context.Background(), m, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if n := tombs(); n != 0 {
		t.Fatalf("%d tombstones left after the delete horizon", n)
	}
	checkCompacted(t, "after the horizon", l, orig, st.EndOffset, true)
	if c := l.Cleanable(l.LogEndOffset()); c.Due {
		t.Fatalf("still due: %+v", c)
	}
}

// TestCleanKeepsProducerState: the batch with an idempotent producer's last sequence stays
// (empty if its records were all superseded), so a retry of it is still a duplicate and
// the producer goes on, also after recovery replays the cleaned log.
func TestCleanKeepsProducerState(t *testing.T) {
	dir, mem := "/c/t-0", vfs.NewMem()
	cfg := compactConfig()
	l := openTest(t, dir, cfg, Options{FS: mem})
	idem := func(seq int32, key, value string) []byte {
		return segmenttest.Batch{FirstTimestamp: 1_700_000_000_000, ProducerID: 42, ProducerEpoch: 3, BaseSequence: seq,
			Records: []segmenttest.Record{{Key: []byte(key), Value: []byte(value)}, {Key: []byte(key), Value: []byte(value + "'")}}}.Encode()
	}
	last := idem(0, "a", "1")
	mustAppend(t, l, last)
	for i := range 100 { // a plain producer overwrites key "a" many times
		mustAppend(t, l, segmenttest.Batch{ProducerID: -1, Records: []segmenttest.Record{{Key: []byte("a"), Value: []byte(fmt.Sprint(i))}}}.Encode())
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(context.Background(), NewOffsetMap(1<<20), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	s, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.ReadAll()
	s.Release()
	h, err := ValidateBatch(b)
	if err != nil || h.ProducerID != 42 || h.RecordCount != 0 || h.BaseOffset != 0 || h.LastOffset() != 1 || h.BaseSequence != 0 || h.ProducerEpoch != 3 {
		t.Fatalf("first batch after the clean: %+v %v", h, err)
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			l.abandon()
			for _, snap := range l.listSnapshots() { // replay the cleaned log from its start
				l.fs.Remove(fileName(dir, snap, snapshotSuffix))
			}
			l = openTest(t, dir, cfg, Options{FS: mem})
		}
		if r, err := l.AppendLeader(idem(0, "a", "1"), 0); err != nil || !r.Duplicate || r.FirstOffset != 0 || r.LastOffset != 1 {
			t.Fatalf("reopen %v: retry of the producer's last batch: %+v %v", reopen, r, err)
		}
	}
	if _, err := l.AppendLeader(idem(2, "b", "2"), 0); err != nil {
		t.Fatalf("next sequence: %v", err)
	}
}

// TestCleanUnderLoad cleans while producers append and readers hold slices of the
// segments being replaced: reads of old slices keep working, appends are not lost.
func TestCleanUnderLoad(t *testing.T) {
	cfg := compactConfig()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(5, 40)
	orig := w.appendBatches(t, l, 400)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	held, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	heldBytes, _ := held.ReadAll()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var more []origRec
	wg.Go(func() {
		w2 := newWorkload(6, 40)
		w2.pidBase = 100
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, recs := w2.batch()
			res, err := l.AppendLeader(b, 0)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range recs {
				recs[i].off = res.FirstOffset + int64(i)
			}
			more = append(more, recs...)
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := readChecked(l, l.LogStartOffset(), 4096, l.LogEndOffset()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	limit := l.Segments()[len(l.Segments())-1].BaseOffset
	st, err := l.Clean(context.Background(), NewOffsetMap(1<<20), limit)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	again, err := held.ReadAll()
	held.Release()
	if err != nil || !bytes.Equal(again, heldBytes) {
		t.Fatalf("a slice held across the clean changed: %v", err)
	}
	checkCompacted(t, "cleaned under load", l, append(orig, more...), st.EndOffset, false)
}

// TestCleanAbortedByTruncation: a truncation while a clean works makes its swap abort and
// leaves no cleaned file behind.
func TestCleanAbortedByTruncation(t *testing.T) {
	cfg := compactConfig()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(7, 30)
	w.appendBatches(t, l, 300)
	l.mu.Lock()
	gen := l.cl.gen
	segs := *l.segs.Load()
	l.mu.Unlock()
	m := NewOffsetMap(1 << 20)
	st := CleanStats{}
	cw := cleanWork{l: l, ctx: context.Background(), cfg: l.config(), m: m, now: 0, lastData: map[int64]int64{}, stats: &st, horizon: -1,
		txn: newTxnClean(segs, 0, segs[3].base, nil)}
	end, err := cw.buildMap(segs[:3], 0, segs[3].base)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cw.rewrite(segs[:3])
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(l.LogEndOffset() - 1); err != nil {
		t.Fatal(err)
	}
	if err := l.swapIn(ns, segs[:3], gen); !errors.Is(err, ErrCleanAborted) {
		t.Fatalf("swap after a truncation: %v", err)
	}
	entries, _ := l.fs.ReadDir(l.dir)
	for _, e := range entries {
		if n := e.Name(); bytes.HasSuffix([]byte(n), []byte(cleanedSuffix)) || bytes.HasSuffix([]byte(n), []byte(swapSuffix)) {
			t.Fatalf("%s left behind", n)
		}
	}
	if !slices.Equal(*l.segs.Load(), segs) || end <= 0 {
		t.Fatal("segments changed")
	}
}

// TestCleanableLags: min.compaction.lag.ms keeps recent segments out of the clean;
// max.compaction.lag.ms makes an old dirty segment due whatever the ratio (KIP-354).
func TestCleanableLags(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.99
	clk := newClock()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem(), Now: clk.Now})
	mustAppend(t, l, segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), ProducerID: -1, Records: []segmenttest.Record{{Key: []byte("a"), Value: []byte("1")}}}.Encode())
	l.Roll()
	mustAppend(t, l, segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), ProducerID: -1, Records: []segmenttest.Record{{Key: []byte("a"), Value: []byte("2")}}}.Encode())
	l.Roll()
	if c := l.Cleanable(l.LogEndOffset()); !c.Due || c.DirtyRatio() != 1 {
		t.Fatalf("%+v", c)
	}
	cfg.MinCompactionLag = time.Minute
	l.SetConfig(cfg)
	if c := l.Cleanable(l.LogEndOffset()); c.Due || c.FirstUncleanable != 0 {
		t.Fatalf("within min.compaction.lag.ms: %+v", c)
	}
	clk.Advance(2 * time.Minute)
	if st, err := l.Clean(context.Background(), NewOffsetMap(1<<20), l.LogEndOffset()); err != nil || st.EndOffset != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	// Now the log is mostly clean: a little dirt is not worth a clean, unless it is old.
	for i := range 3 {
		mustAppend(t, l, segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), ProducerID: -1, Records: []segmenttest.Record{{Key: []byte(fmt.Sprint(i)), Value: bytes.Repeat([]byte("v"), 500)}}}.Encode())
	}
	l.Roll()
	mustAppend(t, l, segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), ProducerID: -1, Records: []segmenttest.Record{{Key: []byte("a"), Value: []byte("3")}}}.Encode())
	l.Roll()
	cfg.MinCompactionLag = 0
	cfg.MaxCompactionLag = time.Hour
	cfg.MinCleanableDirtyRatio = 0.99
	l.SetConfig(cfg)
	if c := l.Cleanable(l.LogEndOffset()); c.Due || c.LagExceeded {
		t.Fatalf("%+v", c)
	}
	clk.Advance(2 * time.Hour)
	if c := l.Cleanable(l.LogEndOffset()); !c.Due || !c.LagExceeded {
		t.Fatalf("after max.compaction.lag.ms: %+v", c)
	}
}

// TestRetentionOfCompactedLogs: compact alone deletes nothing by retention.*;
// compact,delete does.
func TestRetentionOfCompactedLogs(t *testing.T) {
	cfg := compactConfig()
	cfg.RetentionBytes = 4096
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	newWorkload(8, 30).appendBatches(t, l, 200)
	if n, err := l.ApplyRetention(); err != nil || n != 0 {
		t.Fatalf("compact: retention deleted %d: %v", n, err)
	}
	cfg.CleanupPolicy = CleanupCompact | CleanupDelete
	l.SetConfig(cfg)
	if n, err := l.ApplyRetention(); err != nil || n == 0 {
		t.Fatalf("compact,delete: retention deleted %d: %v", n, err)
	}
}

// TestCleanRemovesNullKeys: records without a key, written before the topic became
// compacted, are removed by the first clean.
func TestCleanRemovesNullKeys(t *testing.T) {
	cfg := compactConfig()
	cfg.CleanupPolicy = CleanupDelete
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(9, 30)
	w.nullKeys = true
	orig := w.appendBatches(t, l, 200)
	cfg.CleanupPolicy = CleanupCompact
	l.SetConfig(cfg)
	l.Roll()
	st, err := l.Clean(context.Background(), NewOffsetMap(1<<20), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, "null keys", l, orig, st.EndOffset, false)
}

// TestCleanNeverReadsAboveLimit: when the first dirty offset lies in a segment that
// reaches the limit (the high watermark), nothing of that segment is mapped: records
// that may still be truncated must not remove older ones.
func TestCleanNeverReadsAboveLimit(t *testing.T) {
	cfg := compactConfig()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(12, 300)
	orig := w.appendBatches(t, l, 300)
	l.Roll()
	st, err := l.Clean(context.Background(), NewOffsetMap(40*offsetMapSlotSize), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	end := st.EndOffset
	var holding SegmentInfo
	for _, s := range l.Segments() {
		if s.BaseOffset < end && end < s.NextOffset {
			holding = s
		}
	}
	if holding.NextOffset == 0 {
		t.Fatalf("the map's end %d is not inside a segment: %+v", end, l.Segments())
	}
	c := l.Cleanable(end + 1)
	if c.DirtyBytes != 0 || c.FirstUncleanable != holding.BaseOffset || c.FirstDirty != end {
		t.Fatalf("limit inside the segment holding the first dirty offset: %+v", c)
	}
	st, err = l.Clean(context.Background(), NewOffsetMap(1<<20), end+1)
	if err != nil || st.MapBytesRead != 0 || st.EndOffset != end {
		t.Fatalf("clean below a limit inside the first dirty segment read %d bytes, ended at %d: %v", st.MapBytesRead, st.EndOffset, err)
	}
	checkCompacted(t, "limited", l, orig, end, false)
}
