package broker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/vfs"
)

var (
	powerSeed = flag.Uint64("power.seed", 0, "seed of the broker power-loss tests (0: from the clock)")
	powerLie  = flag.Bool("power.lying-disk", false, "run TestPowerLossAcksAll on a disk whose syncs do nothing: it must fail (shows the test can)")
)

// TestPowerLossAcksAll produces with acks=all under group commit (the
// default flush policy) through a real Kafka client, cuts the power at
// random points many times (the partitions' files live on a vfs.MemFS, which
// keeps only what was synced), and restarts the broker on what survived.
// Recovery must never fail, every acknowledged record must be there, and the
// log must hold only whole, valid records with contiguous offsets.
func TestPowerLossAcksAll(t *testing.T) {
	res := runBrokerPowerLoss(t, segment.FlushGroupCommit, 8, *powerLie)
	if res.lostAcked > 0 || res.bad != "" {
		t.Fatalf("%s", res)
	}
	if res.acked == 0 {
		t.Fatal("no record was acknowledged before a crash: nothing was checked")
	}
}

// TestPowerLossFlushOS is the same with --flush-policy os (Kafka's default:
// leave flushing to the OS and to replication): acknowledged records are
// lost, as the policy documents, yet recovery still works and serves only
// whole records.
func TestPowerLossFlushOS(t *testing.T) {
	res := runBrokerPowerLoss(t, segment.FlushOS, 3, false)
	if res.bad != "" {
		t.Fatalf("%s", res)
	}
	if res.lostAcked == 0 {
		t.Fatalf("flush policy os lost no acknowledged record in %d power losses: the crashes do not cut where they should (%s)", res.rounds, res)
	}
}

// TestPowerLossLyingDisk proves the test above can fail: on a disk whose
// syncs do nothing, group commit must be seen losing acknowledged records.
func TestPowerLossLyingDisk(t *testing.T) {
	res := runBrokerPowerLoss(t, segment.FlushGroupCommit, 2, true)
	if res.lostAcked == 0 {
		t.Fatalf("no acknowledged record lost with every sync ignored: the power-loss test cannot fail (%s)", res)
	}
}

type powerLossResult struct {
	rounds, acked, lostAcked, read int    // read: records read back after the last power loss
	bad                            string // the first invariant broken other than acked loss
}

func (r powerLossResult) String() string {
	return fmt.Sprintf("%d power losses: %d records acknowledged before them, %d of those lost, %d records read back; %s",
		r.rounds, r.acked, r.lostAcked, r.read, r.bad)
}

// powerValue is a record value that carries its own checksum, so a torn or
// mixed-up record read back cannot pass for a real one.
func powerValue(id uint64, rng *rand.Rand) []byte {
	v := make([]byte, 8+rng.IntN(600)+32)
	binary.BigEndian.PutUint64(v, id)
	for i := 8; i < len(v)-32; i++ {
		v[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(v[:len(v)-32])
	copy(v[len(v)-32:], sum[:])
	return v
}

func checkPowerValue(v []byte) (uint64, bool) {
	if len(v) < 40 {
		return 0, false
	}
	sum := sha256.Sum256(v[:len(v)-32])
	return binary.BigEndian.Uint64(v), string(sum[:]) == string(v[len(v)-32:])
}

// runBrokerPowerLoss runs rounds of produce-then-power-loss. Odd rounds cut
// the power with a torn disk: besides what was synced, a random part of what
// was not (pages, directory entries) reaches it. With lying, syncs do
// nothing.
func runBrokerPowerLoss(t *testing.T, policy segment.FlushPolicy, rounds int, lying bool) powerLossResult {
	seed := *powerSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -power.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	mcfg := meta.DefaultConfig()
	mcfg.NodeID = 100
	mcfg.Dir = filepath.Join(t.TempDir(), "meta")
	mcfg.ClientListen, mcfg.PeerListen = freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	etcd, err := meta.Start(ctx, mcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() })

	// The data directory's path names a directory of the MemFS; etcd keeps
	// its own files on the real disk (it is not what is tested here).
	dataDir := filepath.Join(t.TempDir(), "data")
	fs := vfs.NewMem()
	start := func(fsys vfs.FS) *testBroker {
		return startNode(t, dataDir, 1, []string{etcd.ClientURL()}, func(c *Config) {
			c.DataDir = dataDir
			c.Log.Flush = policy
		}, func(d *Deps) { d.FS = fsys })
	}
	b := start(fs)
	seg := "16384"
	b.createTopic("power", 3, map[string]*string{"segment.bytes": &seg})

	var (
		res     powerLossResult
		ackMu   sync.Mutex
		acked   map[uint64]bool // records acknowledged in this round
		nextID  uint64
		durable = map[uint64]bool{} // acknowledged before the last power loss
	)
	for round := range rounds {
		// Acks that came after the last power loss (the old broker ran on
		// until it was stopped) were for records the crash took: forget them.
		ackMu.Lock()
		acked = map[uint64]bool{}
		ackMu.Unlock()
		cl := b.client(kgo.DefaultProduceTopic("power"), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(time.Duration(rng.IntN(3))*time.Millisecond), kgo.RecordRetries(3))
		pctx, stopProduce := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		vrng := rand.New(rand.NewPCG(seed, uint64(round)+2))
		wg.Go(func() {
			for pctx.Err() == nil {
				nextID++
				id := nextID
				cl.Produce(pctx, &kgo.Record{Value: powerValue(id, vrng)}, func(_ *kgo.Record, err error) {
					if err == nil {
						ackMu.Lock()
						acked[id] = true
						ackMu.Unlock()
					}
				})
			}
		})
		// Cut the power a random number of file operations from now. The
		// snapshot is taken with the filesystem locked: an ack seen by then
		// was sent after its sync completed.
		var (
			snapshot map[uint64]bool
			torn     *rand.Rand
		)
		if round%2 == 1 {
			torn = rand.New(rand.NewPCG(seed, uint64(round)))
		}
		fs.SetIgnoreSyncs(lying)
		clone := fs.CrashAfter(int64(200+rng.IntN(3000)), torn, func() {
			ackMu.Lock()
			snapshot = maps.Clone(acked)
			ackMu.Unlock()
		})
		var crashed *vfs.MemFS
		select {
		case crashed = <-clone:
		case <-time.After(60 * time.Second):
			t.Fatal("no power loss within 60s: the broker stopped writing")
		}
		stopProduce()
		wg.Wait()
		cl.Close()
		b.stop()

		// Power is back: the broker recovers from what the disk kept.
		res.rounds++
		maps.Copy(durable, snapshot)
		fs = crashed
		b = start(fs)
		seen, bad := readBack(t, b)
		lost := 0
		for id := range durable {
			if !seen[id] {
				// Counted once; what survives must go on surviving.
				lost++
				delete(durable, id)
			}
		}
		res.read, res.lostAcked = len(seen), res.lostAcked+lost
		if bad != "" && res.bad == "" {
			res.bad = fmt.Sprintf("round %d: %s", round, bad)
		}
		t.Logf("round %d: %d acknowledged before the power loss, %d read back, %d acknowledged lost", round, len(snapshot), len(seen), lost)
	}
	res.acked = len(durable) + res.lostAcked
	return res
}

// readBack reads every partition of the topic from its log start to its
// end and checks every record: a valid self-checksummed value, read once, at
// contiguous offsets. It returns the ids it read and the first broken
// invariant. Reading stops when every partition reached its end, or when
// nothing more arrives for 10 seconds: a log with a gap before its end
// (which only a disk that lied about syncs can leave) is reported, not
// waited for.
func readBack(t *testing.T, b *testBroker) (seen map[uint64]bool, bad string) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	adm := b.admin()
	ends, err := adm.ListEndOffsets(ctx, "power")
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, "power")
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[string]map[int32]kgo.Offset{"power": {}}
	next, end := map[int32]int64{}, map[int32]int64{}
	for p, o := range ends["power"] {
		if o.Err != nil {
			t.Fatalf("partition %d end offset: %v", p, o.Err)
		}
		s := starts["power"][p].Offset
		offsets["power"][p] = kgo.NewOffset().At(s)
		next[p], end[p] = s, o.Offset
	}
	done := func() bool {
		for p := range next {
			if next[p] < end[p] {
				return false
			}
		}
		return true
	}
	cl := b.client(kgo.ConsumePartitions(offsets))
	defer cl.Close()
	seen = map[uint64]bool{}
	for !done() {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.Empty() {
			return seen, fmt.Sprintf("offsets missing: read up to %v of ends %v", next, end)
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				return seen, fmt.Sprintf("fetch error on partition %d: %v", e.Partition, e.Err)
			}
		}
		for _, r := range fs.Records() {
			if r.Offset != next[r.Partition] && bad == "" {
				bad = fmt.Sprintf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition] = r.Offset + 1
			id, ok := checkPowerValue(r.Value)
			switch {
			case !ok && bad == "":
				bad = fmt.Sprintf("partition %d offset %d: a record that was never produced (torn or corrupt)", r.Partition, r.Offset)
			case seen[id] && bad == "":
				bad = fmt.Sprintf("partition %d offset %d: record %d twice", r.Partition, r.Offset, id)
			}
			seen[id] = true
		}
	}
	return seen, bad
}
