package tier_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
)

// txnSeg is a remote segment of offsets [100, 199] whose txnindex holds txnEntries.
var (
	txnSeg = tier.RemoteSegment{V: 1, TopicID: testTopicID, UploadID: "txn", BaseOffset: 100, EndOffset: 199,
		LeaderEpoch: 1, Size: 1, Compression: tier.CompressionNone, TxnIndex: true, State: tier.CopyFinished}
	txnEntries = []tier.TxnIndexEntry{
		{ProducerID: 7, FirstOffset: 90, LastOffset: 110, LastStable: 105}, // began in the segment before; 105 still open
		{ProducerID: 8, FirstOffset: 105, LastOffset: 120, LastStable: 121},
		{ProducerID: 9, FirstOffset: 150, LastOffset: 160, LastStable: 161},
	}
)

func TestParseTxnIndex(t *testing.T) {
	b := tier.EncodeTxnIndex(txnEntries)
	if len(b) != 3*34 {
		t.Fatalf("%d bytes for 3 entries", len(b))
	}
	got, err := tier.ParseTxnIndex(b, txnSeg)
	if err != nil || !slices.Equal(got, txnEntries) {
		t.Fatalf("ParseTxnIndex = %+v, %v", got, err)
	}
	if got, err := tier.ParseTxnIndex(nil, txnSeg); err != nil || len(got) != 0 {
		t.Fatalf("empty: %+v, %v", got, err)
	}
	bad := func(mod func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry) []byte {
		return tier.EncodeTxnIndex(mod(slices.Clone(txnEntries)))
	}
	for name, b := range map[string][]byte{
		"partial":        b[:len(b)-1],
		"version":        append([]byte{0, 1}, b[2:]...),
		"producer id":    bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[0].ProducerID = -1; return e }),
		"first > last":   bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[1].FirstOffset = 121; return e }),
		"negative first": bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[0].FirstOffset = -5; return e }),
		"order":          bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[1], e[2] = e[2], e[1]; return e }),
		"repeat":         bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { return append(e, e[2]) }),
		"before segment": bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[0].LastOffset = 99; return e }),
		"after segment":  bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[2].LastOffset = 200; return e }),
		"last stable":    bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[2].LastStable = 162; return e }),
		"negative lso":   bad(func(e []tier.TxnIndexEntry) []tier.TxnIndexEntry { e[0].LastStable = -1; return e }),
	} {
		if _, err := tier.ParseTxnIndex(b, txnSeg); !errors.Is(err, tier.ErrCorruptTxnIndex) {
			t.Errorf("%s: %v, want ErrCorruptTxnIndex", name, err)
		}
	}
}

// FuzzParseTxnIndex: never panics; an accepted object re-encodes to the same bytes, and
// its entries keep the invariants the reader relies on (markers inside the segment, in
// increasing order, first offset at or below the marker).
func FuzzParseTxnIndex(f *testing.F) {
	f.Add(tier.EncodeTxnIndex(txnEntries), int64(100), int64(199))
	f.Add([]byte{}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, base, end int64) {
		seg := tier.RemoteSegment{BaseOffset: base, EndOffset: end}
		got, err := tier.ParseTxnIndex(b, seg)
		if err != nil {
			return
		}
		if !bytes.Equal(tier.EncodeTxnIndex(got), b) {
			t.Fatalf("re-encoding differs")
		}
		prev := base - 1
		for _, e := range got {
			if e.LastOffset <= prev || e.LastOffset > end || e.FirstOffset > e.LastOffset || e.FirstOffset < 0 {
				t.Fatalf("accepted %+v in [%d, %d]", e, base, end)
			}
			prev = e.LastOffset
		}
	})
}

func TestCollectAborted(t *testing.T) {
	a := func(pid, first int64) segment.AbortedTxn {
		return segment.AbortedTxn{ProducerID: pid, FirstOffset: first}
	}
	for _, c := range []struct {
		from, upper int64
		want        []segment.AbortedTxn
		complete    bool
	}{
		{0, 90, nil, true}, // 7 starts at 90, not below; its LSO 105 ends the search
		{100, 106, []segment.AbortedTxn{a(7, 90), a(8, 105)}, true}, // 8 began at 105 < 106; its LSO 121 completes
		{100, 105, []segment.AbortedTxn{a(7, 90)}, true},            // 7's LSO 105 completes
		{111, 150, []segment.AbortedTxn{a(8, 105)}, true},           // 7 ended before 111
		{121, 150, nil, true},                                       // 9's LSO 161 completes, 9 starts at 150
		{121, 151, []segment.AbortedTxn{a(9, 150)}, true},
		{161, 170, nil, false}, // nothing after: the search goes on into later segments
	} {
		got, complete := tier.CollectAborted(nil, txnEntries, c.from, c.upper)
		if !slices.Equal(got, c.want) || complete != c.complete {
			t.Errorf("[%d, %d): %+v complete %v; want %+v %v", c.from, c.upper, got, complete, c.want, c.complete)
		}
	}
}

// TestReaderAbortedTransactions: the reader fetches a segment's txnindex object once and
// answers ranges from it; a segment without one (TxnIndex false, as every upload made
// before the object existed) costs no request; a corrupt object is ErrRemoteCorrupt and a
// missing one ErrNotExist, never a panic or an empty answer.
func TestReaderAbortedTransactions(t *testing.T) {
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{ObjectStore: fs}
	r, _, _ := newReader(t, store, nil)
	ctx := t.Context()
	if err := store.Put(ctx, objKey(txnSeg, tier.KindTxnIndex), bytes.NewReader(tier.EncodeTxnIndex(txnEntries)), 3*34); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, upper int64
		want        int
		complete    bool
	}{{100, 106, 2, true}, {111, 150, 1, true}, {161, 200, 0, false}, {200, 300, 0, false}, {150, 150, 0, false}} {
		got, complete, err := r.AbortedTransactions(ctx, txnSeg, c.from, c.upper)
		if err != nil || len(got) != c.want || complete != c.complete {
			t.Fatalf("[%d, %d): %+v complete %v, %v; want %d entries, complete %v", c.from, c.upper, got, complete, err, c.want, c.complete)
		}
	}
	if n := store.reads.Load(); n != 1 {
		t.Fatalf("%d reads of the txnindex object, want 1 (cached)", n)
	}

	old := txnSeg
	old.UploadID, old.TxnIndex = "old", false
	if got, complete, err := r.AbortedTransactions(ctx, old, 100, 200); got != nil || complete || err != nil {
		t.Fatalf("segment without a txnindex: %+v %v %v", got, complete, err)
	}
	if n := store.reads.Load(); n != 1 {
		t.Fatalf("a segment without a txnindex object was read")
	}

	missing := txnSeg
	missing.UploadID = "missing"
	if _, _, err := r.AbortedTransactions(ctx, missing, 100, 200); !errors.Is(err, tier.ErrNotExist) {
		t.Fatalf("missing object: %v, want ErrNotExist", err)
	}
	for i, b := range [][]byte{tier.EncodeTxnIndex(txnEntries)[:40], tier.EncodeTxnIndex(txnEntries[1:2])[:34:34]} {
		corrupt := txnSeg
		corrupt.UploadID = "corrupt" + string(rune('a'+i))
		if i == 1 {
			b[19] = 0xff // marker far past the segment
		}
		if err := store.Put(ctx, objKey(corrupt, tier.KindTxnIndex), bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.AbortedTransactions(ctx, corrupt, 100, 200); !errors.Is(err, tier.ErrRemoteCorrupt) || !errors.Is(err, tier.ErrCorruptTxnIndex) {
			t.Fatalf("corrupt object %d: %v, want ErrRemoteCorrupt", i, err)
		}
	}
}
