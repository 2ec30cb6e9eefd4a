package segment

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/segment/vfs"
)

// cleanCrashSetup builds, on a MemFS where everything is durable, a compacted log with a
// clean section (one clean done), a dirty section of sealed segments and an uncleaned
// tail in the active segment; it returns the filesystem and the records appended.
func cleanCrashSetup(t *testing.T, cfg Config) (*vfs.MemFS, []origRec) {
	fsys := vfs.NewMem()
	l, err := Open("/data/t-0", cfg, Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer l.abandon()
	w := newWorkload(11, 12)
	w.tombs = 4
	w.plain = true // the codecs are TestClean*'s business; this is about files
	w.txn = true   // markers, aborted records and index entries go too
	orig := w.appendBatches(t, l, 30)
	w.endTxns(t, l)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	orig = append(orig, w.appendBatches(t, l, 25)...)
	w.endTxns(t, l)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	orig = append(orig, w.appendBatches(t, l, 3)...) // the tail, in the active segment
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	return fsys, orig
}

// checkCleanCrash opens the log a crash during a clean left and checks it: recovery
// succeeds and leaves no .cleaned or .swap file, offsets strictly increase (no record is
// there twice: the old and the cleaned copy of a segment never coexist), every record is
// the one appended at its offset, every key's last committed record is there (nothing
// lost; a tombstone may be gone with delete.retention.ms 0), the uncleaned tail is whole,
// and every aborted-transaction entry has its marker and every transactional batch its
// marker after it. Then a clean must bring the log to exactly its compacted form.
func checkCleanCrash(fsys *vfs.MemFS, cfg Config, orig []origRec, tailFrom int64) (err error) {
	l, err := Open("/data/t-0", cfg, Options{FS: fsys})
	if err != nil {
		return fmt.Errorf("recovery failed: %w", err)
	}
	defer l.Close()
	entries, _ := fsys.ReadDir("/data/t-0")
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) || strings.HasSuffix(e.Name(), swapSuffix) {
			return fmt.Errorf("%s left after recovery", e.Name())
		}
	}
	ft := &failT{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != ft {
				panic(r)
			}
		}()
		recs := logRecords(ft, l)
		byOff := map[int64]*origRec{}
		last := map[string]*origRec{}
		for i := range orig {
			byOff[orig[i].off] = &orig[i]
			if !orig[i].aborted() {
				last[string(orig[i].key)] = &orig[i]
			}
		}
		got := map[int64]bool{}
		for _, r := range recs {
			o := byOff[r.Offset]
			if o == nil || !bytes.Equal(r.Key, o.key) || !bytes.Equal(r.Value, o.value) || (r.Value == nil) != (o.value == nil) || r.Timestamp != o.ts {
				ft.Fatalf("record at %d is not the one appended there", r.Offset)
			}
			got[r.Offset] = true
		}
		tombsMayGo := cfg.DeleteRetention == 0
		for k, o := range last {
			if !got[o.off] && !(tombsMayGo && o.value == nil) {
				ft.Fatalf("key %q lost: its last record at %d is gone", k, o.off)
			}
		}
		for _, o := range orig {
			if o.off >= tailFrom && !got[o.off] && !o.aborted() {
				ft.Fatalf("tail record at %d lost", o.off)
			}
		}
		checkTxnLog(ft, "recovered", l)
		st, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset())
		if err != nil {
			ft.Fatalf("clean after recovery: %v", err)
		}
		checkCompacted(ft, "clean after recovery", l, orig, st.EndOffset, tombsMayGo)
		checkTxnLog(ft, "clean after recovery", l)
	}()
	return ft.err
}

// failT lets the test helpers that take a testing.TB report to an error instead.
type failT struct {
	testing.TB
	err error
}

func (f *failT) Helper() {}
func (f *failT) Fatalf(format string, args ...any) {
	f.err = fmt.Errorf(format, args...)
	panic(f)
}
func (f *failT) Fatal(args ...any)                 { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *failT) Errorf(format string, args ...any) { f.Fatalf(format, args...) }

// cleanAtEveryStep cuts the power at every filesystem operation of a clean in turn (a
// strict and a torn crash each time) and checks each crashed state; it returns the first
// failure and the number of steps.
func cleanAtEveryStep(t *testing.T, naive bool) (error, int64) {
	cfg := compactConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	cfg.DeleteRetention = 0 // the clean drops tombstones, markers and index entries too
	base, orig := cleanCrashSetup(t, cfg)
	probe, err := Open("/data/t-0", cfg, Options{FS: base.CrashClone()})
	if err != nil {
		t.Fatal(err)
	}
	segs := probe.Segments()
	tailFrom := segs[len(segs)-1].BaseOffset
	probe.abandon()
	for n := int64(1); ; n++ {
		fired := false
		for _, torn := range []bool{false, true} {
			fsys := base.CrashClone()
			l, err := Open("/data/t-0", cfg, Options{FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			l.cl.naiveSwap = naive
			var r *rand.Rand
			if torn {
				r = rand.New(rand.NewPCG(uint64(n), 2))
			}
			crashed := fsys.CrashAfter(n, r, nil)
			if _, err := l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset()); err != nil {
				t.Fatalf("clean: %v", err)
			}
			l.abandon()
			select {
			case c := <-crashed:
				fired = true
				if err := checkCleanCrash(c, cfg, orig, tailFrom); err != nil {
					return fmt.Errorf("crash at step %d (torn %v): %w", n, torn, err), n
				}
			default:
			}
		}
		if !fired {
			if n == 1 {
				t.Fatal("the clean touched no file")
			}
			return nil, n - 1
		}
	}
}

// TestPowerLossDuringClean: a power cut at any step of a clean (writing the cleaned
// segments, committing, swapping, checkpointing) loses nothing and duplicates nothing
// after recovery, which finishes or rolls back the interrupted swap.
func TestPowerLossDuringClean(t *testing.T) {
	err, steps := cleanAtEveryStep(t, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps", steps)
}

// TestPowerLossNaiveSwapIsCaught checks the test itself: swapping cleaned segments in by
// plain renames (no .swap commit) must be caught leaving overlapping segments.
func TestPowerLossNaiveSwapIsCaught(t *testing.T) {
	err, _ := cleanAtEveryStep(t, true)
	if err == nil {
		t.Fatal("a naive swap survived every crash: the clean power-loss test cannot fail")
	}
	t.Logf("caught: %v", err)
}

// TestPowerLossDuringSwapRecovery cuts the power at every step of an Open that completes
// an interrupted swap, then checks the next Open.
func TestPowerLossDuringSwapRecovery(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	base, orig := cleanCrashSetup(t, cfg)
	// Find a crash that leaves a committed swap behind.
	var interrupted *vfs.MemFS
	for n := int64(1); interrupted == nil; n++ {
		fsys := base.CrashClone()
		l, err := Open("/data/t-0", cfg, Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		crashed := fsys.CrashAfter(n, nil, nil)
		l.Clean(context.Background(), NewOffsetMap(1<<16), l.LogEndOffset())
		l.abandon()
		var c *vfs.MemFS
		select {
		case c = <-crashed:
		default:
			t.Fatal("no crash left a committed swap")
		}
		entries, _ := c.ReadDir("/data/t-0")
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), logSuffix+swapSuffix) {
				interrupted = c
			}
		}
	}
	for n := int64(1); ; n++ {
		fsys := interrupted.CrashClone()
		crashed := fsys.CrashAfter(n, nil, nil)
		l, err := Open("/data/t-0", cfg, Options{FS: fsys})
		if err != nil {
			t.Fatalf("recovery: %v", err)
		}
		l.abandon()
		select {
		case c := <-crashed:
			if err := checkCleanCrash(c, cfg, orig, math.MaxInt64); err != nil {
				t.Fatalf("crash at step %d of the swap's recovery: %v", n, err)
			}
		default:
			t.Logf("%d steps", n-1)
			return
		}
	}
}
