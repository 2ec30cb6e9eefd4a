package segment

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnModel is what a log's transactions should be, kept by the test independently of
// producer state: ongoing transactions and the aborted-transaction entries in marker order.
type txnModel struct {
	ongoing map[int64]int64 // producer → first offset
	seq     map[int64]int32
	entries []completedTxn
	// states remembers, by log end offset, the model as it was then (for power loss).
	states map[int64]txnState
}

type txnState struct {
	ongoing map[int64]int64
	seq     map[int64]int32
	entries []completedTxn
}

func newTxnModel() *txnModel {
	m := &txnModel{ongoing: map[int64]int64{}, seq: map[int64]int32{}, states: map[int64]txnState{}}
	m.states[0] = m.state()
	return m
}

func (m *txnModel) state() txnState {
	return txnState{ongoing: maps.Clone(m.ongoing), seq: maps.Clone(m.seq), entries: slices.Clone(m.entries)}
}

func (s txnState) firstUnstable(leo int64) int64 {
	if len(s.ongoing) == 0 {
		return leo
	}
	return slices.Min(slices.Collect(maps.Values(s.ongoing)))
}

// step appends one random thing to l: transactional data, a COMMIT or ABORT marker (for a
// producer with a transaction or without one), or plain data.
func (m *txnModel) step(t testing.TB, l *Log, r *rand.Rand) AppendResult {
	t.Helper()
	pid := int64(1 + r.IntN(3))
	first, ongoing := m.ongoing[pid]
	var res AppendResult
	var err error
	switch x := r.IntN(10); {
	case x < 5:
		n := 1 + r.IntN(3)
		res, err = l.AppendLeader(segmenttest.Transactional(pid, 0, m.seq[pid], values(n, "t")...), 0)
		if err == nil {
			m.seq[pid] += int32(n)
			if !ongoing {
				m.ongoing[pid] = res.FirstOffset
			}
		}
	case x < 9:
		commit := r.IntN(2) == 0
		res, err = l.AppendMarker(pid, 0, commit, 3, 0)
		if err == nil && ongoing {
			delete(m.ongoing, pid)
			if !commit {
				e := completedTxn{producerID: pid, firstOffset: first, lastOffset: res.LastOffset, lastStable: res.LastOffset + 1}
				if len(m.ongoing) > 0 {
					e.lastStable = slices.Min(slices.Collect(maps.Values(m.ongoing)))
				}
				m.entries = append(m.entries, e)
			}
		}
	default:
		res, err = l.AppendLeader(segmenttest.Plain(values(1+r.IntN(2), "p")...), 0)
	}
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	m.states[res.LastOffset+1] = m.state()
	return res
}

// txnEntriesOf returns the log's aborted-transaction entries in segment order, checking
// that each lies in the segment holding its marker.
func txnEntriesOf(t testing.TB, l *Log) []completedTxn {
	t.Helper()
	var out []completedTxn
	for _, s := range *l.segs.Load() {
		s.idxMu.RLock()
		for i := range s.txn.len() {
			e := s.txn.entry(i)
			if e.lastOffset < s.base || e.lastOffset >= s.next.Load() {
				t.Errorf("entry %+v in segment [%d, %d)", e, s.base, s.next.Load())
			}
			out = append(out, e)
		}
		s.idxMu.RUnlock()
	}
	return out
}

// checkTxns checks l's transactions against st: entries, first unstable offset, ongoing
// transactions and AbortedTransactions over ranges drawn from r.
func checkTxns(t testing.TB, what string, l *Log, st txnState, r *rand.Rand) {
	t.Helper()
	got := txnEntriesOf(t, l)
	if !slices.Equal(got, st.entries) {
		t.Fatalf("%s: entries\n%+v\nwant\n%+v", what, got, st.entries)
	}
	leo := l.LogEndOffset()
	if fu, want := l.FirstUnstableOffset(), st.firstUnstable(leo); fu != want {
		t.Fatalf("%s: FirstUnstableOffset %d, want %d", what, fu, want)
	}
	var ongoing []int64
	for _, o := range l.OngoingTransactions() {
		if st.ongoing[o.ProducerID] != o.FirstOffset || o.ProducerEpoch != 0 {
			t.Fatalf("%s: ongoing %+v, want %v", what, o, st.ongoing)
		}
		ongoing = append(ongoing, o.FirstOffset)
	}
	if len(ongoing) != len(st.ongoing) || !slices.IsSorted(ongoing) {
		t.Fatalf("%s: ongoing %v, want %v", what, ongoing, st.ongoing)
	}
	for range 50 {
		from := r.Int64N(leo + 1)
		to := from + r.Int64N(leo-from+2)
		var want []AbortedTxn
		for _, e := range st.entries {
			if from < to && e.lastOffset >= from && e.firstOffset < to {
				want = append(want, AbortedTxn{e.producerID, e.firstOffset})
			}
		}
		if got := l.AbortedTransactions(from, to); !slices.Equal(got, want) {
			t.Fatalf("%s: AbortedTransactions(%d, %d) = %v, want %v", what, from, to, got, want)
		}
	}
}

func txnConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1500
	cfg.IndexIntervalBytes = 200
	return cfg
}

// TestTransactions runs random interleaved transactions of three producers over many
// segments and checks, after every step and then on a follower fed the leader's bytes,
// after a clean restart, after an unclean one, without snapshots, and after truncations:
// the aborted-transaction entries, FirstUnstableOffset, OngoingTransactions and
// AbortedTransactions over random ranges.
func TestTransactions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	cfg := txnConfig()
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := newTxnModel()
	for i := range 300 {
		m.step(t, l, r)
		if i%10 == 0 {
			checkTxns(t, "leader", l, m.state(), r)
		}
	}
	if len(l.Segments()) < 5 || len(m.entries) < 10 {
		t.Fatalf("%d segments, %d aborted transactions: want more", len(l.Segments()), len(m.entries))
	}
	checkTxns(t, "leader", l, m.state(), r)

	// A follower fed the leader's bytes ends up with the same state.
	f := openTest(t, t.TempDir(), cfg, Options{})
	for off := int64(0); off < l.LogEndOffset(); {
		s, err := l.Read(off, 700, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.ReadAll()
		s.Release()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.AppendFollower(b); err != nil {
			t.Fatal(err)
		}
		off = f.LogEndOffset()
	}
	checkTxns(t, "follower", f, m.state(), r)

	// Restarts.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg, Options{})
	checkTxns(t, "clean restart", l, m.state(), r)
	for range 20 {
		m.step(t, l, r)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.abandon()
	l = openTest(t, dir, cfg, Options{})
	checkTxns(t, "unclean restart", l, m.state(), r)
	for range 20 {
		m.step(t, l, r)
	}
	l.Sync()
	l.abandon()
	for _, off := range l.listSnapshots() {
		os.Remove(fileName(dir, off, snapshotSuffix))
	}
	l = openTest(t, dir, cfg, Options{})
	checkTxns(t, "unclean restart without snapshots", l, m.state(), r)

	// Truncations, to offsets drawn among the steps, each then followed by new steps.
	for range 5 {
		leos := slices.Sorted(maps.Keys(m.states))
		to := leos[len(leos)/2+r.IntN(len(leos)/2)]
		if err := l.TruncateTo(to); err != nil {
			t.Fatal(err)
		}
		st := m.states[to]
		checkTxns(t, "truncated", l, st, r)
		for leo := range m.states {
			if leo > to {
				delete(m.states, leo)
			}
		}
		m.ongoing, m.seq, m.entries = maps.Clone(st.ongoing), maps.Clone(st.seq), slices.Clone(st.entries)
		for range 10 {
			m.step(t, l, r)
		}
		checkTxns(t, "after truncation", l, m.state(), r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg, Options{})
	checkTxns(t, "restart after truncations", l, m.state(), r)
}

func TestAppendMarker(t *testing.T) {
	clk := newClock()
	cfg := DefaultConfig()
	l := openTest(t, t.TempDir(), cfg, Options{Now: clk.Now})
	mustAppend(t, l, segmenttest.Transactional(7, 2, 0, "a", "b")) // 0-1
	mustAppend(t, l, segmenttest.Plain("p"))                       // 2
	mustAppend(t, l, segmenttest.Transactional(8, 0, 0, "c"))      // 3
	if fu := l.FirstUnstableOffset(); fu != 0 {
		t.Fatalf("FirstUnstableOffset %d", fu)
	}
	// In a transaction, a producer writes only transactional batches.
	if _, err := l.AppendLeader(segmenttest.Idempotent(7, 2, 2, "x"), 4); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("idempotent batch in a transaction: %v", err)
	}
	res, err := l.AppendMarker(7, 2, false, 5, 4) // 4: abort 7
	if err != nil || res.FirstOffset != 4 || res.LastOffset != 4 || res.LogAppendTime != -1 {
		t.Fatalf("AppendMarker: %+v %v", res, err)
	}
	if fu := l.FirstUnstableOffset(); fu != 3 {
		t.Fatalf("FirstUnstableOffset after the abort %d, want 3", fu)
	}
	if _, err := l.AppendMarker(8, 0, true, 5, 4); err != nil { // 5: commit 8
		t.Fatal(err)
	}
	if fu := l.FirstUnstableOffset(); fu != 6 {
		t.Fatalf("FirstUnstableOffset with nothing ongoing %d, want the log end 6", fu)
	}
	// A retried marker is written but ends nothing; an older epoch is fenced; a newer one
	// (the coordinator aborting on its own) is taken.
	if res, err := l.AppendMarker(7, 2, false, 5, 4); err != nil || res.FirstOffset != 6 {
		t.Fatalf("retried marker: %+v %v", res, err)
	}
	if _, err := l.AppendMarker(7, 1, false, 5, 4); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced marker: %v", err)
	}
	if _, err := l.AppendLeader(segmenttest.Transactional(7, 1, 0, "z"), 4); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced data: %v", err)
	}
	if _, err := l.AppendMarker(-1, 0, true, 5, 4); err == nil {
		t.Fatal("marker without a producer")
	}
	want := []completedTxn{{producerID: 7, firstOffset: 0, lastOffset: 4, lastStable: 3}}
	if got := txnEntriesOf(t, l); !slices.Equal(got, want) {
		t.Fatalf("entries %+v", got)
	}
	if got := l.AbortedTransactions(0, 7); !slices.Equal(got, []AbortedTxn{{7, 0}}) {
		t.Fatalf("AbortedTransactions %v", got)
	}

	// The markers are Kafka's control batches.
	s, err := l.Read(4, 1<<20, 7, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.ReadAll()
	s.Release()
	for i, commit := range []bool{false, true, false} {
		h, recs, err := DecodeRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		b = b[h.Size():]
		if !h.Control() || !h.Transactional() || h.BaseOffset != int64(4+i) || h.PartitionLeaderEpoch != 4 || h.BaseSequence != -1 || len(recs) != 1 ||
			recs[0].Timestamp != clk.Now().UnixMilli() {
			t.Fatalf("marker %d: %+v %+v", i, h, recs)
		}
		var key kmsg.ControlRecordKey
		var val kmsg.EndTxnMarker
		if key.ReadFrom(recs[0].Key) != nil || val.ReadFrom(recs[0].Value) != nil || key.Version != 0 || val.Version != 0 || val.CoordinatorEpoch != 5 ||
			(key.Type == kmsg.ControlRecordKeyTypeCommit) != commit {
			t.Fatalf("marker %d: key %+v value %+v", i, key, val)
		}
	}

	if got, want := l.Producers(), []ProducerInfo{
		{ProducerID: 7, ProducerEpoch: 2, LastSequence: 1, LastTimestamp: clk.Now().UnixMilli(), CoordinatorEpoch: 5, CurrentTxnStartOffset: -1},
		{ProducerID: 8, ProducerEpoch: 0, LastSequence: 0, LastTimestamp: clk.Now().UnixMilli(), CoordinatorEpoch: 5, CurrentTxnStartOffset: -1},
	}; !slices.Equal(got, want) {
		t.Fatalf("Producers %+v", got)
	}

	// A marker from an older coordinator is fenced, on the leader only; the coordinator
	// epoch survives restarts, through snapshots and replay.
	if _, err := l.AppendMarker(8, 0, true, 4, 4); !errors.Is(err, ErrCoordinatorFenced) {
		t.Fatalf("marker of an older coordinator: %v", err)
	}
	checkFenced := func(l *Log) {
		t.Helper()
		if _, err := l.AppendMarker(7, 2, true, 4, 4); !errors.Is(err, ErrCoordinatorFenced) {
			t.Fatalf("marker of an older coordinator: %v", err)
		}
	}
	checkFenced(l)
	f := openTest(t, t.TempDir(), cfg, Options{})
	for i, ce := range []int32{5, 4} {
		b, _ := encodeMarker(7, 2, true, ce, 0, false)
		setOffsetAndEpoch(b, int64(i), 0)
		if err := f.AppendFollower(b); err != nil {
			t.Fatalf("follower, marker of coordinator epoch %d: %v", ce, err)
		}
	}
	if ce := f.producers.m[7].coordinatorEpoch; ce != 4 {
		t.Fatalf("follower's coordinator epoch %d", ce)
	}

	// A segment with an aborted transaction gets a .txnindex when sealed; Kafka's bytes.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	seg := l.Segments()[0]
	if !seg.HasTxnIndex {
		t.Fatal("no .txnindex")
	}
	got, _ := os.ReadFile(seg.TxnIndexPath)
	wantBytes := []byte{0, 0, /* version */
		0, 0, 0, 0, 0, 0, 0, 7, /* pid */
		0, 0, 0, 0, 0, 0, 0, 0, /* first */
		0, 0, 0, 0, 0, 0, 0, 4, /* last */
		0, 0, 0, 0, 0, 0, 0, 3 /* lso */}
	if !bytes.Equal(got, wantBytes) {
		t.Fatalf(".txnindex %x", got)
	}

	dir := l.Dir()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg, Options{Now: clk.Now})
	checkFenced(l) // from the snapshot
	for _, off := range l.listSnapshots() {
		os.Remove(fileName(dir, off, snapshotSuffix))
	}
	l.abandon()
	l = openTest(t, dir, cfg, Options{Now: clk.Now})
	checkFenced(l) // from the replay of the markers
}

// testMarker is a marker as a leader wrote it at offset base.
func testMarker(t testing.TB, base, producerID int64, epoch int16, commit bool) []byte {
	t.Helper()
	b, err := encodeMarker(producerID, epoch, commit, 0, 1_700_000_000_000, false)
	if err != nil {
		t.Fatal(err)
	}
	setOffsetAndEpoch(b, base, 0)
	return b
}

func TestFollowerRefusesBadMarker(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	bad := segmenttest.Batch{ProducerID: 1, ProducerEpoch: 0, BaseSequence: -1, Transactional: true, Control: true,
		Records: []segmenttest.Record{{Key: []byte{0, 0, 0, 9}, Value: []byte{0, 0, 0, 0, 0, 0}}}}.Encode()
	if err := l.AppendFollower(bad); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("control record of type 9: %v", err)
	}
	if err := l.AppendFollower(testMarker(t, 0, 1, 0, false)); err != nil {
		t.Fatal(err)
	}
}

// TestTxnIndexRetention checks that retention, DeleteRecords and truncation delete the
// .txnindex files with their segments, and that the ongoing transaction's state stays.
func TestTxnIndexRetention(t *testing.T) {
	clk := newClock()
	cfg := txnConfig()
	dir := t.TempDir()
	l := openTest(t, dir, cfg, Options{Now: clk.Now})
	mustAppend(t, l, segmenttest.Transactional(9, 0, 0, "open")) // ongoing throughout
	for i := range 40 {
		mustAppend(t, l, segmenttest.Transactional(1, 0, int32(2*i), "x", "y"))
		if _, err := l.AppendMarker(1, 0, false, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	for _, s := range segs[:len(segs)-1] {
		if !s.HasTxnIndex || !fileExists(s.TxnIndexPath) {
			t.Fatalf("segment %d has no .txnindex", s.BaseOffset)
		}
	}
	if _, err := l.DeleteRecordsBefore(segs[2].BaseOffset); err != nil {
		t.Fatal(err)
	}
	for _, s := range segs[:2] {
		if fileExists(s.TxnIndexPath) {
			t.Fatalf("%s survived DeleteRecords", s.TxnIndexPath)
		}
	}
	if fu := l.FirstUnstableOffset(); fu != l.LogStartOffset() {
		t.Fatalf("FirstUnstableOffset %d below the log start %d", fu, l.LogStartOffset())
	}
	if o := l.OngoingTransactions(); len(o) != 1 || o[0].ProducerID != 9 || o[0].FirstOffset != 0 {
		t.Fatalf("ongoing %+v", o)
	}
	small := cfg
	small.RetentionBytes = 0
	if err := l.SetConfig(small); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if fileExists(s.TxnIndexPath) {
			t.Fatalf("%s survived retention", s.TxnIndexPath)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
	if len(left) != 0 {
		t.Fatalf("left %v", left)
	}
	if len(l.AbortedTransactions(0, l.LogEndOffset())) != 0 {
		t.Fatal("aborted transactions after retention")
	}

	// TruncateFullyAndStartAt drops them all, and producer state with them.
	mustAppend(t, l, segmenttest.Transactional(1, 0, 80, "x"))
	if _, err := l.AppendMarker(1, 0, false, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix)); len(left) != 1 {
		t.Fatalf("%v", left)
	}
	if err := l.TruncateFullyAndStartAt(l.LogEndOffset() + 5); err != nil {
		t.Fatal(err)
	}
	left, _ = filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
	if len(left) != 0 || len(l.OngoingTransactions()) != 0 || l.FirstUnstableOffset() != l.LogEndOffset() || len(l.AbortedTransactions(0, 1<<40)) != 0 {
		t.Fatalf("after TruncateFullyAndStartAt: %v %v %d", left, l.OngoingTransactions(), l.FirstUnstableOffset())
	}
}

// TestTxnIndexCorrupt replaces sealed segments' .txnindex with garbage: Open rebuilds them.
func TestTxnIndexCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	cfg := txnConfig()
	l := openTest(t, dir, cfg, Options{})
	m := newTxnModel()
	for range 150 {
		m.step(t, l, r)
	}
	l.Close()
	paths, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
	if len(paths) < 2 {
		t.Fatalf("%d .txnindex files", len(paths))
	}
	os.WriteFile(paths[0], []byte("garbage"), 0o644)
	b, _ := os.ReadFile(paths[1])
	b[len(b)-txnEntrySize+1] = 1 // version 1
	os.WriteFile(paths[1], b, 0o644)
	l = openTest(t, dir, cfg, Options{})
	checkTxns(t, "rebuilt", l, m.state(), r)
}

// TestTxnPowerLoss cuts the power at a random file operation (rolls included) of a run of
// transactions on the crash filesystem, keeping a random part of what was not synced:
// every marker WaitDurable acknowledged before the cut is there after recovery, with its
// index entry, and the first unstable offset is right for what was recovered.
func TestTxnPowerLoss(t *testing.T) {
	cfg := txnConfig()
	for round := range 48 {
		r := rand.New(rand.NewPCG(uint64(round), 5))
		fsys := vfs.NewMem()
		l, err := Open("/data/t-0", cfg, Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		m := newTxnModel()
		acked, ackedAtCrash := int64(0), int64(-1)
		// A run is about 290 file operations.
		crashed := fsys.CrashAfter(1+r.Int64N(280), rand.New(rand.NewPCG(uint64(round), 6)), func() { ackedAtCrash = acked })
		for range 120 {
			res := m.step(t, l, r)
			if r.IntN(3) == 0 {
				if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
					t.Fatal(err)
				}
				acked = res.LastOffset + 1
			}
		}
		var after *vfs.MemFS
		select {
		case after = <-crashed:
		default:
			after, ackedAtCrash = fsys.CrashClone(), acked
		}
		l.abandon()
		l, err = Open("/data/t-0", cfg, Options{FS: after})
		if err != nil {
			t.Fatalf("round %d: recovery: %v", round, err)
		}
		leo := l.LogEndOffset()
		st, ok := m.states[leo]
		if leo < ackedAtCrash || !ok {
			t.Fatalf("round %d: recovered to %d, acknowledged %d", round, leo, ackedAtCrash)
		}
		checkTxns(t, "recovered", l, st, r)
		l.Close()
	}
}

// txnCompactedLog appends to l (compacted) keyed transactional batches, every other
// transaction aborted, over several segments; it returns the aborted-transaction entries.
func txnCompactedLog(t *testing.T, l *Log) []completedTxn {
	var want []completedTxn
	first := int64(-1)
	for i := range 60 {
		keyed := segmenttest.Batch{ProducerID: 1, ProducerEpoch: 0, BaseSequence: int32(i), Transactional: true,
			Records: []segmenttest.Record{{Key: []byte{byte('a' + i%3)}, Value: []byte("v")}}}.Encode()
		res := mustAppend(t, l, keyed)
		if first < 0 {
			first = res.FirstOffset
		}
		if i%3 == 0 {
			continue // the transaction goes on
		}
		commit := i%3 == 1
		mres, err := l.AppendMarker(1, 0, commit, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !commit {
			want = append(want, completedTxn{producerID: 1, firstOffset: first, lastOffset: mres.FirstOffset, lastStable: mres.FirstOffset + 1})
		}
		first = -1
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	big := l.config()
	big.SegmentBytes = 1 << 20 // so that a clean merges segments
	if err := l.SetConfig(*big); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestCleanKeepsTxnIndex compacts a log holding aborted transactions: the cleaned segments
// carry the entries of those they replace, through a restart too.
func TestCleanKeepsTxnIndex(t *testing.T) {
	cfg := txnConfig()
	cfg.CleanupPolicy = CleanupCompact
	dir := t.TempDir()
	l := openTest(t, dir, cfg, Options{})
	want := txnCompactedLog(t, l)
	before := len(l.Segments())
	st, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if st.SegmentsAfter >= st.SegmentsBefore || len(l.Segments()) >= before {
		t.Fatalf("clean merged nothing: %+v", st)
	}
	if got := txnEntriesOf(t, l); !slices.Equal(got, want) {
		t.Fatalf("entries after clean\n%+v\nwant\n%+v", got, want)
	}
	l.Close()
	l = openTest(t, dir, cfg, Options{})
	if got := txnEntriesOf(t, l); !slices.Equal(got, want) {
		t.Fatalf("entries after restart\n%+v\nwant\n%+v", got, want)
	}
}

// TestCleanTxnIndexPowerLoss cuts the power at every file operation of a clean of a log
// with aborted transactions (strict and torn: renames not yet synced may be kept in
// order): recovery keeps every entry, whether the swap completes or rolls back.
func TestCleanTxnIndexPowerLoss(t *testing.T) {
	cfg := txnConfig()
	cfg.CleanupPolicy = CleanupCompact
	base := vfs.NewMem()
	l, err := Open("/data/t-0", cfg, Options{FS: base})
	if err != nil {
		t.Fatal(err)
	}
	want := txnCompactedLog(t, l)
	big := *l.config()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for n := int64(1); ; n++ {
		fired := false
		for _, torn := range []bool{false, true} {
			fsys := base.CrashClone()
			l, err := Open("/data/t-0", big, Options{FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			var r *rand.Rand
			if torn {
				r = rand.New(rand.NewPCG(uint64(n), 9))
			}
			crashed := fsys.CrashAfter(n, r, nil)
			if _, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); err != nil {
				t.Fatal(err)
			}
			l.abandon()
			var after *vfs.MemFS
			select {
			case after = <-crashed:
				fired = true
			default:
				continue
			}
			l, err = Open("/data/t-0", big, Options{FS: after})
			if err != nil {
				t.Fatalf("crash at step %d (torn %v): recovery: %v", n, torn, err)
			}
			if got := txnEntriesOf(t, l); !slices.Equal(got, want) {
				t.Fatalf("crash at step %d (torn %v): entries\n%+v\nwant\n%+v", n, torn, got, want)
			}
			l.Close()
		}
		if !fired {
			if n < 10 {
				t.Fatalf("a clean of %d steps", n)
			}
			return
		}
	}
}

// TestAbortedTransactionsAllocs: AbortedTransactions allocates its result and nothing else.
func TestAbortedTransactionsAllocs(t *testing.T) {
	l := openTest(t, t.TempDir(), txnConfig(), Options{})
	for i := range 30 {
		mustAppend(t, l, segmenttest.Transactional(int64(i%2), 0, int32(i/2), "x"))
		if _, err := l.AppendMarker(int64(i%2), 0, i%3 == 0, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	leo := l.LogEndOffset()
	if n := len(l.AbortedTransactions(0, leo)); n != 20 {
		t.Fatalf("%d aborted transactions", n)
	}
	if a := testing.AllocsPerRun(50, func() { l.AbortedTransactions(0, leo) }); a != 1 {
		t.Fatalf("%v allocations for a result", a)
	}
	if a := testing.AllocsPerRun(50, func() { l.AbortedTransactions(leo, leo+10) }); a != 0 {
		t.Fatalf("%v allocations for nothing", a)
	}
}

// TestFirstUnstableOffsetConcurrent reads FirstUnstableOffset while transactions are
// appended and committed: it must never pass the first offset of a transaction whose
// marker was not yet written, which would let read_committed consumers read it.
func TestFirstUnstableOffsetConcurrent(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	type txn struct{ first, marker int64 }
	var txns []txn
	done := make(chan struct{})
	type obs struct{ fu, leoAfter int64 }
	var seen []obs
	go func() {
		defer close(done)
		for i := range 300 {
			mustAppend(t, l, segmenttest.Plain("p"))
			r := mustAppend(t, l, segmenttest.Transactional(1, 0, int32(i), "t"))
			m, err := l.AppendMarker(1, 0, i%2 == 0, 0, 0)
			if err != nil {
				t.Error(err)
				return
			}
			txns = append(txns, txn{r.FirstOffset, m.FirstOffset})
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		o := obs{l.FirstUnstableOffset(), l.LogEndOffset()}
		if len(seen) == 0 || seen[len(seen)-1] != o {
			seen = append(seen, o)
		}
	}
	for _, o := range seen {
		for _, x := range txns {
			if x.first < o.fu && x.marker >= o.leoAfter {
				t.Fatalf("first unstable offset %d read before the marker at %d of the transaction at %d", o.fu, x.marker, x.first)
			}
		}
	}
}
