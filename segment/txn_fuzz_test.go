package segment

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// snapshotSeed is the snapshot of a state with idempotent producers, ongoing
// transactions and markers, and the same state as version 1 wrote it (without coordinator
// epochs, producers in another order).
func snapshotSeed(t testing.TB) (v2, v1 []byte) {
	ps := newProducerState()
	for i := range 9 {
		h := BatchHeader{BaseOffset: int64(i * 10), LastOffsetDelta: 2, RecordCount: 3, ProducerID: int64(i % 4), ProducerEpoch: 1,
			BaseSequence: int32(i / 4 * 3), MaxTimestamp: int64(i), Attributes: int16(i%2) * attrTransactional}
		ps.apply(&h, marker{})
	}
	mh := BatchHeader{BaseOffset: 90, ProducerID: 3, ProducerEpoch: 1, BaseSequence: -1, Attributes: attrTransactional | attrControl}
	ps.apply(&mh, marker{markerCommit, 7})
	if len(ps.ongoing) == 0 || ps.m[3].coordinatorEpoch != 7 {
		t.Fatal("seed has no ongoing transaction or no marker")
	}
	v2 = ps.encode(91)
	be := binary.BigEndian
	v1 = append([]byte(nil), v2[:snapshotHeader]...)
	be.PutUint16(v1[4:], snapshotVersion1)
	ids := slices.Sorted(maps.Keys(ps.m))
	slices.Reverse(ids)
	for _, id := range ids {
		v1 = appendSnapshotEntry(v1, id, ps.m[id], snapshotVersion1)
	}
	v1 = be.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	return v2, v1
}

func sameProducers(t testing.TB, got, want *producerState) {
	t.Helper()
	if len(got.m) != len(want.m) || len(got.ongoing) != len(want.ongoing) || got.firstUnstable() != want.firstUnstable() {
		t.Fatalf("%d producers, %d ongoing, first unstable %d; want %d, %d, %d",
			len(got.m), len(got.ongoing), got.firstUnstable(), len(want.m), len(want.ongoing), want.firstUnstable())
	}
	for id, e := range want.m {
		if g := got.m[id]; g == nil || *g != *e {
			t.Fatalf("producer %d: %+v, want %+v", id, g, e)
		}
	}
}

// TestSnapshotVersions: version 2 round-trips byte for byte with ongoing transactions;
// version 1 is still read.
func TestSnapshotVersions(t *testing.T) {
	v2, v1 := snapshotSeed(t)
	_, ps2, err := decodeSnapshot(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ps2.encode(91), v2) {
		t.Fatal("version 2 does not re-encode identically")
	}
	off, ps1, err := decodeSnapshot(v1)
	if err != nil || off != 91 {
		t.Fatalf("version 1: %d %v", off, err)
	}
	// Version 1 had no coordinator epochs.
	if ps1.m[3].coordinatorEpoch != -1 {
		t.Fatalf("version 1 coordinator epoch %d", ps1.m[3].coordinatorEpoch)
	}
	ps1.m[3].coordinatorEpoch = 7
	sameProducers(t, ps1, ps2)
	// Out of order in version 2 is corrupt.
	bad := append([]byte(nil), v2[:snapshotHeader]...)
	for _, id := range []int64{2, 1} {
		bad = appendSnapshotEntry(bad, id, ps2.m[id], snapshotVersion)
	}
	binary.BigEndian.PutUint32(bad[14:], 2)
	bad = binary.BigEndian.AppendUint32(bad, crc32.Checksum(bad, castagnoli))
	if _, _, err := decodeSnapshot(bad); err == nil {
		t.Fatal("version 2 with producers out of order accepted")
	}
}

// FuzzProducerSnapshot feeds arbitrary bytes to the producer-snapshot decoder.
//
// Invariants: decodeSnapshot never panics and allocates in proportion to its input; a
// version 2 snapshot that decodes re-encodes to the same bytes; a version 1 snapshot that
// decodes re-encodes (as version 2) to a snapshot that decodes to the same state, ongoing
// transactions included.
func FuzzProducerSnapshot(f *testing.F) {
	v2, v1 := snapshotSeed(f)
	f.Add(v2)
	f.Add(v1)
	f.Add(newProducerState().encode(0))
	f.Add(v2[:len(v2)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		off, ps, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		re := ps.encode(off)
		if binary.BigEndian.Uint16(b[4:]) == snapshotVersion {
			if !bytes.Equal(re, b) {
				t.Fatalf("re-encoded\n%x\nfrom\n%x", re, b)
			}
			return
		}
		off2, ps2, err := decodeSnapshot(re)
		if err != nil || off2 != off {
			t.Fatalf("re-decode: %d %v", off2, err)
		}
		sameProducers(t, ps2, ps)
	})
}

// FuzzTxnIndex feeds arbitrary bytes as a .txnindex.
//
// Invariants: checkTxnIndex never panics nor allocates; an index it accepts re-encodes,
// entry by entry, to the same bytes, and truncation keeps a prefix of it; and a log whose
// sealed segment's .txnindex is replaced by the bytes opens, keeping them if they are valid
// for that segment and else rebuilding the true entries, and answers AbortedTransactions
// from them.
func FuzzTxnIndex(f *testing.F) {
	tmpl := f.TempDir()
	cfg := txnConfig()
	l, err := Open(tmpl, cfg, fuzzOpts)
	if err != nil {
		f.Fatal(err)
	}
	m := newTxnModel()
	r := rand.New(rand.NewPCG(7, 7))
	for range 80 {
		m.step(f, l, r)
	}
	var seg SegmentInfo
	for _, s := range l.Segments() {
		if s.HasTxnIndex {
			seg = s
			break
		}
	}
	if seg.TxnIndexPath == "" {
		f.Fatal("no sealed segment with a .txnindex")
	}
	want := m.entries
	l.Close()
	good, _ := os.ReadFile(seg.TxnIndexPath)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Add(appendTxnEntry(nil, completedTxn{producerID: 1, firstOffset: seg.BaseOffset, lastOffset: seg.BaseOffset, lastStable: seg.BaseOffset + 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkTxnIndex(b, 0, math.MaxInt64) == nil {
			x := txnIndex{b: b}
			var re []byte
			for i := range x.len() {
				re = appendTxnEntry(re, x.entry(i))
			}
			if !bytes.Equal(re, b) {
				t.Fatalf("re-encoded\n%x\nfrom\n%x", re, b)
			}
			if x.len() > 0 {
				c := txnIndex{b: slices.Clone(b)}
				c.truncate(x.entry(x.len()/2).lastOffset + 1)
				if !bytes.HasPrefix(b, c.b) || c.len() != x.len()/2+1 {
					t.Fatalf("truncate kept %d of %d entries", c.len(), x.len())
				}
			}
		}

		dir := t.TempDir()
		copyDir(t, tmpl, dir)
		os.WriteFile(filepath.Join(dir, filepath.Base(seg.TxnIndexPath)), b, 0o644)
		l, err := Open(dir, cfg, fuzzOpts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		got := txnEntriesOf(t, l)
		if checkTxnIndex(b, seg.BaseOffset, seg.NextOffset) != nil && !slices.Equal(got, want) {
			t.Fatalf("rebuilt entries %+v, want %+v", got, want)
		}
		l.AbortedTransactions(0, l.LogEndOffset())
	})
}
