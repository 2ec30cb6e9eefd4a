package it

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCrashKill9 kills the broker with SIGKILL three times while idempotent
// acks=all producers write to every partition, restarts it each time, and
// proves that every acknowledged record is in the log exactly once at its
// acknowledged offset, in production order.
func TestCrashKill9(t *testing.T) {
	// Small segments: kills land mid-roll too, and recovery sees many.
	b := StartBroker(t, "--log-segment-bytes", "65536")
	const (
		topic      = "crash"
		partitions = 4
		producers  = 3
		cycles     = 3
		perPhase   = 1500 // acknowledgements between kills
	)
	createTopic(t, b.Admin(t), topic, partitions, nil)
	start := time.Now()
	pg := startProducers(t, b, topic, partitions, producers)
	for cycle := 1; cycle <= cycles; cycle++ {
		// Let the producers reach full speed against this run first.
		<-time.After(300 * time.Millisecond)
		pg.waitAcks(pg.ackCount()+perPhase, 60*time.Second)
		b.Signal(syscall.SIGKILL)
		if code, err := b.Wait(10 * time.Second); err != nil || code != -1 {
			t.Fatalf("kill -9: exit code %d, err %v", code, err)
		}
		t.Logf("%v: cycle %d: killed the broker with %d records acknowledged", time.Since(start).Round(time.Millisecond), cycle, pg.ackCount())
		time.Sleep(200 * time.Millisecond) // producers notice and retry
		b.Restart()
		t.Logf("%v: cycle %d: restarted", time.Since(start).Round(time.Millisecond), cycle)
	}
	// The producers carry on against the restarted broker.
	pg.waitAcks(pg.ackCount()+perPhase, 60*time.Second)
	t.Logf("%v: %d records acknowledged after the last restart", time.Since(start).Round(time.Millisecond), pg.ackCount())
	pg.finish()
	pg.verify(b)
	segs, _ := filepath.Glob(filepath.Join(b.Dir, topic+"-*", "*.log"))
	t.Logf("%d segments", len(segs))
}

// batchPos is one record batch in a segment file.
type batchPos struct {
	pos, size  int64
	base, last int64
}

// scanBatches walks the v2 record batches of a segment file by their length
// fields (no validation: the file is the broker's, freshly written).
func scanBatches(t testing.TB, path string) []batchPos {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []batchPos
	for pos := int64(0); pos < int64(len(data)); {
		if int64(len(data))-pos < 61 {
			t.Fatalf("%s: %d trailing bytes at %d", path, int64(len(data))-pos, pos)
		}
		h := data[pos:]
		base := int64(binary.BigEndian.Uint64(h[0:]))
		size := int64(binary.BigEndian.Uint32(h[8:])) + 12
		lastDelta := int64(binary.BigEndian.Uint32(h[23:]))
		if pos+size > int64(len(data)) {
			t.Fatalf("%s: batch at %d of %d bytes overruns the file (%d bytes)", path, pos, size, len(data))
		}
		out = append(out, batchPos{pos: pos, size: size, base: base, last: base + lastDelta})
		pos += size
	}
	return out
}

// activeSegment is the newest .log file of a partition directory.
func activeSegment(t testing.TB, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no segment in %s (%v)", dir, err)
	}
	sort.Strings(logs) // %020d names sort by base offset
	return logs[len(logs)-1]
}

// TestTornTail simulates a crash that leaves the active segment with a torn
// last batch (partition 0: truncated mid-batch) and a corrupt one (partition
// 1: its last bytes overwritten with garbage). On restart the broker must say
// that it truncated them, serve every complete batch before them, and append
// new produces right after.
func TestTornTail(t *testing.T) {
	b := StartBroker(t)
	const topic = "torn"
	createTopic(t, b.Admin(t), topic, 2, nil)
	cl := b.Client(t, manualPartitions, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	const rounds, perRound = 10, 5
	for r := range rounds {
		for p := range int32(2) {
			// One synchronous produce per round: at least one batch each.
			produceSync(t, cl, topic, p, r*perRound, perRound, int64(r*perRound))
		}
	}
	cl.Close()
	b.Kill()

	// Partition 0: cut the last batch in half.
	seg0 := activeSegment(t, filepath.Join(b.Dir, topic+"-0"))
	batches := scanBatches(t, seg0)
	if len(batches) < rounds {
		t.Fatalf("%s holds %d batches, want at least %d", seg0, len(batches), rounds)
	}
	torn := batches[len(batches)-1]
	if err := os.Truncate(seg0, torn.pos+torn.size/2); err != nil {
		t.Fatal(err)
	}
	want0 := torn.base

	// Partition 1: garbage over the last 16 bytes (inside the last batch's records).
	seg1 := activeSegment(t, filepath.Join(b.Dir, topic+"-1"))
	batches = scanBatches(t, seg1)
	bad := batches[len(batches)-1]
	f, err := os.OpenFile(seg1, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("\xde\xad\xbe\xef garbage \xff\xfe\x00")
	if _, err := f.WriteAt(garbage, bad.pos+bad.size-int64(len(garbage))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want1 := bad.base
	t.Logf("tore %s at %d (batch %d-%d), corrupted %s batch %d-%d", filepath.Base(seg0), torn.pos+torn.size/2, torn.base, torn.last, filepath.Base(seg1), bad.base, bad.last)

	b.Restart()
	for _, p := range []string{"torn-0", "torn-1"} {
		re := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(p) + `\b.*(truncat|torn|corrupt)|(truncat|torn|corrupt).*` + regexp.QuoteMeta(p) + `\b`)
		line, ok := b.WaitLog(re, 10*time.Second)
		if !ok {
			t.Fatalf("no log line about truncating the torn/corrupt tail of %s; run output:\n%s", p, tail(b.RunLogs(), 40))
		}
		if !regexp.MustCompile(`(?i)truncat`).MatchString(line) {
			t.Fatalf("log line about %s does not say it truncated: %s", p, line)
		}
		t.Logf("recovery: %s", line)
	}

	ends := endOffsets(t, b.Admin(t), topic)
	for p, want := range map[int32]int64{0: want0, 1: want1} {
		if ends[p] != want {
			t.Fatalf("%s[%d]: end offset %d after recovery, want %d", topic, p, ends[p], want)
		}
		checkValues(t, topic, p, 0, 0, consumePartition(t, b, topic, p, 0, int(want)))
		// New produces continue right after the last complete batch.
		cl := b.Client(t, manualPartitions)
		produceSync(t, cl, topic, p, int(want), 7, want)
		checkValues(t, topic, p, 0, 0, consumePartition(t, b, topic, p, 0, int(want)+7))
	}
	// And the repaired log survives a clean restart.
	b.Stop()
	b.Restart()
	ends = endOffsets(t, b.Admin(t), topic)
	for p, want := range map[int32]int64{0: want0 + 7, 1: want1 + 7} {
		if ends[p] != want {
			t.Fatalf("%s[%d]: end offset %d after a clean restart, want %d", topic, p, ends[p], want)
		}
	}
}

// TestRestartRightAfterKill9 restarts a broker at once after SIGKILL. Its
// previous incarnation's etcd registration lease outlives it by up to the
// broker session timeout, and a restarted etcd renews it to its full TTL:
// before the broker took its own registration over, it exited with "broker
// id in use" on every attempt and a crashed broker never came back. It must
// neither fail nor wait the session timeout out.
func TestRestartRightAfterKill9(t *testing.T) {
	b := StartBroker(t) // the default 9s session timeout
	createTopic(t, b.Admin(t), "restart", 1, nil)
	produceSync(t, b.Client(t, manualPartitions), "restart", 0, 0, 5, 0)
	b.Kill()
	start := time.Now()
	b.Restart()
	took := time.Since(start)
	t.Logf("restarted after %v", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("restart after kill -9 took %v: it waited for the dead incarnation's session to expire", took)
	}
	checkValues(t, "restart", 0, 0, 0, consumePartition(t, b, "restart", 0, 0, 5))
}
