package tier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	tiers3 "github.com/sedimentio/sediment/tier/s3"
	"github.com/sedimentio/sediment/tier/tiertest"
)

// testChunk is the reader's chunk size in tests: small, so that reads span chunks and
// batches span several.
const testChunk = 4096

var testTopicID = [16]byte{0xb9, 0x6f, 0x1e, 0x53, 0x47, 0xf8, 0x4a, 0x7c, 0xa2, 0x59, 0x75, 0xaa, 0x81, 0xf8, 0xe1, 0xd0}

// fixture is a local log rolled into many sealed segments, the reference the remote
// reads are compared with.
type fixture struct {
	log   *segment.Log
	infos []segment.SegmentInfo // sealed segments
}

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureVal  *fixture
	fixtureErr  error
)

// buildFixture appends batches of varying sizes (some larger than a chunk) and all codecs
// to a log with a tiny segment.bytes, so it rolls many times. Batch 0 is small.
func buildFixture(dir string) (*fixture, error) {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 24 << 10
	cfg.IndexIntervalBytes = 700
	l, err := segment.Open(dir, cfg, segment.Options{})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 360 {
		n := 1 + rng.IntN(5)
		recs := make([]segmenttest.Record, n)
		for j := range recs {
			size := 10 + rng.IntN(300)
			if i > 0 && rng.IntN(12) == 0 {
				size = 4000 + rng.IntN(5000) // a batch larger than a chunk
			}
			v := make([]byte, size)
			if rng.IntN(2) == 0 {
				for k := range v {
					v[k] = byte(rng.Uint32())
				}
			} else {
				copy(v, bytes.Repeat([]byte(fmt.Sprintf("value %d/%d ", i, j)), size))
			}
			recs[j] = segmenttest.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: v, TimestampDelta: int64(j)}
		}
		codec := int8(0)
		if i > 0 {
			codec = int8(rng.IntN(5))
		}
		b := segmenttest.Batch{
			FirstTimestamp: 1_700_000_000_000 + int64(i),
			ProducerID:     -1, ProducerEpoch: -1, BaseSequence: -1,
			Compression: codec,
			Records:     recs,
		}.Encode()
		if _, err := l.AppendLeader(b, 3); err != nil {
			l.Close()
			return nil, err
		}
	}
	f := &fixture{log: l}
	for _, s := range l.Segments() {
		if s.Sealed {
			f.infos = append(f.infos, s)
		}
	}
	if len(f.infos) < 5 {
		return nil, fmt.Errorf("only %d sealed segments", len(f.infos))
	}
	return f, nil
}

// getFixture returns the shared fixture (built once per test binary; read-only).
func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "tier-reader-fixture")
		if fixtureErr == nil {
			fixtureVal, fixtureErr = buildFixture(fixtureDir)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureVal
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureVal != nil {
		fixtureVal.log.Close()
	}
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// localRead is what the local log serves for offset within segment info.
func (f *fixture) localRead(t testing.TB, info segment.SegmentInfo, offset int64, maxBytes int, minOne bool) []byte {
	t.Helper()
	sl, err := f.log.Read(offset, maxBytes, info.NextOffset, minOne)
	if err != nil {
		t.Fatalf("local Read(%d, %d, %v): %v", offset, maxBytes, minOne, err)
	}
	defer sl.Release()
	b, err := sl.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uploadOpts says how a test uploads segments.
type uploadOpts struct {
	uploadID string
	frames   func(log []byte) [][2]int64 // zstd-frames pieces [start, end); nil: "none"
}

func topicText() string { return base64.RawURLEncoding.EncodeToString(testTopicID[:]) }

func objKey(seg tier.RemoteSegment, kind string) string {
	return tier.ObjectKey(topicText(), seg.Partition, seg.BaseOffset, seg.LeaderEpoch, seg.UploadID, kind)
}

// upload puts the fixture's sealed segments into store as REMOTE.md describes (the
// uploader is tested on its own; this writes the objects directly).
func upload(t testing.TB, store tier.ObjectStore, f *fixture, o uploadOpts) []tier.RemoteSegment {
	t.Helper()
	var segs []tier.RemoteSegment
	for _, info := range f.infos {
		logb, err := os.ReadFile(info.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := os.ReadFile(info.IndexPath)
		if err != nil {
			t.Fatal(err)
		}
		seg := tier.RemoteSegment{
			V: 1, TopicID: testTopicID, Partition: 0, UploadID: o.uploadID,
			BaseOffset: info.BaseOffset, EndOffset: info.NextOffset - 1, LeaderEpoch: 3,
			MaxTimestamp: info.MaxTimestamp, Size: int64(len(logb)), Compression: "none",
			State: tier.CopyFinished,
		}
		tiertest.MustPut(t, store, objKey(seg, tier.KindIndex), idx)
		if o.frames != nil {
			seg.Compression = "zstd-frames"
			logb = putFrames(t, store, seg, logb, o.frames(logb))
		}
		tiertest.MustPut(t, store, objKey(seg, tier.KindLog), logb)
		segs = append(segs, seg)
	}
	return segs
}

// putFrames compresses pieces of log as independent zstd frames, puts the frame index and
// returns the compressed log object.
func putFrames(t testing.TB, store tier.ObjectStore, seg tier.RemoteSegment, log []byte, pieces [][2]int64) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	type frame struct {
		UO int64 `json:"uncompressed_offset"`
		UL int64 `json:"uncompressed_len"`
		CO int64 `json:"compressed_offset"`
		CL int64 `json:"compressed_len"`
	}
	var out []byte
	frames := []frame{}
	for _, p := range pieces {
		c := enc.EncodeAll(log[p[0]:p[1]], nil)
		frames = append(frames, frame{p[0], p[1] - p[0], int64(len(out)), int64(len(c))})
		out = append(out, c...)
	}
	idx, err := json.Marshal(map[string]any{
		"v": 1, "frame_size": 3000, "uncompressed_size": len(log), "compressed_size": len(out), "frames": frames,
	})
	if err != nil {
		t.Fatal(err)
	}
	tiertest.MustPut(t, store, objKey(seg, tier.KindFrames), idx)
	return out
}

// batchCut cuts as the uploader does: a piece ends at the first batch boundary at or after
// size bytes.
func batchCut(size int64) func([]byte) [][2]int64 {
	return func(log []byte) [][2]int64 {
		var out [][2]int64
		start := int64(0)
		for pos := int64(0); pos < int64(len(log)); {
			pos += 12 + int64(binary.BigEndian.Uint32(log[pos+8:]))
			if pos-start >= size || pos == int64(len(log)) {
				out = append(out, [2]int64{start, pos})
				start = pos
			}
		}
		return out
	}
}

// fixedCut cuts at fixed sizes, ignoring batch boundaries (REMOTE.md: readers must cope).
func fixedCut(size int64) func([]byte) [][2]int64 {
	return func(log []byte) [][2]int64 {
		var out [][2]int64
		for p := int64(0); p < int64(len(log)); p += size {
			out = append(out, [2]int64{p, min(p+size, int64(len(log)))})
		}
		return out
	}
}

func newReader(t testing.TB, store tier.ObjectStore, mod func(*tier.ReaderConfig)) (*tier.Reader, *prometheus.Registry, string) {
	t.Helper()
	// No memory layer unless a test asks: the cache-file paths are what most tests check.
	cfg := tier.ReaderConfig{ChunkSize: testChunk, CacheDir: t.TempDir(), CacheBytes: 8 << 20, MemBytes: -1, ReadAhead: 2, MaxParallel: 8}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	r, err := tier.NewReader(store, cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, reg, cfg.CacheDir
}

func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// readCases are the (maxBytes, minOneBatch) pairs checkAll tries at every offset: nothing,
// less than a batch, about a chunk (reads span chunk boundaries), and everything.
var readCases = []struct {
	maxBytes int
	minOne   bool
}{
	{0, false}, {1, false}, {1, true}, {300, true}, {testChunk + 1000, false}, {3 * testChunk, true}, {1 << 20, false},
}

// checkAll compares remote reads with local reads for every step-th offset of every
// segment and several maxBytes.
func checkAll(t *testing.T, r *tier.Reader, f *fixture, segs []tier.RemoteSegment, step int64) {
	t.Helper()
	ctx := t.Context()
	reads := 0
	for i, seg := range segs {
		info := f.infos[i]
		for off := seg.BaseOffset; off <= seg.EndOffset; off += step {
			for _, c := range readCases {
				{
					maxBytes, minOne := c.maxBytes, c.minOne
					want := f.localRead(t, info, off, maxBytes, minOne)
					got, err := r.Read(ctx, seg, off, maxBytes, minOne)
					if err != nil {
						t.Fatalf("Read(seg %d, offset %d, maxBytes %d, minOne %v): %v", seg.BaseOffset, off, maxBytes, minOne, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("Read(seg %d, offset %d, maxBytes %d, minOne %v): %d bytes, local log gives %d", seg.BaseOffset, off, maxBytes, minOne, len(got), len(want))
					}
					if minOne && len(got) == 0 {
						t.Fatalf("Read(seg %d, offset %d, maxBytes %d, minOneBatch): nothing", seg.BaseOffset, off, maxBytes)
					}
					reads++
				}
			}
		}
	}
	t.Logf("%d reads match the local log", reads)
}

func TestReaderFile(t *testing.T) {
	t.Parallel()
	testReader(t, func(t *testing.T) tier.ObjectStore {
		st, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, 1)
}

func TestReaderMinIO(t *testing.T) {
	t.Parallel()
	m := tiertest.StartMinIO(t)
	raw := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	var n atomic.Int64
	testReader(t, func(t *testing.T) tier.ObjectStore {
		bucket := fmt.Sprintf("reader%03d", n.Add(1))
		if _, err := raw.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("CreateBucket(%s): %v", bucket, err)
		}
		cfg := tiers3.DefaultConfig(bucket)
		cfg.Endpoint = m.Endpoint
		cfg.Region = "us-east-1"
		cfg.PathStyle = true
		cfg.MaxAttempts = 1
		cfg.Credentials = credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
		st, err := tiers3.New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, 4)
}

// testReader runs the reader's tests on stores from open; step thins the offsets of the
// exhaustive comparisons.
func testReader(t *testing.T, open func(t *testing.T) tier.ObjectStore, step int64) {
	f := getFixture(t)
	t.Run("MatchesLocal", func(t *testing.T) {
		store := open(t)
		segs := upload(t, store, f, uploadOpts{uploadID: "u1"})
		r, reg, _ := newReader(t, store, nil)
		checkAll(t, r, f, segs, step)
		// Second pass: everything from the cache, still identical.
		req := metric(t, reg, "sediment_tier_remote_fetch_requests_total")
		checkAll(t, r, f, segs, 3*step)
		if got := metric(t, reg, "sediment_tier_remote_fetch_requests_total"); got != req {
			t.Errorf("second pass made %v GETs, want 0 (cache is large enough)", got-req)
		}
	})
	t.Run("ZstdFramesBatchCut", func(t *testing.T) {
		store := open(t)
		segs := upload(t, store, f, uploadOpts{uploadID: "z1", frames: batchCut(3000)})
		r, _, _ := newReader(t, store, nil)
		checkAll(t, r, f, segs, 3*step)
	})
	t.Run("ZstdFramesFixedCut", func(t *testing.T) {
		store := open(t)
		segs := upload(t, store, f, uploadOpts{uploadID: "z2", frames: fixedCut(2500)})
		r, _, _ := newReader(t, store, func(c *tier.ReaderConfig) { c.CacheBytes = 8 * testChunk })
		checkAll(t, r, f, segs, 3*step)
	})
	t.Run("MinOneBatch", func(t *testing.T) {
		store := open(t)
		segs := upload(t, store, f, uploadOpts{uploadID: "u1"})
		r, _, _ := newReader(t, store, nil)
		for _, seg := range segs {
			got, err := r.Read(t.Context(), seg, seg.BaseOffset, 1, true)
			if err != nil {
				t.Fatal(err)
			}
			h, err := segment.ValidateBatch(got)
			if err != nil || h.Size() != int64(len(got)) {
				t.Fatalf("minOneBatch read of %d: %d bytes, want exactly one batch (%v)", seg.BaseOffset, len(got), err)
			}
			if got, err := r.Read(t.Context(), seg, seg.BaseOffset, 1, false); err != nil || got != nil {
				t.Fatalf("read of %d with maxBytes 1: %d bytes, %v; want nothing", seg.BaseOffset, len(got), err)
			}
		}
	})
	t.Run("CacheHitAndBound", func(t *testing.T) {
		store := open(t)
		segs := upload(t, store, f, uploadOpts{uploadID: "u1"})
		const bound = 6 * testChunk
		r, reg, dir := newReader(t, store, func(c *tier.ReaderConfig) { c.CacheBytes = bound; c.ReadAhead = -1 })
		seg := segs[1]
		first, err := r.Read(t.Context(), seg, seg.BaseOffset, 2*testChunk, true)
		if err != nil {
			t.Fatal(err)
		}
		hits, misses := metric(t, reg, "sediment_tier_cache_hits_total"), metric(t, reg, "sediment_tier_cache_misses_total")
		reqs := metric(t, reg, "sediment_tier_remote_fetch_requests_total")
		if hits != 0 || misses == 0 {
			t.Fatalf("first read: %v hits, %v misses; want 0 and some", hits, misses)
		}
		again, err := r.Read(t.Context(), seg, seg.BaseOffset, 2*testChunk, true)
		if err != nil || !bytes.Equal(first, again) {
			t.Fatalf("second read differs (%v)", err)
		}
		if h := metric(t, reg, "sediment_tier_cache_hits_total"); h < misses {
			t.Errorf("second read: %v hits, want >= %v", h, misses)
		}
		if m := metric(t, reg, "sediment_tier_cache_misses_total"); m != misses {
			t.Errorf("second read missed %v times", m-misses)
		}
		if q := metric(t, reg, "sediment_tier_remote_fetch_requests_total"); q != reqs {
			t.Errorf("second read made %v requests", q-reqs)
		}
		// Read everything: the cache must stay within its bound, on disk and in the gauge.
		checkAll(t, r, f, segs, 7)
		if g := metric(t, reg, "sediment_tier_cache_bytes"); g > bound || g == 0 {
			t.Errorf("cache gauge %v, want in (0, %d]", g, bound)
		}
		var total int64
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			fi, err := e.Info()
			if err == nil {
				total += fi.Size()
			}
		}
		if total > bound {
			t.Errorf("cache directory holds %d bytes, bound %d", total, bound)
		}
	})
	t.Run("Corrupt", func(t *testing.T) {
		store := open(t)
		seg := upload(t, store, f, uploadOpts{uploadID: "u1"})[2]
		logb := tiertest.MustRead(t, store, objKey(seg, tier.KindLog), int(seg.Size))
		// Find the 5th batch and its offset.
		pos, off := int64(0), seg.BaseOffset
		for range 4 {
			h, _ := segment.ParseBatchHeader(logb[pos:])
			pos += h.Size()
			off = h.NextOffset()
		}
		h, _ := segment.ParseBatchHeader(logb[pos:])
		for _, tc := range []struct {
			name string
			at   int64
		}{
			{"payload", pos + 61 + 3},
			{"crc", pos + 18},
			{"batchLength", pos + 10},
			{"baseOffset", pos + 6},
			{"lastOffsetDelta", pos + 25},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bad := bytes.Clone(logb)
				bad[tc.at] ^= 0x40
				cseg := seg
				cseg.UploadID = "bad-" + tc.name
				tiertest.MustPut(t, store, objKey(cseg, tier.KindIndex), nil)
				tiertest.MustPut(t, store, objKey(cseg, tier.KindLog), bad)
				r, _, _ := newReader(t, store, nil)
				for _, maxBytes := range []int{1, 1 << 20} {
					got, err := r.Read(t.Context(), cseg, off, maxBytes, true)
					if !errors.Is(err, tier.ErrRemoteCorrupt) || got != nil {
						t.Fatalf("read of flipped byte at %d (batch at %d, %d bytes): %d bytes, %v; want ErrRemoteCorrupt", tc.at, pos, h.Size(), len(got), err)
					}
				}
			})
		}
		t.Run("short", func(t *testing.T) {
			cseg := seg
			cseg.UploadID = "short"
			tiertest.MustPut(t, store, objKey(cseg, tier.KindIndex), nil)
			tiertest.MustPut(t, store, objKey(cseg, tier.KindLog), logb[:len(logb)-100])
			r, _, _ := newReader(t, store, nil)
			if _, err := r.Read(t.Context(), cseg, cseg.EndOffset, 1<<20, true); !errors.Is(err, tier.ErrRemoteCorrupt) {
				t.Fatalf("read of a truncated object: %v; want ErrRemoteCorrupt", err)
			}
		})
		t.Run("index", func(t *testing.T) {
			cseg := seg
			cseg.UploadID = "badindex"
			var idx [8]byte
			binary.BigEndian.PutUint32(idx[0:], uint32(off-seg.BaseOffset))
			binary.BigEndian.PutUint32(idx[4:], uint32(pos+7)) // between batches
			tiertest.MustPut(t, store, objKey(cseg, tier.KindIndex), idx[:])
			tiertest.MustPut(t, store, objKey(cseg, tier.KindLog), logb)
			r, _, _ := newReader(t, store, nil)
			if _, err := r.Read(t.Context(), cseg, seg.EndOffset, 1<<20, true); !errors.Is(err, tier.ErrRemoteCorrupt) {
				t.Fatalf("read through a bad index: %v; want ErrRemoteCorrupt", err)
			}
			cseg.UploadID = "badindex2"
			tiertest.MustPut(t, store, objKey(cseg, tier.KindIndex), idx[:5])
			tiertest.MustPut(t, store, objKey(cseg, tier.KindLog), logb)
			if _, err := r.Read(t.Context(), cseg, seg.EndOffset, 1<<20, true); !errors.Is(err, tier.ErrRemoteCorrupt) {
				t.Fatalf("read with a torn index: %v; want ErrRemoteCorrupt", err)
			}
		})
		t.Run("metadata", func(t *testing.T) {
			// A segment whose EndOffset is below its last batch's offsets.
			r, _, _ := newReader(t, store, nil)
			cseg := seg
			cseg.EndOffset = seg.EndOffset - 1
			if _, err := r.Read(t.Context(), cseg, cseg.EndOffset, 1<<20, true); !errors.Is(err, tier.ErrRemoteCorrupt) {
				t.Fatalf("read past the metadata's end offset: %v; want ErrRemoteCorrupt", err)
			}
		})
	})
	t.Run("CorruptCacheRefetched", func(t *testing.T) {
		store := open(t)
		seg := upload(t, store, f, uploadOpts{uploadID: "u1"})[1]
		r, _, dir := newReader(t, store, func(c *tier.ReaderConfig) { c.ReadAhead = -1 })
		want, err := r.Read(t.Context(), seg, seg.BaseOffset, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		// Bit rot in every cached chunk: the reader must notice, drop them and refetch.
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}
		got, err := r.Read(t.Context(), seg, seg.BaseOffset, 1<<20, true)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read after cache corruption: %d bytes, %v; want the original %d", len(got), err, len(want))
		}
	})
	t.Run("Missing", func(t *testing.T) {
		store := open(t)
		seg := upload(t, store, f, uploadOpts{uploadID: "u1"})[0]
		r, _, _ := newReader(t, store, nil)
		gone := seg
		gone.UploadID = "never-uploaded"
		if got, err := r.Read(t.Context(), gone, seg.BaseOffset, 1<<20, true); !errors.Is(err, tier.ErrNotExist) || got != nil {
			t.Fatalf("read of a missing segment: %d bytes, %v; want ErrNotExist", len(got), err)
		}
		// Index there, log deleted (a read racing remote retention).
		if err := store.Delete(t.Context(), objKey(seg, tier.KindLog)); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Read(t.Context(), seg, seg.BaseOffset, 1<<20, true); !errors.Is(err, tier.ErrNotExist) || got != nil {
			t.Fatalf("read of a deleted log object: %d bytes, %v; want ErrNotExist", len(got), err)
		}
		zs := upload(t, store, f, uploadOpts{uploadID: "z1", frames: batchCut(3000)})[0]
		if err := store.Delete(t.Context(), objKey(zs, tier.KindFrames)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(t.Context(), zs, zs.BaseOffset, 1<<20, true); !errors.Is(err, tier.ErrNotExist) {
			t.Fatalf("read without a frame index: %v; want ErrNotExist", err)
		}
		if _, err := r.Read(t.Context(), seg, seg.EndOffset+1, 1<<20, true); !errors.Is(err, segment.ErrOffsetOutOfRange) {
			t.Fatalf("read past the segment: %v; want ErrOffsetOutOfRange", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		store := open(t)
		segs := upload(t, store, f, uploadOpts{uploadID: "u1"})
		// A small cache keeps evicting under the readers.
		r, reg, _ := newReader(t, store, func(c *tier.ReaderConfig) { c.CacheBytes = 10 * testChunk; c.MaxParallel = 4 })
		type want struct {
			seg      int
			off      int64
			maxBytes int
			b        []byte
		}
		rng := rand.New(rand.NewPCG(7, 8))
		var wants []want
		for range 400 {
			i := rng.IntN(len(segs))
			off := segs[i].BaseOffset + rng.Int64N(segs[i].EndOffset-segs[i].BaseOffset+1)
			mb := 1 + rng.IntN(4*testChunk)
			wants = append(wants, want{i, off, mb, f.localRead(t, f.infos[i], off, mb, true)})
		}
		var wg sync.WaitGroup
		errc := make(chan error, 16)
		for g := range 16 {
			wg.Go(func() {
				for j := g; j < len(wants); j += 16 {
					w := wants[j]
					got, err := r.Read(t.Context(), segs[w.seg], w.off, w.maxBytes, true)
					if err != nil || !bytes.Equal(got, w.b) {
						errc <- fmt.Errorf("Read(%d, %d, %d): %d bytes, %v; want %d", segs[w.seg].BaseOffset, w.off, w.maxBytes, len(got), err, len(w.b))
						return
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		t.Logf("%v GETs for %d concurrent reads", metric(t, reg, "sediment_tier_remote_fetch_requests_total"), len(wants))
	})
	t.Run("SharedGET", func(t *testing.T) {
		store := &countingStore{ObjectStore: open(t)}
		seg := upload(t, store, f, uploadOpts{uploadID: "u1"})[3]
		r, _, _ := newReader(t, store, func(c *tier.ReaderConfig) { c.ReadAhead = -1 })
		h, err := segment.ParseBatchHeader(tiertest.MustRead(t, store, objKey(seg, tier.KindLog), 61))
		if err != nil {
			t.Fatal(err)
		}
		store.reads.Store(0)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if _, err := r.Read(t.Context(), seg, seg.BaseOffset, 1, true); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// One GET of the index, one per chunk of the first batch (Stat is not counted).
		want := 1 + (h.Size()-1)/testChunk + 1
		if n := store.reads.Load(); n != want {
			t.Errorf("32 concurrent reads of the first batch (%d bytes) made %d GETs, want %d", h.Size(), n, want)
		}
	})
	t.Run("ReadAhead", func(t *testing.T) {
		store := &countingStore{ObjectStore: open(t)}
		seg := upload(t, store, f, uploadOpts{uploadID: "u1"})[0]
		r, reg, dir := newReader(t, store, nil)
		if _, err := r.Read(t.Context(), seg, seg.BaseOffset, 1, true); err != nil {
			t.Fatal(err)
		}
		// Chunks 1 and 2 arrive in the background; reading them then hits the cache.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if cachedChunks(dir) == 3 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := store.reads.Load(); n != 4 {
			t.Fatalf("%d GETs after one read, want 4 (index, chunk 0, read-ahead of 1 and 2)", n)
		}
		misses := metric(t, reg, "sediment_tier_cache_misses_total")
		if _, err := r.Read(t.Context(), seg, seg.BaseOffset, 3*testChunk-200, false); err != nil {
			t.Fatal(err)
		}
		if m := metric(t, reg, "sediment_tier_cache_misses_total"); m != misses {
			t.Errorf("read of prefetched chunks missed the cache %v times", m-misses)
		}
	})
	t.Run("CloseStopsReadAhead", func(t *testing.T) {
		base := open(t)
		seg := upload(t, base, f, uploadOpts{uploadID: "u1"})[0]
		store := &blockingStore{ObjectStore: base, from: testChunk, started: make(chan struct{}, 16)}
		cfg := tier.ReaderConfig{ChunkSize: testChunk, CacheDir: t.TempDir(), ReadAhead: 2}
		r, err := tier.NewReader(store, cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(t.Context(), seg, seg.BaseOffset, 1, true); err != nil {
			t.Fatal(err)
		}
		select {
		case <-store.started:
		case <-time.After(10 * time.Second):
			t.Fatal("no read-ahead started")
		}
		done := make(chan struct{})
		go func() { r.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not stop the read-ahead")
		}
		if n := store.active.Load(); n != 0 {
			t.Fatalf("%d GETs still running after Close", n)
		}
		if _, err := r.Read(t.Context(), seg, seg.BaseOffset, 1, true); !errors.Is(err, tier.ErrReaderClosed) {
			t.Fatalf("Read after Close: %v; want ErrReaderClosed", err)
		}
	})
}

// cachedChunks counts the chunk files in a cache directory (not temporary files).
func cachedChunks(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// countingStore counts ReadAt calls.
type countingStore struct {
	tier.ObjectStore
	reads atomic.Int64
}

func (s *countingStore) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	s.reads.Add(1)
	return s.ObjectStore.ReadAt(ctx, key, p, off)
}

// blockingStore blocks reads of log objects at or after from until their context ends.
type blockingStore struct {
	tier.ObjectStore
	from    int64
	started chan struct{}
	active  atomic.Int64
}

func (s *blockingStore) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	if off >= s.from && filepath.Ext(key) == ".log" {
		s.active.Add(1)
		defer s.active.Add(-1)
		s.started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	return s.ObjectStore.ReadAt(ctx, key, p, off)
}

func TestReaderConfig(t *testing.T) {
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []tier.ReaderConfig{
		{},
		{CacheDir: t.TempDir(), ChunkSize: 10},
		{CacheDir: t.TempDir(), MaxParallel: -1},
		{CacheDir: t.TempDir(), CacheBytes: -1},
	} {
		if r, err := tier.NewReader(st, cfg, nil, nil); err == nil {
			r.Close()
			t.Errorf("NewReader(%+v) accepted", cfg)
		}
	}
	r, err := tier.NewReader(st, tier.ReaderConfig{CacheDir: t.TempDir()}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestReaderMemoryLayer: with MemBytes, chunks just fetched (and read ahead) are served from
// memory: repeated reads of a chunk make no GET and read no cache file, and the bytes are
// the same as from local disk.
func TestReaderMemoryLayer(t *testing.T) {
	f := getFixture(t)
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	segs := upload(t, fs, f, uploadOpts{})
	store := &countingStore{ObjectStore: fs}
	r, reg, dir := newReader(t, store, func(c *tier.ReaderConfig) { c.MemBytes = 64 << 20; c.ReadAhead = -1 })
	seg, info := segs[0], f.infos[0]
	want := f.localRead(t, info, seg.BaseOffset, 300, true)
	got, err := r.Read(t.Context(), seg, seg.BaseOffset, 300, true)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("first read: %v", err)
	}
	reads := store.reads.Load()
	// A chunk fetched once is not written to a cache file (a catch-up reads it once).
	if n := cachedChunks(dir); n != 0 {
		t.Fatalf("%d cache files after one read", n)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	for range 5 {
		got, err := r.Read(t.Context(), seg, seg.BaseOffset, 300, true)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read from memory: %v", err)
		}
	}
	if n := store.reads.Load(); n != reads {
		t.Fatalf("%d more GETs for a chunk held in memory", n-reads)
	}
	if hits := metric(t, reg, "sediment_tier_cache_hits_total"); hits < 5 {
		t.Fatalf("%v cache hits", hits)
	}

	// Memory for one chunk only: a chunk pushed out of memory and fetched again is worth
	// a cache file.
	r2, _, dir2 := newReader(t, store, func(c *tier.ReaderConfig) { c.MemBytes = testChunk; c.ReadAhead = -1 })
	for _, s := range []tier.RemoteSegment{segs[0], segs[1], segs[0]} {
		if _, err := r2.Read(t.Context(), s, s.BaseOffset, 300, true); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for cachedChunks(dir2) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a chunk fetched twice was not written to the cache files")
		}
		time.Sleep(10 * time.Millisecond) // written in the background
	}
}

// TestReaderFetchesEachChunkOnce: consumers catching up on many segments at once, each
// reading a little at a time with read-ahead on, make the reader GET every byte of the
// objects once: a read-ahead that lost the race to another fetch of its chunk does not
// fetch it again.
func TestReaderFetchesEachChunkOnce(t *testing.T) {
	f := getFixture(t)
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	segs := upload(t, fs, f, uploadOpts{})
	r, reg, _ := newReader(t, fs, func(c *tier.ReaderConfig) { c.MemBytes = 64 << 20; c.ReadAhead = 2 })
	want := readRoundRobin(t, r, f, segs)
	if got := int64(metric(t, reg, "sediment_tier_remote_fetch_bytes_total")); got != want {
		t.Fatalf("fetched %d bytes for %d bytes of objects and indexes", got, want)
	}
}

// TestReaderSequentialReadsFetchOnce: a consumer's next read starts at the batch where its
// last read ended, not at the index entry below it (entries key a batch's last offset, so
// that entry names the batch before, in a chunk the reader has passed). With memory for
// only the chunk being read and the ones read ahead, nothing is fetched twice.
func TestReaderSequentialReadsFetchOnce(t *testing.T) {
	f := getFixture(t)
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	segs := upload(t, fs, f, uploadOpts{})
	r, reg, _ := newReader(t, fs, func(c *tier.ReaderConfig) { c.MemBytes = 3 * testChunk; c.ReadAhead = -1 })
	var want int64
	for i, s := range segs {
		want += s.Size
		fi, err := os.Stat(f.infos[i].IndexPath)
		if err != nil {
			t.Fatal(err)
		}
		want += fi.Size()
		for next := s.BaseOffset; next <= s.EndOffset; {
			b, err := r.Read(t.Context(), s, next, 1000, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, f.localRead(t, f.infos[i], next, 1000, true)) {
				t.Fatalf("segment %d offset %d: remote read differs from the local one", i, next)
			}
			for len(b) > 0 {
				next = int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
				b = b[12+int(binary.BigEndian.Uint32(b[8:])):]
			}
		}
	}
	if got := int64(metric(t, reg, "sediment_tier_remote_fetch_bytes_total")); got != want {
		t.Fatalf("fetched %d bytes for %d bytes of objects and indexes", got, want)
	}
}

// recordingStore records the ranges read.
type recordingStore struct {
	tier.ObjectStore
	mu    sync.Mutex
	reads map[string][]int64 // key -> offsets read
}

func (s *recordingStore) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	s.mu.Lock()
	s.reads[key] = append(s.reads[key], off)
	s.mu.Unlock()
	return s.ObjectStore.ReadAt(ctx, key, p, off)
}

func (s *recordingStore) read(key string, off int64) bool { return s.count(key, off) > 0 }

func (s *recordingStore) count(key string, off int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.reads[key] {
		if o == off {
			n++
		}
	}
	return n
}

// TestReaderReadsAheadIntoNextSegment: a consumer reading to the end of a segment with
// ReadThen finds the next segment's index and first chunk already fetched.
func TestReaderReadsAheadIntoNextSegment(t *testing.T) {
	f := getFixture(t)
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	segs := upload(t, fs, f, uploadOpts{})
	rs := &recordingStore{ObjectStore: fs, reads: map[string][]int64{}}
	r, reg, _ := newReader(t, rs, func(c *tier.ReaderConfig) { c.MemBytes = 1 << 20; c.ReadAhead = 2 })
	for i := 0; i+1 < 4; i++ {
		s, next := segs[i], segs[i+1]
		for off := s.BaseOffset; off <= s.EndOffset; {
			b, err := r.ReadThen(t.Context(), s, &next, off, 1000, true)
			if err != nil {
				t.Fatal(err)
			}
			for len(b) > 0 {
				off = int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
				b = b[12+int(binary.BigEndian.Uint32(b[8:])):]
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for !rs.read(objKey(next, tier.KindIndex), 0) || !rs.read(objKey(next, tier.KindLog), 0) {
			if time.Now().After(deadline) {
				t.Fatalf("segment %d read to its end; segment %d's index and first chunk were not read ahead", i, i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		hits := metric(t, reg, "sediment_tier_cache_hits_total")
		b, err := r.Read(t.Context(), next, next.BaseOffset, 1000, true)
		if err != nil || len(b) == 0 {
			t.Fatal(len(b), err)
		}
		if metric(t, reg, "sediment_tier_cache_hits_total") == hits {
			t.Fatalf("segment %d's first read found nothing in the cache", i+1)
		}
		if n := rs.count(objKey(next, tier.KindLog), 0); n != 1 {
			t.Fatalf("segment %d's first chunk was fetched %d times", i+1, n)
		}
	}
}
