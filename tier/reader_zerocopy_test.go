package tier_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
)

// recordsBytes returns what a connection would send of rec: Bytes, or the file range
// read through the file (as sendfile reads it), not through the reader's mapping.
func recordsBytes(t testing.TB, rec tier.Records) []byte {
	t.Helper()
	if rec.Bytes != nil || rec.Len == 0 {
		return rec.Bytes
	}
	b := make([]byte, rec.Len)
	if n, err := rec.File.ReadAt(b, rec.Pos); n != len(b) {
		t.Fatalf("reading the cache file range [%d, %d): %d bytes, %v", rec.Pos, rec.Pos+rec.Len, n, err)
	}
	return b
}

// FuzzReadZeroCopy reads an offset of a remote segment twice through a reader whose chunks
// are in cache files: the copying way (Read) and the zero-copy way (ReadRecords, which
// hands back a range of the cache file when the batches lie in one chunk).
//
// Invariant: both return the same bytes, which are what the local log serves there.
func FuzzReadZeroCopy(f *testing.F) {
	fx := getFixture(f)
	store, err := file.New(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	segs := upload(f, store, fx, uploadOpts{})
	f.Add(uint8(0), uint16(0), uint16(300), true)
	f.Add(uint8(1), uint16(7), uint16(0), true)
	f.Add(uint8(2), uint16(3), uint16(5000), false)
	f.Add(uint8(3), uint16(100), uint16(65535), true)
	f.Fuzz(func(t *testing.T, si uint8, off uint16, maxBytes uint16, minOne bool) {
		i := int(si) % len(segs)
		seg, info := segs[i], fx.infos[i]
		offset := seg.BaseOffset + int64(off)%(seg.EndOffset-seg.BaseOffset+1)
		r, _, _ := newReader(t, store, func(c *tier.ReaderConfig) { c.ReadAhead = -1 })
		copied, err := r.Read(t.Context(), seg, offset, int(maxBytes), minOne)
		if err != nil {
			t.Fatal(err)
		}
		// The read above put its chunks in cache files (no memory layer): this one finds them.
		rec, err := r.ReadRecords(t.Context(), seg, nil, offset, int(maxBytes), minOne)
		if err != nil {
			t.Fatal(err)
		}
		zero := recordsBytes(t, rec)
		rec.Release()
		if !bytes.Equal(zero, copied) {
			t.Fatalf("segment %d offset %d maxBytes %d: zero-copy read (%d bytes, file range %v) differs from the copying one (%d bytes)",
				i, offset, maxBytes, len(zero), rec.Bytes == nil, len(copied))
		}
		if want := fx.localRead(t, info, offset, int(maxBytes), minOne); !bytes.Equal(copied, want) {
			t.Fatalf("segment %d offset %d: remote read differs from the local one", i, offset)
		}
	})
}

// TestReaderPinsCacheFileRanges: a read within a cached chunk comes back as a range of
// its cache file, which the cache does not evict while it is pinned (a response being
// sent), however many other chunks come in; once released, it goes.
func TestReaderPinsCacheFileRanges(t *testing.T) {
	fx := getFixture(t)
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	segs := upload(t, store, fx, uploadOpts{})
	r, reg, dir := newReader(t, store, func(c *tier.ReaderConfig) { c.ReadAhead = -1; c.CacheBytes = 2 * testChunk })
	seg := segs[0]
	want := fx.localRead(t, fx.infos[0], seg.BaseOffset, 300, true)
	if _, err := r.Read(t.Context(), seg, seg.BaseOffset, 300, true); err != nil {
		t.Fatal(err)
	}
	rec, err := r.ReadRecords(t.Context(), seg, nil, seg.BaseOffset, 300, true)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Bytes != nil || rec.Len == 0 {
		t.Fatalf("a read within a cached chunk returned %d bytes in memory, not a file range", len(rec.Bytes))
	}
	st, err := rec.File.Stat()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, st.Name())
	// Fill the cache many times over.
	for _, s := range segs[1:] {
		for off := s.BaseOffset; off <= s.EndOffset; off += 5 {
			if _, err := r.Read(t.Context(), s, off, testChunk, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the pinned cache file was evicted: %v", err)
	}
	if got := recordsBytes(t, rec); !bytes.Equal(got, want) {
		t.Fatal("the pinned file range no longer holds the batches read")
	}
	rec.Release()
	rec.Release() // harmless
	s := segs[1]
	for off := s.BaseOffset; off <= s.EndOffset; off += 5 {
		if _, err := r.Read(t.Context(), s, off, testChunk, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the released cache file is still there (%v) with the cache full", err)
	}
	if n := metric(t, reg, "sediment_tier_cache_bytes"); n > 2*testChunk {
		t.Fatalf("cache holds %v bytes, bound %d", n, 2*testChunk)
	}
}

// TestReaderReadAheadUnderMemoryPressure: many consumers catching up at once, with memory
// for each one's current chunk and the next (batches span chunks) but not for all their
// read-ahead, still GET each byte of the objects about once: read-ahead must not push out
// chunks (its own or the ones being read) that a consumer has yet to reach. (Before
// memCache.reserve: 2.3x.)
func TestReaderReadAheadUnderMemoryPressure(t *testing.T) {
	fx := getFixture(t)
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	segs := upload(t, store, fx, uploadOpts{})[:8]
	r, reg, _ := newReader(t, store, func(c *tier.ReaderConfig) {
		c.MemBytes = int64(2*len(segs)) * testChunk
		c.ReadAhead = 2
		c.CacheBytes = 1 // no cache files: memory only
	})
	want := readRoundRobin(t, r, fx, segs)
	got := metric(t, reg, "sediment_tier_remote_fetch_bytes_total")
	t.Logf("fetched %.0f bytes for %d bytes of objects and indexes: %.3fx", got, want, got/float64(want))
	if ratio := got / float64(want); ratio > 1.1 {
		t.Fatalf("fetched %.0f bytes for %d bytes of objects and indexes: %.2fx", got, want, ratio)
	}
}

// readRoundRobin reads every segment of segs from its start to its end, 1000 bytes a read,
// one read of each segment in turn (consumers catching up on many partitions at once),
// checking each read against the local log. It returns the bytes of the objects and
// indexes read.
func readRoundRobin(t *testing.T, r *tier.Reader, fx *fixture, segs []tier.RemoteSegment) int64 {
	t.Helper()
	var want int64
	next := make([]int64, len(segs))
	for i, s := range segs {
		next[i] = s.BaseOffset
		want += s.Size
		fi, err := os.Stat(fx.infos[i].IndexPath)
		if err != nil {
			t.Fatal(err)
		}
		want += fi.Size()
	}
	for more := true; more; {
		more = false
		for i, s := range segs {
			if next[i] > s.EndOffset {
				continue
			}
			more = true
			b, err := r.Read(t.Context(), s, next[i], 1000, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, fx.localRead(t, fx.infos[i], next[i], 1000, true)) {
				t.Fatalf("segment %d offset %d: remote read differs from the local one", i, next[i])
			}
			next[i] = batchesEnd(b)
		}
	}
	return want
}

// batchesEnd returns the offset after the last of the whole batches b.
func batchesEnd(b []byte) int64 {
	next := int64(-1)
	for len(b) > 0 {
		next = int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[12+int(binary.BigEndian.Uint32(b[8:])):]
	}
	return next
}
