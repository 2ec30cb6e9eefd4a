package segment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// fill appends n batches of 3 records and returns the end offset of each batch.
func fill(t *testing.T, l *Log, n int) []int64 {
	t.Helper()
	var ends []int64
	for range n {
		r := mustAppend(t, l, batchAt(1000, values(3, "r")...))
		ends = append(ends, r.LastOffset+1)
	}
	return ends
}

func activeLogPath(l *Log) string {
	segs := l.Segments()
	return segs[len(segs)-1].LogPath
}

func TestTornTail(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t *testing.T, path string, size int64, lastBatch int64)
		keep    int // batches that survive
	}{
		{"mid-batch truncation", func(t *testing.T, path string, size, last int64) {
			os.Truncate(path, size-5)
		}, 9},
		{"garbage over the last bytes", func(t *testing.T, path string, size, last int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt([]byte("garbage!"), size-8)
			f.Close()
		}, 9},
		{"garbage appended", func(t *testing.T, path string, size, last int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt([]byte(strings.Repeat("\xff", 100)), size)
			f.Close()
		}, 10},
		{"torn header", func(t *testing.T, path string, size, last int64) {
			os.Truncate(path, size-last+20)
		}, 9},
		{"zeroed tail (preallocation)", func(t *testing.T, path string, size, last int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt(make([]byte, 4096), size)
			f.Close()
		}, 10},
		{"corrupt middle batch drops the rest", func(t *testing.T, path string, size, last int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt([]byte{0xde, 0xad}, size-3*last+70)
			f.Close()
		}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := DefaultConfig()
			cfg.IndexIntervalBytes = 100
			l, err := Open(dir, cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ends := fill(t, l, 10)
			l.Sync()
			path := activeLogPath(l)
			st, _ := os.Stat(path)
			batchSize := st.Size() / 10
			l.abandon()
			tc.corrupt(t, path, st.Size(), batchSize)

			logger, buf := testLogger(t)
			l2 := openTest(t, dir, cfg, Options{Logger: logger})
			want := ends[tc.keep-1]
			if l2.LogEndOffset() != want {
				t.Fatalf("leo %d, want %d", l2.LogEndOffset(), want)
			}
			if got := readAll(t, l2, 0, 1<<20); int64(len(got)) != want {
				t.Fatalf("%d records", len(got))
			}
			if st, _ := os.Stat(path); st.Size() != int64(tc.keep)*batchSize {
				t.Fatalf("file is %d bytes, want %d", st.Size(), int64(tc.keep)*batchSize)
			}
			if out := buf.String(); !strings.Contains(out, "truncating corrupt or torn tail") || !strings.Contains(out, "bytes_dropped") || !strings.Contains(out, path) {
				t.Fatalf("recovery not logged: %s", out)
			}
			// Appends continue at the recovered end, and a reopen agrees.
			r := mustAppend(t, l2, batchAt(1, "after"))
			if r.FirstOffset != want {
				t.Fatalf("append after recovery at %d", r.FirstOffset)
			}
			l2.Close()
			l3 := openTest(t, dir, cfg, Options{})
			if l3.LogEndOffset() != want+1 {
				t.Fatalf("reopen leo %d", l3.LogEndOffset())
			}
		})
	}
}

func TestIndexRebuild(t *testing.T) {
	cases := []struct {
		name   string
		damage func(dir string, seg SegmentInfo)
	}{
		{"missing indexes", func(dir string, s SegmentInfo) {
			os.Remove(s.IndexPath)
			os.Remove(s.TimeIndexPath)
		}},
		{"index entry beyond the file", func(dir string, s SegmentInfo) {
			b, _ := os.ReadFile(s.IndexPath)
			b = append(b, 0, 0, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff)
			os.WriteFile(s.IndexPath, b, 0o644)
		}},
		{"index out of order", func(dir string, s SegmentInfo) {
			b, _ := os.ReadFile(s.IndexPath)
			copy(b[8:16], b[0:8])
			os.WriteFile(s.IndexPath, b, 0o644)
		}},
		{"partial index entry", func(dir string, s SegmentInfo) {
			b, _ := os.ReadFile(s.IndexPath)
			os.WriteFile(s.IndexPath, b[:len(b)-3], 0o644)
		}},
		{"time index garbage", func(dir string, s SegmentInfo) {
			os.WriteFile(s.TimeIndexPath, []byte(strings.Repeat("\x7f", 36)), 0o644)
		}},
	}
	for _, tc := range cases {
		for _, sealed := range []bool{true, false} {
			name := tc.name + map[bool]string{true: " sealed", false: " active"}[sealed]
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				cfg := DefaultConfig()
				cfg.IndexIntervalBytes = 64
				cfg.SegmentBytes = 4096
				l, err := Open(dir, cfg, Options{})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 120 {
					mustAppend(t, l, batchAt(int64(1000+i), values(2, "x")...))
				}
				segs := l.Segments()
				if len(segs) < 3 {
					t.Fatalf("%d segments", len(segs))
				}
				leo := l.LogEndOffset()
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				victim := segs[0]
				if !sealed {
					victim = segs[len(segs)-1]
				}
				if b, _ := os.ReadFile(victim.IndexPath); len(b) < 16 {
					t.Fatalf("index too small to damage: %d", len(b))
				}
				tc.damage(dir, victim)
				logger, buf := testLogger(t)
				l2 := openTest(t, dir, cfg, Options{Logger: logger})
				if l2.LogEndOffset() != leo {
					t.Fatalf("leo %d, want %d", l2.LogEndOffset(), leo)
				}
				got := readAll(t, l2, 0, 100)
				if int64(len(got)) != leo {
					t.Fatalf("%d records", len(got))
				}
				for i, r := range got {
					if r.Offset != int64(i) {
						t.Fatalf("record %d at offset %d", i, r.Offset)
					}
				}
				if off, ts, ok, err := l2.OffsetForTimestamp(1050); err != nil || !ok || off != 100 || ts != 1050 {
					t.Fatalf("OffsetForTimestamp = %d %d %v %v", off, ts, ok, err)
				}
				b, _ := os.ReadFile(victim.IndexPath)
				if err := checkOffsetIndex(b, victim.Size); err != nil || len(b) == 0 {
					t.Fatalf("index not rebuilt (%d bytes): %v", len(b), err)
				}
				if !strings.Contains(buf.String(), "segment") {
					t.Fatalf("nothing logged: %s", buf.String())
				}
			})
		}
	}
}

func TestCleanReopenDoesNotScan(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l, 5)
	path := activeLogPath(l)
	l.Close()
	if !fileExists(filepath.Join(dir, cleanMarkerName)) {
		t.Fatal("no clean-shutdown marker after Close")
	}
	// Corrupt a record in the middle: a clean open trusts the segment and does not notice
	// (it reads the index and only header-scans the batches after the last index entry).
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	st, _ := f.Stat()
	f.WriteAt([]byte{0xee}, st.Size()/2+30)
	f.Close()
	l2 := openTest(t, dir, DefaultConfig(), Options{})
	if fileExists(filepath.Join(dir, cleanMarkerName)) {
		t.Fatal("clean-shutdown marker survives Open")
	}
	if l2.LogEndOffset() != 15 {
		t.Fatalf("leo %d", l2.LogEndOffset())
	}
}

func TestRecoverEmptyAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "00000000000000000000.log"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "00000000000000000042.index"), []byte("orphan!!"), 0o644)
	os.WriteFile(filepath.Join(dir, "leader-epoch-checkpoint.tmp"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep me"), 0o644)
	l := openTest(t, dir, DefaultConfig(), Options{})
	if l.LogEndOffset() != 0 {
		t.Fatal(l.LogEndOffset())
	}
	if fileExists(filepath.Join(dir, "00000000000000000042.index")) || fileExists(filepath.Join(dir, "leader-epoch-checkpoint.tmp")) {
		t.Fatal("orphan files not removed")
	}
	if !fileExists(filepath.Join(dir, "notes.txt")) {
		t.Fatal("unrelated file removed")
	}
	mustAppend(t, l, segmenttest.Plain("a"))
}
