package segment

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
)

// readCommitted reads the log from its start up to its first unstable offset (the last
// stable offset, the high watermark being the log end) as a read_committed consumer does
// (Kafka's fetcher): it asks AbortedTransactions for the range, from an aborted
// transaction's first offset on drops its producer's transactional batches until it meets
// that producer's ABORT marker, and skips control batches. It checks offsets increase.
func readCommitted(t testing.TB, l *Log) []Record {
	t.Helper()
	upper := l.FirstUnstableOffset()
	aborted := l.AbortedTransactions(l.LogStartOffset(), upper)
	slices.SortStableFunc(aborted, func(a, b AbortedTxn) int { return int(a.FirstOffset - b.FirstOffset) })
	abortedPIDs := map[int64]bool{}
	var out []Record
	prev := int64(-1)
	eachBatch(t, l, upper, func(h *BatchHeader, b []byte) {
		_, recs, err := DecodeRecords(b)
		if err != nil {
			t.Fatalf("batch at %d: %v", h.BaseOffset, err)
		}
		if h.BaseOffset <= prev {
			t.Fatalf("batch at %d after %d", h.BaseOffset, prev)
		}
		prev = h.LastOffset()
		for len(aborted) > 0 && aborted[0].FirstOffset <= h.LastOffset() {
			abortedPIDs[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		switch {
		case h.Control():
			mk, err := parseMarker(h, b)
			if err != nil {
				t.Fatalf("marker at %d: %v", h.BaseOffset, err)
			}
			if mk.kind == markerAbort {
				delete(abortedPIDs, h.ProducerID)
			}
		case h.Transactional() && abortedPIDs[h.ProducerID]:
		default:
			out = append(out, recs...)
		}
	})
	return out
}

// producerView is what of a producer's state must survive a clean, also when recovery
// replays the cleaned log from its start: its epoch, last sequence and offset, and the
// first offset of its open transaction.
type producerView struct {
	epoch    int16
	lastSeq  int32
	lastOff  int64
	txnFirst int64
}

func producersOf(l *Log) map[int64]producerView {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int64]producerView{}
	for id, e := range l.producers.m {
		v := producerView{epoch: e.epoch, lastSeq: -1, lastOff: -1, txnFirst: e.txnFirstOffset}
		if e.n > 0 {
			v.lastSeq, v.lastOff = e.batches[e.n-1].lastSeq, e.batches[e.n-1].lastOffset
		}
		out[id] = v
	}
	return out
}

// checkTxnLog checks what the cleaner must keep of transactions: every aborted-transaction
// index entry has its marker in the log (an entry never outlives it), and every
// transactional data batch is followed by a marker of its producer unless its transaction
// is still open (a marker stays while its transaction has a batch).
func checkTxnLog(t testing.TB, what string, l *Log) {
	t.Helper()
	markers := map[int64]bool{}
	pending := map[int64]int64{} // producer → first transactional batch not yet ended
	eachBatch(t, l, l.LogEndOffset(), func(h *BatchHeader, _ []byte) {
		switch {
		case h.Control():
			markers[h.BaseOffset] = true
			delete(pending, h.ProducerID)
		case h.Transactional():
			if _, ok := pending[h.ProducerID]; !ok {
				pending[h.ProducerID] = h.BaseOffset
			}
		}
	})
	for _, e := range txnEntriesOf(t, l) {
		if !markers[e.lastOffset] {
			t.Fatalf("%s: entry %+v without its marker", what, e)
		}
	}
	ongoing := map[int64]int64{}
	for _, o := range l.OngoingTransactions() {
		ongoing[o.ProducerID] = o.FirstOffset
	}
	for pid, first := range pending {
		if f, ok := ongoing[pid]; !ok || f > first {
			t.Fatalf("%s: transactional batch of producer %d at %d has lost its marker (ongoing %v)", what, pid, first, ongoing)
		}
	}
}

// txnKeyed encodes a transactional batch of producer pid setting keys to values
// ("key=value", a value "-" for a tombstone).
func txnKeyed(pid int64, epoch int16, seq int32, ts int64, kvs ...string) []byte {
	recs := make([]segmenttest.Record, len(kvs))
	for i, kv := range kvs {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		recs[i] = segmenttest.Record{Key: k, Value: v}
		if string(v) == "-" {
			recs[i].Value = nil
		}
	}
	b := segmenttest.Batch{FirstTimestamp: ts, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: pid >= 0, Records: recs}
	if pid < 0 {
		b.ProducerEpoch, b.BaseSequence = -1, -1
	}
	return b.Encode()
}

// keyValues is the log's data records as "key=value" in offset order.
func keyValues(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Key)+"="+string(r.Value))
	}
	return out
}

// eachBatch calls fn with every batch of the log from its start below upper, in order.
func eachBatch(t testing.TB, l *Log, upper int64, fn func(h *BatchHeader, b []byte)) {
	t.Helper()
	for next := l.LogStartOffset(); next < upper; {
		s, err := l.Read(next, 64<<10, upper, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", next, err)
		}
		b, err := s.ReadAll()
		s.Release()
		if err != nil || len(b) == 0 {
			t.Fatalf("Read(%d) below %d: %d bytes, %v", next, upper, len(b), err)
		}
		for len(b) > 0 {
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatalf("batch at %d: %v", next, err)
			}
			fn(&h, b[:h.Size()])
			next = h.NextOffset()
			b = b[h.Size():]
		}
	}
}

// controlOffsets lists the offsets of the log's control batches.
func controlOffsets(t testing.TB, l *Log) []int64 {
	t.Helper()
	var out []int64
	eachBatch(t, l, l.LogEndOffset(), func(h *BatchHeader, _ []byte) {
		if h.Control() {
			out = append(out, h.BaseOffset)
		}
	})
	return out
}

// reopenReplaying abandons l and opens it again without its producer snapshots: recovery
// replays the whole log.
func reopenReplaying(t testing.TB, l *Log, cfg Config, opts Options) *Log {
	t.Helper()
	l.abandon()
	for _, snap := range l.listSnapshots() {
		opts.FS.Remove(fileName(l.dir, snap, snapshotSuffix))
	}
	return openTest(t, l.dir, cfg, opts)
}

// TestCleanTxnAborted: a clean removes the records of aborted transactions (an aborted
// value never hides the older committed one of its key), compacts committed ones like any,
// keeps markers while their transaction has a batch in the log, then drops them, with
// their index entries, a delete.retention.ms after the clean that found their data gone
// and not before; producer state survives a replay of the cleaned log from its start.
func TestCleanTxnAborted(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetention = time.Hour
	clk := newClock()
	dir, mem := "/c/t-0", vfs.NewMem()
	l := openTest(t, dir, cfg, Options{FS: mem, Now: clk.Now})
	ts := clk.Now().UnixMilli()
	marker := func(pid int64, commit bool) int64 {
		t.Helper()
		r, err := l.AppendMarker(pid, 0, commit, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return r.FirstOffset
	}
	mustAppend(t, l, txnKeyed(1, 0, 0, ts, "a=c1", "b=c1")) // 0-1
	commit := marker(1, true)                               // 2
	mustAppend(t, l, txnKeyed(1, 0, 2, ts, "a=x1", "c=x1")) // 3-4
	mustAppend(t, l, txnKeyed(-1, 0, 0, ts, "d=1"))         // 5
	mustAppend(t, l, txnKeyed(1, 0, 4, ts, "b=x2"))         // 6: same transaction
	abort := marker(1, false)                               // 7
	mustAppend(t, l, txnKeyed(-1, 0, 0, ts, "e=1"))         // 8
	clean := func(what string, more ...string) CleanStats {
		t.Helper()
		if len(more) > 0 {
			mustAppend(t, l, txnKeyed(-1, 0, 0, ts, more...))
		}
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
		st, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkTxnLog(t, what, l)
		return st
	}
	clean("first clean")
	want := []string{"a=c1", "b=c1", "d=1", "e=1"}
	if got := keyValues(logRecords(t, l)); !slices.Equal(got, want) {
		t.Fatalf("after the clean: %q, want %q", got, want)
	}
	if got := keyValues(readCommitted(t, l)); !slices.Equal(got, want) {
		t.Fatalf("read_committed after the clean: %q, want %q", got, want)
	}
	// The aborted transaction's last batch stays, empty: producer 1's last sequence.
	// So its marker stays, with its entry; so does the commit's, its data being there.
	if got := controlOffsets(t, l); !slices.Equal(got, []int64{commit, abort}) {
		t.Fatalf("markers %v, want %v", got, []int64{commit, abort})
	}
	if n := len(txnEntriesOf(t, l)); n != 1 {
		t.Fatalf("%d entries", n)
	}

	// The committed data superseded: its marker gets a horizon, and goes after it.
	clean("second clean", "a=2", "b=2")
	if got := controlOffsets(t, l); !slices.Equal(got, []int64{commit, abort}) {
		t.Fatalf("markers %v right after their data went", got)
	}
	clk.Advance(59 * time.Minute)
	clean("before the horizon", "f=1")
	if got := controlOffsets(t, l); !slices.Equal(got, []int64{commit, abort}) {
		t.Fatalf("markers %v before the horizon", got)
	}
	clk.Advance(2 * time.Minute)
	if c := l.Cleanable(l.LogEndOffset()); !c.HorizonPassed || !c.Due {
		t.Fatalf("not due after the marker's horizon: %+v", c)
	}
	clean("after the horizon")
	if got := controlOffsets(t, l); !slices.Equal(got, []int64{abort}) {
		t.Fatalf("markers %v after the horizon, want %v", got, []int64{abort})
	}

	// Producer 1 goes on: its aborted batch is no longer its last, goes, and so, a
	// horizon later, does the ABORT marker with its entry.
	mustAppend(t, l, txnKeyed(1, 0, 5, ts, "g=1"))
	marker(1, true)
	clean("producer goes on")
	if got := controlOffsets(t, l); !slices.Contains(got, abort) || len(txnEntriesOf(t, l)) != 1 {
		t.Fatalf("markers %v entries %v: the ABORT went before its horizon", got, txnEntriesOf(t, l))
	}
	clk.Advance(61 * time.Minute)
	clean("abort's horizon passed")
	if got := controlOffsets(t, l); slices.Contains(got, abort) || len(txnEntriesOf(t, l)) != 0 {
		t.Fatalf("markers %v entries %v after the ABORT's horizon", got, txnEntriesOf(t, l))
	}
	want = []string{"d=1", "e=1", "a=2", "b=2", "f=1", "g=1"}
	if got := keyValues(readCommitted(t, l)); !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}

	// Recovery replaying the cleaned log from its start rebuilds the same producer state.
	before, fuo := producersOf(l), l.FirstUnstableOffset()
	l = reopenReplaying(t, l, cfg, Options{FS: mem, Now: clk.Now})
	if got := producersOf(l); !maps.Equal(got, before) || l.FirstUnstableOffset() != fuo {
		t.Fatalf("replayed producers %v fuo %d, want %v %d", got, l.FirstUnstableOffset(), before, fuo)
	}
	if _, err := l.AppendLeader(txnKeyed(1, 0, 6, ts, "h=1"), 0); err != nil {
		t.Fatalf("producer 1 after the replay: %v", err)
	}
}

// TestCleanTxnOpen: records of a transaction still open are never cleaned, whatever limit
// the caller passes, nor do they remove older records; once it commits they compact.
func TestCleanTxnOpen(t *testing.T) {
	cfg := compactConfig()
	l := openTest(t, "/c/t-0", cfg, Options{FS: vfs.NewMem()})
	w := newWorkload(21, 10)
	orig := w.appendBatches(t, l, 60)
	r := mustAppend(t, l, txnKeyed(7, 0, 0, w.ts, "key-0001=open", "key-0002=-"))
	open := &txnFate{open: true}
	for i, kv := range []string{"key-0001", "key-0002"} {
		o := origRec{off: r.FirstOffset + int64(i), ts: w.ts, key: []byte(kv), value: []byte("open"), txn: open}
		if i == 1 {
			o.value = nil
		}
		orig = append(orig, o)
	}
	orig = append(orig, w.appendBatches(t, l, 100)...)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	fuo := l.FirstUnstableOffset()
	if fuo != r.FirstOffset {
		t.Fatalf("first unstable offset %d, want %d", fuo, r.FirstOffset)
	}
	if c := l.Cleanable(l.LogEndOffset()); c.FirstUncleanable > fuo {
		t.Fatalf("cleanable up to %d past the open transaction at %d", c.FirstUncleanable, fuo)
	}
	var tailBefore []Record
	for _, rec := range logRecords(t, l) {
		if rec.Offset >= fuo {
			tailBefore = append(tailBefore, rec)
		}
	}
	st, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if st.EndOffset > fuo {
		t.Fatalf("cleaned to %d past the open transaction at %d", st.EndOffset, fuo)
	}
	checkCompacted(t, "open transaction", l, orig, st.EndOffset, false)
	var tailAfter []Record
	for _, rec := range logRecords(t, l) {
		if rec.Offset >= fuo {
			tailAfter = append(tailAfter, rec)
		}
	}
	if len(tailAfter) != len(tailBefore) {
		t.Fatalf("%d records from the open transaction on, had %d", len(tailAfter), len(tailBefore))
	}
	if _, err := l.AppendMarker(7, 0, true, 0, 0); err != nil {
		t.Fatal(err)
	}
	open.open = false
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if st, err = l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); err != nil || st.EndOffset != l.LogEndOffset() {
		t.Fatalf("clean after the commit: %+v %v", st, err)
	}
	checkCompacted(t, "committed", l, orig, st.EndOffset, false)
	checkView(t, "committed, read_committed", readCommitted(t, l), orig, st.EndOffset, false, l.FirstUnstableOffset())
	checkTxnLog(t, "committed", l)
}

// TestCleanTxnEpochMarker: the marker by which the coordinator aborted a transaction and
// bumped the producer's epoch carries that epoch while the producer has no data in it: it
// stays past its horizon, and a replay of the cleaned log still fences the old epoch.
func TestCleanTxnEpochMarker(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetention = time.Minute
	clk := newClock()
	dir, mem := "/c/t-0", vfs.NewMem()
	l := openTest(t, dir, cfg, Options{FS: mem, Now: clk.Now})
	ts := clk.Now().UnixMilli()
	mustAppend(t, l, txnKeyed(3, 0, 0, ts, "a=x"))
	r, err := l.AppendMarker(3, 1, false, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustAppend(t, l, txnKeyed(-1, 0, 0, ts, "b="+string(rune('0'+i))))
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
	}
	if got := controlOffsets(t, l); !slices.Equal(got, []int64{r.FirstOffset}) {
		t.Fatalf("markers %v, want the epoch's %d", got, r.FirstOffset)
	}
	if got := keyValues(logRecords(t, l)); !slices.Equal(got, []string{"b=2"}) {
		t.Fatalf("records %q", got)
	}
	l = reopenReplaying(t, l, cfg, Options{FS: mem, Now: clk.Now})
	if _, err := l.AppendLeader(txnKeyed(3, 0, 1, ts, "a=zombie"), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("the fenced epoch after a replay of the cleaned log: %v", err)
	}
}

// FuzzCompactTxns runs a program of appends (plain, idempotent and transactional batches
// over a few keys with tombstones), COMMIT and ABORT markers (retried ones, and aborts that
// bump the producer's epoch as a coordinator's timeout does), rolls, cleans with offset maps of
// random small sizes, clock jumps past delete.retention.ms and restarts (clean, unclean,
// and without producer snapshots, so that recovery replays the cleaned log from its start),
// with an oracle: every record appended and what became of its transaction.
//
// Invariants: nothing fails; after every clean the log holds below its end exactly the
// last committed record of each key (a tombstone only after a horizon passed may be gone;
// no aborted record), from its end on every committed or open record; a read_committed
// reading (AbortedTransactions, control batches skipped) up to the first unstable offset
// yields the same committed records; offsets strictly increase; every index entry has its
// marker, and every transactional batch a marker after it unless its transaction is open;
// the clean changes neither producer state nor the first unstable offset, and a restart
// (even replaying from the log start) rebuilds both as they were.
func FuzzCompactTxns(f *testing.F) {
	f.Add([]byte{1, 1, 0, 0x11, 0x12, 3, 1, 5, 0, 4, 5, 9, 6, 5, 3})
	f.Add([]byte{0, 2, 0, 1, 2, 1, 1, 0, 3, 3, 4, 5, 20, 7, 2, 2, 0, 3, 3, 5, 7, 6, 4, 5, 8, 7, 1})
	f.Add(bytes.Repeat([]byte{1, 3, 1, 0x81, 0x02, 3, 6, 2, 2, 2, 0x43, 3, 5, 4, 5, 30, 6}, 8))
	f.Add(bytes.Repeat([]byte{2, 0, 2, 0x15, 0x24, 3, 2, 4, 5, 9, 7, 2}, 10))
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 2048 {
			return
		}
		cfg := compactConfig()
		cfg.SegmentBytes = 600
		cfg.IndexIntervalBytes = 64
		cfg.DeleteRetention = time.Hour
		clk := newClock()
		fsys := vfs.NewMem()
		dir := "/f/t-0"
		opts := Options{FS: fsys, Now: clk.Now}
		l, err := Open(dir, cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { l.Close() }()
		var orig []origRec
		seqs := map[int64]int32{}
		epochs := map[int64]int16{}
		open := map[int64]*txnFate{}
		horizonPassed := false
		next := func(i *int) byte {
			if *i >= len(prog) {
				return 0
			}
			*i++
			return prog[*i-1]
		}
		check := func(what string, end int64) {
			t.Helper()
			checkCompacted(t, what, l, orig, end, horizonPassed)
			checkView(t, what+", read_committed", readCommitted(t, l), orig, end, horizonPassed, l.FirstUnstableOffset())
			checkTxnLog(t, what, l)
		}
		clean := func(what string, m *OffsetMap) CleanStats {
			t.Helper()
			before, fuo := producersOf(l), l.FirstUnstableOffset()
			st, err := l.Clean(context.Background(), m, l.LogEndOffset())
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got := producersOf(l); !maps.Equal(got, before) || l.FirstUnstableOffset() != fuo {
				t.Fatalf("%s changed producer state", what)
			}
			check(what, st.EndOffset)
			return st
		}
		for i := 0; i < len(prog); {
			switch op := next(&i) % 8; op {
			case 0, 1, 2: // a batch: plain, idempotent (producer 3) or transactional (1, 2)
				n := 1 + int(next(&i)%4)
				codec := int8(next(&i) % 5)
				if codec > 1 {
					codec = 0 // codecs are FuzzClean's business; gzip keeps one in play
				}
				pid := int64(-1) // plain; 1, 2 transactional; 3 idempotent
				if op > 0 {
					pid = 1 + int64(next(&i)%3)
				}
				recs, out := fuzzRecords(n, func() byte { return next(&i) }, len(orig), clk.Now().UnixMilli())
				b := segmenttest.Batch{FirstTimestamp: clk.Now().UnixMilli(), Compression: codec, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}
				if pid > 0 {
					b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, epochs[pid], seqs[pid]
					b.Transactional = pid < 3
				}
				res, err := l.AppendLeader(b.Encode(), 0)
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if pid > 0 {
					seqs[pid] += int32(n)
				}
				if b.Transactional && open[pid] == nil {
					open[pid] = &txnFate{open: true}
				}
				for j := range out {
					out[j].off = res.FirstOffset + int64(j)
					if b.Transactional {
						out[j].txn = open[pid]
					}
				}
				orig = append(orig, out...)
				clk.Advance(time.Millisecond)
			case 3: // a marker, maybe retried (no transaction), maybe bumping the epoch
				c := next(&i)
				pid := int64(1 + c%2)
				commit := c&2 != 0
				epoch := epochs[pid]
				if !commit && c&4 != 0 {
					epoch++ // the coordinator aborts on a timeout
				}
				if _, err := l.AppendMarker(pid, epoch, commit, 0, 0); err != nil {
					t.Fatalf("marker: %v", err)
				}
				if epoch != epochs[pid] {
					epochs[pid], seqs[pid] = epoch, 0
				}
				if f := open[pid]; f != nil {
					f.open, f.aborted = false, !commit
					delete(open, pid)
				}
				clk.Advance(time.Millisecond)
			case 4:
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			case 5:
				clean("after a clean", NewOffsetMap(int64(2+next(&i)%24)*offsetMapSlotSize))
			case 6:
				clk.Advance(cfg.DeleteRetention + time.Second)
				horizonPassed = true
			case 7:
				before, fuo := producersOf(l), l.FirstUnstableOffset()
				c := next(&i)
				if c%3 == 0 {
					err = l.Close()
				} else {
					l.abandon()
				}
				if err != nil {
					t.Fatal(err)
				}
				if c%3 == 2 { // recovery replays the whole (cleaned) log
					for _, snap := range l.listSnapshots() {
						fsys.Remove(fileName(dir, snap, snapshotSuffix))
					}
				}
				if l, err = Open(dir, cfg, opts); err != nil {
					t.Fatalf("reopen: %v", err)
				}
				if got := producersOf(l); !maps.Equal(got, before) || l.FirstUnstableOffset() != fuo {
					t.Fatalf("reopen (%d): producers %v fuo %d, had %v %d", c%3, got, l.FirstUnstableOffset(), before, fuo)
				}
			}
		}
		for _, pid := range slices.Sorted(maps.Keys(open)) {
			if _, err := l.AppendMarker(pid, epochs[pid], pid == 1, 0, 0); err != nil {
				t.Fatal(err)
			}
			open[pid].open, open[pid].aborted = false, pid != 1
		}
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
		m := NewOffsetMap(1 << 12)
		for end := int64(-1); end < l.LogEndOffset(); {
			st := clean("final", m)
			if st.EndOffset <= end {
				t.Fatalf("no progress: clean ended at %d, then %d", end, st.EndOffset)
			}
			end = st.EndOffset
		}
		check("final", l.LogEndOffset())
		if l.FirstUnstableOffset() != l.LogEndOffset() {
			t.Fatalf("first unstable offset %d with every transaction ended, log end %d", l.FirstUnstableOffset(), l.LogEndOffset())
		}
	})
}
