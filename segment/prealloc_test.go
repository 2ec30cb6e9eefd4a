//go:build linux

package segment

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sedimentio/sediment/segment/vfs"
)

// allocated is the disk space a file holds (st_blocks), and its size.
func allocated(t *testing.T, path string) (blocks, size int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512, fi.Size()
}

// skipWithoutFallocate skips on a file system that cannot reserve (tmpfs can; some cannot).
func skipWithoutFallocate(t *testing.T, dir string) {
	f, err := vfs.OS{}.Create(dir + "/probe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.(vfs.Preallocator).Preallocate(0, 1<<20); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no fallocate on %s: %v", dir, err)
	} else if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir + "/probe")
}

// TestPreallocation: the active segment reserves disk space ahead of its appends without
// changing its size, so readers, a reopen and recovery see exactly the appended batches;
// the reservation stays within segment.bytes, and a roll releases the sealed segment's.
func TestPreallocation(t *testing.T) {
	dir := t.TempDir()
	skipWithoutFallocate(t, dir)
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	l := openTest(t, dir, cfg, Options{})
	value := strings.Repeat("x", 8000)
	appendN := func(l *Log, n int) {
		for range n {
			mustAppend(t, l, batchAt(1, value))
		}
	}

	appendN(l, 4) // 32 KiB: below preallocMin, nothing reserved
	seg := l.Segments()[0]
	if blocks, size := allocated(t, seg.LogPath); size != seg.Size || blocks > size+8192 {
		t.Fatalf("small segment: %d bytes allocated for size %d (segment %d): want nothing reserved", blocks, size, seg.Size)
	}
	appendN(l, 26) // 240 KiB
	seg = l.Segments()[0]
	blocks, size := allocated(t, seg.LogPath)
	if size != seg.Size {
		t.Fatalf("file size %d, segment size %d: the reservation changed the size", size, seg.Size)
	}
	if blocks < size+32<<10 {
		t.Fatalf("%d bytes allocated for size %d: want space reserved ahead", blocks, size)
	}
	if blocks > cfg.SegmentBytes+4096 {
		t.Fatalf("%d bytes allocated: more than segment.bytes %d", blocks, cfg.SegmentBytes)
	}
	if got := readAll(t, l, 0, 1<<20); len(got) != 30 {
		t.Fatalf("read %d records, want 30", len(got))
	}

	// A reopen (as after a crash: the reservation is still on disk) sees the same log and
	// appends after it.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg, Options{})
	if end := l.LogEndOffset(); end != 30 {
		t.Fatalf("log end %d after reopening, want 30", end)
	}
	if blocks, size := allocated(t, l.Segments()[0].LogPath); blocks < size+32<<10 {
		t.Fatalf("%d bytes allocated for size %d after reopening: want the reservation kept", blocks, size)
	}
	// Sealed as segment.ms would, with space reserved: by the previous process, then by
	// this one.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendN(l, 10)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendN(l, 140) // rolls at segment.bytes, whose reservation stops there
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("%d segments, want 4", len(segs))
	}
	got := readAll(t, l, 0, 1<<20)
	if len(got) != 180 {
		t.Fatalf("read %d records, want 180", len(got))
	}
	for i, r := range got {
		if r.Offset != int64(i) || r.Value != value {
			t.Fatalf("record %d: offset %d, %d value bytes", i, r.Offset, len(r.Value))
		}
	}
	for _, s := range segs[:len(segs)-1] {
		blocks, size := allocated(t, s.LogPath)
		if size != s.Size || blocks >= size+8192 {
			t.Errorf("sealed segment %s: %d bytes allocated for size %d (segment %d): want the reservation released", s.LogPath, blocks, size, s.Size)
		}
	}

	// A truncation (a follower's divergent tail) frees what was reserved past the cut; the
	// next appends reserve again.
	active := segs[len(segs)-1]
	if err := l.TruncateTo(active.BaseOffset + 10); err != nil {
		t.Fatal(err)
	}
	appendN(l, 5)
	active = l.Segments()[len(l.Segments())-1]
	if blocks, size := allocated(t, active.LogPath); size != active.Size || blocks < size+32<<10 {
		t.Fatalf("after a truncation and appends: %d bytes allocated for size %d (segment %d): want space reserved ahead", blocks, size, active.Size)
	}
	if end := l.LogEndOffset(); end != active.BaseOffset+15 {
		t.Fatalf("log end %d after truncating to %d and 5 appends", end, active.BaseOffset+10)
	}
}

// noPrealloc is an OS file system whose files refuse every reservation, counting tries.
type noPrealloc struct {
	vfs.OS
	tries *int
}

type noPreallocFile struct {
	vfs.File
	tries *int
}

func (f noPreallocFile) Preallocate(off, n int64) error {
	*f.tries++
	return errors.ErrUnsupported
}

func (fs noPrealloc) Create(name string) (vfs.File, error) {
	f, err := fs.OS.Create(name)
	return noPreallocFile{f, fs.tries}, err
}

func (fs noPrealloc) OpenReadWrite(name string) (vfs.File, error) {
	f, err := fs.OS.OpenReadWrite(name)
	return noPreallocFile{f, fs.tries}, err
}

// TestPreallocationRefused: a file system that cannot reserve costs one try per segment
// and nothing else.
func TestPreallocationRefused(t *testing.T) {
	tries := 0
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	logger, logs := testLogger(t)
	l := openTest(t, t.TempDir(), cfg, Options{FS: noPrealloc{tries: &tries}, Logger: logger})
	for range 60 {
		mustAppend(t, l, batchAt(1, strings.Repeat("y", 8000)))
	}
	if tries != 1 {
		t.Errorf("%d reservations tried, want 1", tries)
	}
	if !strings.Contains(logs.String(), "reserving disk space") {
		t.Errorf("the refusal is not logged: %s", logs)
	}
	if got := readAll(t, l, 0, 1<<20); len(got) != 60 {
		t.Fatalf("read %d records, want 60", len(got))
	}
}
