package segment

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sedimentio/sediment/segment/vfs"
)

// failingFS fails every write to a cleaned segment's log while fail is set.
type failingFS struct {
	vfs.FS
	fail atomic.Bool
}

var errInjected = errors.New("injected write failure")

func (f *failingFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, logSuffix+cleanedSuffix) {
		return file, err
	}
	return failingFile{File: file, fs: f}, nil
}

type failingFile struct {
	vfs.File
	fs *failingFS
}

func (f failingFile) Write(b []byte) (int, error) {
	if f.fs.fail.Load() {
		return 0, errInjected
	}
	return f.File.Write(b)
}

// TestCleanWriteFailure: a clean whose cleaned copy cannot be written
// returns the error (no panic), leaves no .cleaned file and no change to the
// log, and the next clean, with the disk well again, succeeds.
func TestCleanWriteFailure(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	cfg.DeleteRetention = 0
	base, _ := cleanCrashSetup(t, cfg)
	fsys := &failingFS{FS: base}
	l, err := Open("/data/t-0", cfg, Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := l.Segments()
	fsys.fail.Store(true)
	if _, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); !errors.Is(err, errInjected) {
		t.Fatalf("clean with failing writes: %v, want %v", err, errInjected)
	}
	entries, err := fsys.ReadDir("/data/t-0")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) {
			t.Fatalf("%s left behind by a failed clean", e.Name())
		}
	}
	if after := l.Segments(); len(after) != len(before) {
		t.Fatalf("a failed clean changed the log: %d segments, before %d", len(after), len(before))
	}
	fsys.fail.Store(false)
	if _, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); err != nil {
		t.Fatalf("clean after the disk recovered: %v", err)
	}
}
