package segment

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
)

// noSyncFS is the OS filesystem with syncs turned off, so that fuzz targets can run
// thousands of Open/Close cycles a second.
type noSyncFS struct{ vfs.OS }

type noSyncFile struct{ vfs.File }

func (noSyncFile) Datasync() error { return nil }

func noSyncOpen(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (fs noSyncFS) Create(name string) (vfs.File, error) { return noSyncOpen(fs.OS.Create(name)) }
func (fs noSyncFS) Open(name string) (vfs.File, error)   { return noSyncOpen(fs.OS.Open(name)) }
func (fs noSyncFS) OpenReadWrite(name string) (vfs.File, error) {
	return noSyncOpen(fs.OS.OpenReadWrite(name))
}
func (noSyncFS) SyncDir(string) error { return nil }

var fuzzOpts = Options{FS: noSyncFS{}}

func seedBatches() [][]byte {
	return [][]byte{
		segmenttest.Plain("a"),
		segmenttest.Idempotent(1, 2, 3, "x", "y"),
		segmenttest.Batch{Compression: 1, ProducerID: -1, Records: segmenttest.Values("gz", "ip")}.Encode(),
		segmenttest.Batch{Compression: 4, Transactional: true, ProducerID: 9, Records: segmenttest.Values("z")}.Encode(),
		segmenttest.Batch{Control: true, ProducerID: 9, Records: segmenttest.Values("")}.Encode(),
	}
}

// FuzzParseBatch feeds arbitrary bytes to the batch decoders.
//
// Invariants: ParseBatchHeader and ValidateBatch never panic; an error always wraps
// ErrCorruptBatch or ErrUnsupportedMagic; a batch that validates has 49 <= batchLength,
// fits in the input, and re-parses identically from exactly its own bytes (and from those
// bytes followed by anything); ValidateBatch never accepts what ParseBatchHeader rejects.
func FuzzParseBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(append([]byte(nil), b...), b...))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, b []byte) {
		ph, perr := ParseBatchHeader(b)
		h, err := ValidateBatch(b)
		for _, e := range []error{perr, err} {
			if e != nil && !isCorrupt(e) {
				t.Fatalf("error %v wraps neither sentinel", e)
			}
		}
		if err != nil {
			return
		}
		if perr != nil || ph != h {
			t.Fatalf("ValidateBatch accepted what ParseBatchHeader rejected: %v", perr)
		}
		if h.BatchLength < minBatchLength || h.Size() > int64(len(b)) || h.RecordCount < 0 || h.LastOffsetDelta < 0 {
			t.Fatalf("accepted header %+v for %d bytes", h, len(b))
		}
		own := append([]byte(nil), b[:h.Size()]...)
		h2, err := ValidateBatch(own)
		if err != nil || h2 != h {
			t.Fatalf("re-parse: %+v %v, want %+v", h2, err, h)
		}
		h3, err := ValidateBatch(append(own, 0xde, 0xad))
		if err != nil || h3 != h {
			t.Fatalf("re-parse with trailing bytes: %+v %v", h3, err)
		}
	})
}

// FuzzIndex feeds arbitrary bytes as index files.
//
// Invariants: the index checks and lookups never panic on any bytes; an index that passes
// checkOffsetIndex answers lookups with positions of its own entries, monotonic in the key;
// and a log whose sealed segment's .index and .timeindex are replaced by the bytes opens
// (rebuilding what is corrupt) and still reads back every record in order.
func FuzzIndex(f *testing.F) {
	tmpl := f.TempDir()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 40
	cfg.SegmentBytes = 1200
	l, err := Open(tmpl, cfg, fuzzOpts)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 30 {
		if _, err := l.AppendLeader(batchAt(int64(1000+i), "v", "w"), 0); err != nil {
			f.Fatal(err)
		}
	}
	leo := l.LogEndOffset()
	first := l.Segments()[0]
	if len(l.Segments()) < 2 {
		f.Fatal("need a sealed segment")
	}
	l.Close()
	goodIdx, _ := os.ReadFile(first.IndexPath)
	goodTime, _ := os.ReadFile(first.TimeIndexPath)
	f.Add(goodIdx, goodTime)
	f.Add(goodIdx[:len(goodIdx)-8], goodTime[:len(goodTime)-12])
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, idx, tidx []byte) {
		// Pure lookups.
		size := first.Size
		_ = checkTimeIndex(tidx, -1)
		ok := checkOffsetIndex(idx, size) == nil
		ox := offsetIndex{b: idx[:len(idx)/offsetEntrySize*offsetEntrySize]}
		tx := timeIndex{b: tidx[:len(tidx)/timeEntrySize*timeEntrySize]}
		prev := int64(-1)
		for _, rel := range []uint32{0, 1, 7, 100, 1 << 31, 1<<32 - 1} {
			_, p, _ := ox.lookup(rel)
			tx.lookup(int64(rel))
			ox.lookupPos(int64(rel))
			if ok && p < prev {
				t.Fatalf("lookup not monotonic: %d after %d", p, prev)
			}
			prev = p
		}

		// Through Open.
		dir := t.TempDir()
		copyDir(t, tmpl, dir)
		os.WriteFile(filepath.Join(dir, filepath.Base(first.IndexPath)), idx, 0o644)
		os.WriteFile(filepath.Join(dir, filepath.Base(first.TimeIndexPath)), tidx, 0o644)
		l, err := Open(dir, cfg, fuzzOpts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		if l.LogEndOffset() != leo {
			t.Fatalf("leo %d want %d", l.LogEndOffset(), leo)
		}
		got := readAll(t, l, 0, 100)
		for i, r := range got {
			if r.Offset != int64(i) {
				t.Fatalf("record %d has offset %d", i, r.Offset)
			}
		}
		if int64(len(got)) != leo {
			t.Fatalf("%d records", len(got))
		}
		if _, _, _, err := l.OffsetForTimestamp(1010); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzRecover opens a log whose only segment file holds arbitrary bytes, as after a crash.
//
// Invariants: Open never panics and never fails on content (only I/O errors fail it); the
// recovered log is a prefix of whole valid batches with increasing offsets, all readable
// with Read; appending works at the recovered end; and re-opening, after a clean Close or
// after an unclean stop, gives the same log end offset.
func FuzzRecover(f *testing.F) {
	var valid []byte
	for i, b := range seedBatches() {
		b = append([]byte(nil), b...)
		setOffsetAndEpoch(b, int64(i*3), 0)
		valid = append(valid, b...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(append(append([]byte(nil), valid...), bytes.Repeat([]byte{0xff}, 80)...))
	f.Add(append(append([]byte(nil), valid...), make([]byte, 100)...))
	f.Add([]byte{})
	f.Add([]byte("not a kafka log at all, not a kafka log at all, not a kafka log at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000000.log"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.IndexIntervalBytes = 32
		l, err := Open(dir, cfg, fuzzOpts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		leo := l.LogEndOffset()
		st, _ := os.Stat(filepath.Join(dir, "00000000000000000000.log"))
		if st.Size() > int64(len(data)) || !bytes.Equal(data[:st.Size()], mustReadFile(t, filepath.Join(dir, "00000000000000000000.log"))) {
			t.Fatal("recovery changed kept bytes")
		}
		// Whole valid batches, increasing offsets, all readable.
		var next int64
		for off := int64(0); off < leo; {
			s, err := l.Read(off, 1<<20, leo, true)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			b, err := s.ReadAll()
			s.Release()
			if err != nil || len(b) == 0 {
				t.Fatalf("Read(%d): %d bytes, %v", off, len(b), err)
			}
			for len(b) > 0 {
				h, err := ValidateBatch(b)
				if err != nil {
					t.Fatalf("recovered an invalid batch: %v", err)
				}
				if h.BaseOffset < next {
					t.Fatalf("offsets go back: %d after %d", h.BaseOffset, next)
				}
				next = h.NextOffset()
				b = b[h.Size():]
			}
			off = next
		}
		if next != leo {
			t.Fatalf("batches end at %d, leo %d", next, leo)
		}
		if _, err := l.AppendLeader(segmenttest.Plain("after"), 0); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		leo++
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2, err := Open(dir, cfg, fuzzOpts)
		if err != nil || l2.LogEndOffset() != leo {
			t.Fatalf("clean reopen: leo %d want %d, %v", l2.LogEndOffset(), leo, err)
		}
		l2.abandon()
		l3, err := Open(dir, cfg, fuzzOpts)
		if err != nil || l3.LogEndOffset() != leo {
			t.Fatalf("unclean reopen: leo %d want %d, %v", l3.LogEndOffset(), leo, err)
		}
		l3.Close()
	})
}

func mustReadFile(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyDir(t *testing.T, from, to string) {
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(dst, src)
		src.Close()
		dst.Close()
	}
}
