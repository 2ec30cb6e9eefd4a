package segment

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
)

var crashSeed = flag.Uint64("crash.seed", 0, "seed of the power-loss tests (0: from the clock)")

func powerLossSeed(t *testing.T) uint64 {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", seed, seed)
	return seed
}

// TestPowerLossGroupCommit cuts the power at random points while several producers append
// with group commit, and checks after each crash that recovery works, that every batch
// WaitDurable acknowledged is there byte for byte at its offset, and that Read serves no
// torn or corrupt batch.
func TestPowerLossGroupCommit(t *testing.T) {
	seed := powerLossSeed(t)
	res := runPowerLoss(t, powerLossConfig{policy: FlushGroupCommit, rounds: 40, seed: seed})
	t.Log(res)
	if f := res.failures(false); f != "" {
		t.Fatalf("seed %d: %s", seed, f)
	}
	if res.ackedChecked == 0 {
		t.Fatal("no acknowledged batch was ever checked")
	}
}

// TestPowerLossFlushOS runs the same crashes with FlushOS, Kafka's policy: WaitDurable
// returns at once, so acknowledged batches are lost, as the policy documents; recovery
// must still work and serve only whole batches.
func TestPowerLossFlushOS(t *testing.T) {
	seed := powerLossSeed(t)
	res := runPowerLoss(t, powerLossConfig{policy: FlushOS, rounds: 20, seed: seed})
	t.Log(res)
	if res.lost == 0 {
		t.Fatalf("seed %d: FlushOS lost no acknowledged batch in %d crashes: the crashes do not cut where they should", seed, res.rounds)
	}
	if f := res.failures(true); f != "" {
		t.Fatalf("seed %d: %s", seed, f)
	}
}

// TestPowerLossLyingDisk checks the harness itself: on a disk whose syncs do nothing,
// group commit must be seen losing acknowledged batches.
func TestPowerLossLyingDisk(t *testing.T) {
	seed := powerLossSeed(t)
	res := runPowerLoss(t, powerLossConfig{policy: FlushGroupCommit, rounds: 4, seed: seed, lyingDisk: true})
	t.Log(res)
	if res.failures(false) == "" {
		t.Fatalf("seed %d: no loss detected with syncs ignored: the power-loss test cannot fail", seed)
	}
}

// TestPowerLossOneBatch is the deterministic case: one batch acknowledged, then the
// power is cut. Group commit keeps it, also when the partition directory was created by
// someone else without a sync (the broker claiming it; the data directory above it is the
// broker's to make durable); FlushOS loses it.
func TestPowerLossOneBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  FlushPolicy
		premade bool // the directory exists, unsynced, before Open
		kept    bool
	}{
		{"group-commit", FlushGroupCommit, false, true},
		{"group-commit/dir-made-unsynced", FlushGroupCommit, true, true},
		{"os", FlushOS, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			if tc.premade {
				if err := vfs.MkdirAllDurable(fsys, "/data"); err != nil {
					t.Fatal(err)
				}
				if err := fsys.MkdirAll("/data/t-0"); err != nil {
					t.Fatal(err)
				}
			}
			cfg := DefaultConfig()
			cfg.Flush = tc.policy
			l := openTest(t, "/data/t-0", cfg, Options{FS: fsys})
			r := mustAppend(t, l, segmenttest.Plain("a"))
			if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
				t.Fatal(err)
			}
			l2 := openTest(t, "/data/t-0", cfg, Options{FS: fsys.CrashClone()})
			if kept := l2.LogEndOffset() == 1; kept != tc.kept {
				t.Fatalf("after the crash the log end offset is %d: kept %v, want %v", l2.LogEndOffset(), kept, tc.kept)
			}
		})
	}
}

type powerLossConfig struct {
	policy    FlushPolicy
	rounds    int
	seed      uint64
	lyingDisk bool // syncs do nothing (MemFS.SetIgnoreSyncs)
}

type powerLossResult struct {
	rounds, tornRounds, inOpen int // crashes; torn ones; those that came during Open
	appended, ackedChecked     int // batches acknowledged, and checks of one after a crash
	lost, lossRounds           int
	startViolations            int // crashes after which the log start offset was outside its bounds
	gaps                       int // crashes after which offsets below the log end had no batch
	epochViolations            int // batches found whose leader epoch the epoch cache does not name
	survivors, truncated       int // unacknowledged batches found after a crash; tails cut
	cleanRestarts              int
	deletedByRetention         int
	firstLoss                  string
	elapsed                    time.Duration
	opsPerRound                int64
}

// failures describes what went wrong, "" if nothing did. Losing acknowledged batches may
// be allowed (FlushOS); the rest never is: checkpoints and rolls sync whatever the policy.
func (r powerLossResult) failures(lossAllowed bool) string {
	if r.startViolations+r.gaps+r.epochViolations == 0 && (lossAllowed || r.lost == 0) {
		return ""
	}
	return fmt.Sprintf("%d acknowledged batches lost in %d of %d crashes; log start offset wrong after %d, a gap below the log end after %d, leader epochs wrong for %d batches; first:\n%s",
		r.lost, r.lossRounds, r.rounds, r.startViolations, r.gaps, r.epochViolations, r.firstLoss)
}

func (r powerLossResult) String() string {
	return fmt.Sprintf("%d crashes (%d torn, %d during Open) in %v, %d batches acknowledged, %d checks of an acknowledged batch after a crash, "+
		"%d lost in %d crashes, log start offset wrong after %d, gaps after %d, leader epochs wrong for %d, %d unacknowledged survivors, %d tails truncated, %d clean restarts, %d acknowledged batches deleted by retention, %d fs ops per round on average",
		r.rounds, r.tornRounds, r.inOpen, r.elapsed.Round(time.Millisecond), r.appended, r.ackedChecked, r.lost, r.lossRounds, r.startViolations, r.gaps, r.epochViolations,
		r.survivors, r.truncated, r.cleanRestarts, r.deletedByRetention, r.opsPerRound)
}

// durableState is what the test holds durable at an instant: the acknowledged batches and
// bounds on the log start offset.
type durableState struct {
	acked   map[int64][]byte // base offset -> the batch's bytes as stored
	startLo int64            // the log start offset after the last completed retention
	startHi int64            // the highest log start offset a retention begun could set
}

func (d durableState) clone() durableState {
	d.acked = maps.Clone(d.acked)
	return d
}

// runPowerLoss runs rounds of: open the log on the filesystem a crash left (recovery must
// succeed), check it against what was acknowledged before that crash, then append from
// several producers, with rolls, retention, DeleteRecords and reads mixed in, until the
// power is cut at a random filesystem operation (possibly during Open itself).
func runPowerLoss(t *testing.T, pc powerLossConfig) powerLossResult {
	const (
		dir     = "/data/t-0"
		writers = 4
		maxOps  = 1200 // a crash comes within this many filesystem operations of a round's start
	)
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 256
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 128 << 10
	cfg.Flush = pc.policy
	clk := newClock()
	var res powerLossResult
	start := time.Now()

	fsys := vfs.NewMem()
	if err := vfs.MkdirAllDurable(fsys, "/data"); err != nil { // the mounted data directory
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex // guards cur
		cur = durableState{acked: map[int64][]byte{}}
	)
	var totalOps int64
	for round := 0; ; round++ {
		if pc.lyingDisk {
			fsys.SetIgnoreSyncs(true)
		}
		rng := rand.New(rand.NewPCG(pc.seed, uint64(round)))
		var snap durableState
		var crashed <-chan *vfs.MemFS
		last := round == pc.rounds
		if !last {
			var torn *rand.Rand
			if round%2 == 1 && !pc.lyingDisk { // a lying disk breaks every invariant: tear nothing
				torn = rand.New(rand.NewPCG(pc.seed^0x7077, uint64(round)))
				res.tornRounds++
			}
			n := 1 + rng.Int64N(maxOps)
			if rng.IntN(8) == 0 {
				n = 1 + rng.Int64N(40) // during recovery, or soon after
			}
			crashed = fsys.CrashAfter(n, torn, func() {
				mu.Lock()
				snap = cur.clone()
				mu.Unlock()
			})
		}
		opsBefore := fsys.Ops()

		l, err := Open(dir, cfg, Options{FS: fsys, Now: clk.Now})
		if err != nil {
			t.Fatalf("seed %d round %d: recovery failed: %v", pc.seed, round, err)
		}
		if len(crashed) > 0 {
			res.inOpen++
		}
		mu.Lock()
		expect := cur.clone()
		mu.Unlock()
		if round > 0 {
			checkRecovered(t, pc, round, l, expect, &res, &mu, &cur)
		}
		if last {
			l.Close()
			break
		}

		// Now and then a clean restart, so that crashes also come during Close (indexes,
		// snapshot, clean-shutdown marker) and after an Open that trusts the last segment.
		if rng.IntN(5) == 0 {
			if err := l.Close(); err != nil {
				t.Fatalf("seed %d round %d: Close: %v", pc.seed, round, err)
			}
			if l, err = Open(dir, cfg, Options{FS: fsys, Now: clk.Now}); err != nil {
				t.Fatalf("seed %d round %d: Open after Close: %v", pc.seed, round, err)
			}
			res.cleanRestarts++
		}

		// Cut the unacknowledged survivors now and then, as a follower truncating to its
		// leader would: TruncateTo between crashes.
		mu.Lock()
		ackedEnd := int64(0)
		for _, b := range cur.acked {
			h, _ := ParseBatchHeader(b)
			ackedEnd = max(ackedEnd, h.NextOffset())
		}
		mu.Unlock()
		if to := max(ackedEnd, l.LogStartOffset()); l.LogEndOffset() > to && rng.IntN(2) == 0 {
			if err := l.TruncateTo(to); err != nil {
				t.Fatalf("seed %d round %d: TruncateTo(%d): %v", pc.seed, round, to, err)
			}
			res.truncated++
		}

		ctx, cancel := context.WithCancel(context.Background())
		var stop atomic.Bool
		var wg sync.WaitGroup
		var appended atomic.Int64
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel()
				wr := rand.New(rand.NewPCG(pc.seed, uint64(round*writers+w+1)<<20))
				err := powerLossWriter(ctx, l, wr, int64(w), int16(round), &stop, &appended, &mu, &cur)
				if err != nil && !stop.Load() {
					t.Errorf("seed %d round %d writer %d: %v", pc.seed, round, w, err)
				}
			}()
		}
		var next *vfs.MemFS
		select {
		case next = <-crashed:
		case <-ctx.Done(): // every writer failed
		case <-time.After(time.Minute):
			t.Errorf("seed %d round %d: no crash within a minute", pc.seed, round)
		}
		stop.Store(true)
		wg.Wait()
		cancel()
		if t.Failed() {
			t.FailNow()
		}
		totalOps += fsys.Ops() - opsBefore
		l.abandon()
		res.appended += int(appended.Load())
		res.rounds++
		mu.Lock()
		cur = snap
		mu.Unlock()
		fsys = next
	}
	res.elapsed = time.Since(start)
	if res.rounds > 0 {
		res.opsPerRound = totalOps / int64(res.rounds)
	}
	return res
}

// powerLossWriter appends batches of one idempotent producer (a new epoch each round) and
// records each once WaitDurable covered it; now and then it also rolls, applies retention,
// deletes records or reads, checking what Read serves.
func powerLossWriter(ctx context.Context, l *Log, r *rand.Rand, id int64, epoch int16, stop *atomic.Bool, appended *atomic.Int64, mu *sync.Mutex, cur *durableState) error {
	for seq := int32(0); !stop.Load(); {
		recs := make([]segmenttest.Record, 1+r.IntN(3))
		for i := range recs {
			recs[i].Value = bytes.Repeat([]byte{byte('a' + r.IntN(26))}, 10+r.IntN(300))
		}
		b := segmenttest.Batch{FirstTimestamp: 1_700_000_000_000 + int64(seq), ProducerID: id, ProducerEpoch: epoch, BaseSequence: seq, Records: recs}.Encode()
		res, err := l.AppendLeader(b, int32(epoch))
		if err != nil {
			return fmt.Errorf("append: %w", err)
		}
		seq += int32(len(recs))
		if err := l.WaitDurable(ctx, res.LastOffset+1); err != nil {
			return fmt.Errorf("WaitDurable(%d): %w", res.LastOffset+1, err)
		}
		mu.Lock()
		cur.acked[res.FirstOffset] = b // rewritten in place by AppendLeader: the stored bytes
		mu.Unlock()
		appended.Add(1)

		switch r.IntN(40) {
		case 0:
			if err := l.Roll(); err != nil {
				return fmt.Errorf("roll: %w", err)
			}
		case 1:
			mu.Lock()
			cur.startHi = max(cur.startHi, l.LogEndOffset())
			mu.Unlock()
			if _, err := l.ApplyRetention(); err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			s := l.LogStartOffset()
			mu.Lock()
			cur.startLo = max(cur.startLo, s)
			mu.Unlock()
		case 2:
			to := min(l.LogStartOffset()+int64(r.IntN(20)), l.LogEndOffset())
			mu.Lock()
			cur.startHi = max(cur.startHi, to)
			mu.Unlock()
			s, err := l.DeleteRecordsBefore(to)
			if err != nil {
				return fmt.Errorf("DeleteRecordsBefore(%d): %w", to, err)
			}
			mu.Lock()
			cur.startLo = max(cur.startLo, s)
			mu.Unlock()
		case 3, 4, 5:
			lo, hi := l.LogStartOffset(), l.LogEndOffset()
			if hi > lo {
				if _, err := readChecked(l, lo+r.Int64N(hi-lo), 1+r.IntN(8<<10), hi); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					return err
				}
			}
		}
	}
	return nil
}

// readChecked reads one Slice at off and checks that it holds whole, valid (CRC-checked)
// batches with increasing offsets; it returns their bytes by base offset.
func readChecked(l *Log, off int64, maxBytes int, hw int64) (map[int64][]byte, error) {
	s, err := l.Read(off, maxBytes, hw, true)
	if err != nil {
		return nil, fmt.Errorf("Read(%d): %w", off, err)
	}
	b, err := s.ReadAll()
	s.Release()
	if err != nil {
		return nil, fmt.Errorf("Read(%d): %w", off, err)
	}
	out := map[int64][]byte{}
	prev := int64(-1)
	for len(b) > 0 {
		h, err := ValidateBatch(b)
		if err != nil {
			return nil, fmt.Errorf("Read(%d) served a bad batch: %w", off, err)
		}
		if h.BaseOffset < prev || (prev < 0 && h.LastOffset() < off) {
			return nil, fmt.Errorf("Read(%d) served batch [%d, %d] out of order (after %d)", off, h.BaseOffset, h.LastOffset(), prev)
		}
		out[h.BaseOffset] = b[:h.Size()]
		prev = h.NextOffset()
		b = b[h.Size():]
	}
	return out, nil
}

// checkRecovered reads the whole recovered log and compares it with expect, the state
// recorded just before the crash. It counts losses (fatal for group commit, expected for
// FlushOS) and resets cur to what is now durable.
func checkRecovered(t *testing.T, pc powerLossConfig, round int, l *Log, expect durableState, res *powerLossResult, mu *sync.Mutex, cur *durableState) {
	start, leo := l.LogStartOffset(), l.LogEndOffset()
	if start < expect.startLo || start > max(expect.startHi, expect.startLo) {
		// DeleteRecords or retention acknowledged, then undone (or more deleted than asked).
		res.startViolations++
		if res.firstLoss == "" {
			res.firstLoss = fmt.Sprintf("round %d: recovered log start offset %d outside [%d, %d] (log end %d, %d batches acknowledged)",
				round, start, expect.startLo, expect.startHi, leo, len(expect.acked))
		}
	}
	got := map[int64][]byte{}
	for off := start; off < leo; {
		batches, err := readChecked(l, off, 1+int(uint64(off*7919)%(16<<10)), leo)
		if err != nil {
			t.Fatalf("seed %d round %d: %v", pc.seed, round, err)
		}
		if len(batches) == 0 {
			// Nothing from off to the end: a sealed segment lost its tail, which no
			// policy allows (rolls sync), and the batches there count as lost below.
			res.gaps++
			if res.firstLoss == "" {
				res.firstLoss = fmt.Sprintf("round %d: Read(%d) returned nothing below the log end %d: a sealed segment lost its tail", round, off, leo)
			}
			break
		}
		for base, b := range batches {
			got[base] = b
			h, _ := ParseBatchHeader(b)
			off = max(off, h.NextOffset())
		}
	}
	lost := 0
	kept := map[int64][]byte{}
	epochs := l.LeaderEpochs()
	for base, want := range expect.acked {
		h, _ := ParseBatchHeader(want)
		if h.LastOffset() < start {
			res.deletedByRetention++
			continue
		}
		res.ackedChecked++
		if b, ok := got[base]; !ok || !bytes.Equal(b, want) {
			if lost == 0 && res.firstLoss == "" {
				res.firstLoss = fmt.Sprintf("round %d: batch [%d, %d] acknowledged, recovered log is [%d, %d), found there: %d bytes", round, base, h.LastOffset(), start, leo, len(b))
			}
			lost++
			continue
		}
		kept[base] = want
		// The leader-epoch cache must still say which epoch wrote it (KIP-101): the
		// checkpoint is written durably before a new epoch's first batch.
		epoch := int32(-1)
		for _, e := range epochs {
			if e.StartOffset <= max(base, start) {
				epoch = e.Epoch
			}
		}
		if epoch != h.PartitionLeaderEpoch {
			res.epochViolations++
			if res.firstLoss == "" {
				res.firstLoss = fmt.Sprintf("round %d: batch [%d, %d] of leader epoch %d, epoch cache says %d: %v", round, base, h.LastOffset(), h.PartitionLeaderEpoch, epoch, epochs)
			}
		}
	}
	for base := range got {
		if _, ok := expect.acked[base]; !ok {
			res.survivors++
		}
	}
	res.lost += lost
	if lost > 0 {
		res.lossRounds++
	}
	mu.Lock()
	*cur = durableState{acked: kept, startLo: start, startHi: start}
	mu.Unlock()
}

// TestPowerLossAtEveryStep cuts the power at every filesystem operation of one log
// operation in turn (a strict and a torn crash each time), on a log of several segments
// whose batches were all acknowledged, and checks that the log recovers to a gapless run
// of the batches appended, from a log start the operation allows, keeping at least what it
// must: everything, except that TruncateTo(x) may or may not have happened but keeps
// everything below x and what was acknowledged after it.
func TestPowerLossAtEveryStep(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	cfg.RetentionMs = -1
	for _, tc := range []struct {
		name string
		// op runs the operation. Offsets below what it last passed to keep must survive
		// a crash (everything there is, until it says otherwise); it adds the batches it
		// acknowledged to added.
		op func(l *Log, keep func(int64), added map[int64][]byte) error
	}{
		{"roll", func(l *Log, _ func(int64), _ map[int64][]byte) error { return l.Roll() }},
		{"close", func(l *Log, _ func(int64), _ map[int64][]byte) error { return l.Close() }},
		{"truncate-across-segments", func(l *Log, keep func(int64), _ map[int64][]byte) error {
			to := l.Segments()[1].BaseOffset + 2
			keep(to)
			return l.TruncateTo(to)
		}},
		{"truncate-to-the-previous-segment", func(l *Log, keep func(int64), _ map[int64][]byte) error {
			segs := l.Segments()
			to := segs[len(segs)-1].BaseOffset - 1
			keep(to)
			return l.TruncateTo(to)
		}},
		{"truncate-in-the-active-segment", func(l *Log, keep func(int64), _ map[int64][]byte) error {
			to := l.LogEndOffset() - 2
			keep(to)
			return l.TruncateTo(to)
		}},
		{"truncate-then-append", func(l *Log, keep func(int64), added map[int64][]byte) error {
			to := l.Segments()[1].BaseOffset + 2
			keep(to)
			if err := l.TruncateTo(to); err != nil {
				return err
			}
			for i := range 3 {
				b := batchAt(1_800_000_000_000, strings.Repeat("new", 5+i))
				r, err := l.AppendLeader(b, 9)
				if err != nil {
					return err
				}
				added[r.FirstOffset] = b
				if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
					return err
				}
				keep(r.LastOffset + 1)
			}
			return nil
		}},
		{"truncate-fully", func(l *Log, keep func(int64), _ map[int64][]byte) error {
			keep(0)
			return l.TruncateFullyAndStartAt(l.LogEndOffset() + 100)
		}},
		{"delete-records", func(l *Log, _ func(int64), _ map[int64][]byte) error {
			_, err := l.DeleteRecordsBefore(l.Segments()[1].BaseOffset + 1)
			return err
		}},
		{"retention", func(l *Log, _ func(int64), _ map[int64][]byte) error {
			c := cfg
			c.RetentionBytes = 2048
			if err := l.SetConfig(c); err != nil {
				return err
			}
			_, err := l.ApplyRetention()
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, orig := powerLossSetup(t, cfg)
			for n := int64(1); ; n++ {
				fired := false
				for _, torn := range []bool{false, true} {
					fsys := base.CrashClone() // the same state every time: all of it is durable
					l, err := Open("/data/t-0", cfg, Options{FS: fsys})
					if err != nil {
						t.Fatal(err)
					}
					start := l.LogStartOffset()
					var r *rand.Rand
					if torn {
						r = rand.New(rand.NewPCG(uint64(n), 1))
					}
					// The op and the crash run in this goroutine: no lock needed.
					keep, keepAtCrash := l.LogEndOffset(), int64(0)
					added := map[int64][]byte{}
					crashed := fsys.CrashAfter(n, r, func() { keepAtCrash = keep })
					if err := tc.op(l, func(k int64) { keep = k }, added); err != nil {
						t.Fatalf("op: %v", err)
					}
					newStart := l.LogStartOffset()
					l.abandon()
					var c *vfs.MemFS
					select {
					case c = <-crashed:
						fired = true
					default:
						continue // the operation took fewer than n steps
					}
					checkPrefix(t, fmt.Sprintf("crash at step %d (torn %v)", n, torn), c, cfg, []map[int64][]byte{orig, added}, start, newStart, keepAtCrash)
				}
				if !fired {
					if n == 1 {
						t.Fatal("the operation touched no file")
					}
					t.Logf("%d steps", n-1)
					return
				}
			}
		})
	}
}

// powerLossSetup builds a log of a few segments on a new MemFS, every batch acknowledged
// with group commit, and returns the batches by base offset. It is deterministic.
func powerLossSetup(t *testing.T, cfg Config) (*vfs.MemFS, map[int64][]byte) {
	fsys := vfs.NewMem()
	l, err := Open("/data/t-0", cfg, Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer l.abandon()
	orig := map[int64][]byte{}
	for i := range 40 {
		b := batchAt(1_700_000_000_000+int64(i), strings.Repeat("v", 20+i%7*10))
		r, err := l.AppendLeader(b, int32(i/10))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
			t.Fatal(err)
		}
		orig[r.FirstOffset] = b
	}
	if len(l.Segments()) < 4 {
		t.Fatalf("%d segments, want several", len(l.Segments()))
	}
	return fsys, orig
}

// checkPrefix opens the crashed filesystem and checks that the log is a gapless run of
// batches appended (each one of those at its offset in one of appended) from a log start
// in [startLo, startHi], and that it reaches keep.
func checkPrefix(t *testing.T, what string, fsys *vfs.MemFS, cfg Config, appended []map[int64][]byte, startLo, startHi, keep int64) {
	t.Helper()
	l, err := Open("/data/t-0", cfg, Options{FS: fsys})
	if err != nil {
		t.Fatalf("%s: recovery failed: %v", what, err)
	}
	defer l.Close()
	start, leo := l.LogStartOffset(), l.LogEndOffset()
	if start < startLo || start > startHi {
		t.Fatalf("%s: log start %d outside [%d, %d]", what, start, startLo, startHi)
	}
	if leo < keep {
		t.Fatalf("%s: log end %d, below %d", what, leo, keep)
	}
	next := int64(-1)
	for off := start; off < leo; {
		batches, err := readChecked(l, off, 1<<20, leo)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(batches) == 0 {
			t.Fatalf("%s: Read(%d) returned nothing below the log end %d", what, off, leo)
		}
		for _, base := range slices.Sorted(maps.Keys(batches)) {
			b := batches[base]
			if next >= 0 && base != next {
				t.Fatalf("%s: batch at %d after one ending at %d: a gap", what, base, next)
			}
			if !slices.ContainsFunc(appended, func(m map[int64][]byte) bool { return bytes.Equal(b, m[base]) }) {
				t.Fatalf("%s: batch at %d is not one appended there", what, base)
			}
			h, _ := ParseBatchHeader(b)
			next = h.NextOffset()
		}
		off = next
	}
}

// TestPowerLossDuringRecovery cuts the power at every step of an Open that recovers a torn
// log (several tears; and of an Open after a clean shutdown), then checks that the next
// Open recovers what was acknowledged, gapless.
func TestPowerLossDuringRecovery(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	for tear := range uint64(9) {
		clean := tear == 8
		t.Run(fmt.Sprintf("tear=%d,clean=%v", tear, clean), func(t *testing.T) {
			fsys, orig := powerLossSetup(t, cfg)
			l, err := Open("/data/t-0", cfg, Options{FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			acked := l.LogEndOffset()
			big := cfg
			big.SegmentBytes = 64 << 10 // no roll: nothing syncs what follows
			if err := l.SetConfig(big); err != nil {
				t.Fatal(err)
			}
			for i := range 40 { // unacknowledged: written, never synced, torn by the crash
				b := batchAt(1_800_000_000_000, strings.Repeat("u", 30+i))
				r, err := l.AppendLeader(b, 7)
				if err != nil {
					t.Fatal(err)
				}
				orig[r.FirstOffset] = b
			}
			if clean {
				err = l.Close()
			} else {
				l.abandon()
			}
			if err != nil {
				t.Fatal(err)
			}
			torn := fsys.TornCrashClone(rand.New(rand.NewPCG(3, tear)))
			for n := int64(1); ; n++ {
				fs2 := torn.CrashClone() // the same state every time: it is all durable
				crashed := fs2.CrashAfter(n, nil, nil)
				l, err := Open("/data/t-0", cfg, Options{FS: fs2})
				if err != nil {
					t.Fatalf("recovery failed: %v", err)
				}
				l.abandon()
				select {
				case c := <-crashed:
					checkPrefix(t, fmt.Sprintf("crash at step %d of recovery", n), c, cfg, []map[int64][]byte{orig}, 0, 0, acked)
				default:
					t.Logf("%d steps", n-1)
					return
				}
			}
		})
	}
}
