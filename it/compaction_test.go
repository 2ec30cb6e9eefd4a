package it

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompactionKill9 kills the broker with SIGKILL while its log cleaner
// compacts a topic (a tiny offset map makes it clean in many small steps, so
// the kills land mid-clean: the test insists that some leave the cleaner's
// .cleaned or .swap files behind), restarts it each time, and then checks that
// recovery lost nothing and duplicated nothing: offsets strictly increase,
// every record is the one produced at its offset, every key's last record is
// there; and once the cleaner has caught up, exactly the last record of each
// key below the active segment.
func TestCompactionKill9(t *testing.T) {
	b := StartBroker(t, "--log-cleaner-backoff", "20ms", "--log-cleaner-dedupe-buffer-size", "8192")
	const (
		topic   = "compacted"
		records = 200_000
		keys    = 4000
	)
	v := func(s string) *string { return &s }
	// The topic is made compacted only once everything is produced: a cleaner
	// compacting meanwhile could have caught up before the first kill (it did on
	// a loaded machine, where the produce is slow), leaving no clean to kill.
	createTopic(t, b.Admin(t), topic, 1, map[string]*string{
		"cleanup.policy": v("delete"), "segment.bytes": v("131072"), "min.cleanable.dirty.ratio": v("0.01"),
	})
	cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerBatchMaxBytes(32<<10))
	type rec struct{ key, value []byte }
	produced := make(map[int64]rec, records)
	rng := rand.New(rand.NewPCG(7, 9))
	ctx := testContext(t, 120*time.Second)
	for start := 0; start < records; start += 10_000 {
		batch := make([]*kgo.Record, 0, 10_000)
		for i := start; i < start+10_000; i++ {
			r := &kgo.Record{Key: fmt.Appendf(nil, "key-%05d", rng.IntN(keys))}
			if rng.IntN(25) != 0 {
				r.Value = fmt.Appendf(nil, "value-%d-%s", i, strings.Repeat("x", rng.IntN(50)))
			}
			batch = append(batch, r)
		}
		res := cl.ProduceSync(ctx, batch...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			produced[r.Record.Offset] = rec{r.Record.Key, r.Record.Value}
		}
	}
	cl.Close()
	ar, err := b.Admin(t).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: v("compact")}}, topic)
	if err != nil || len(ar) != 1 || ar[0].Err != nil {
		t.Fatalf("cleanup.policy=compact: %v %+v", err, ar)
	}

	dir := filepath.Join(b.Dir, topic+"-0")
	midClean := 0
	for cycle := 1; cycle <= 12 && midClean < 3; cycle++ {
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		b.Signal(syscall.SIGKILL)
		if code, err := b.Wait(10 * time.Second); err != nil || code != -1 {
			t.Fatalf("kill -9: exit code %d, err %v", code, err)
		}
		var left []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".cleaned") || strings.HasSuffix(e.Name(), ".swap") {
				left = append(left, e.Name())
			}
		}
		if len(left) > 0 {
			midClean++
		}
		t.Logf("cycle %d: killed, cleaner files left: %v", cycle, left)
		b.Restart()
	}
	if midClean == 0 {
		t.Fatal("no kill landed in the middle of a clean: the test proves nothing")
	}

	// consume reads the whole partition and checks what must hold whenever the
	// power goes; it returns the records by offset.
	consume := func() map[int64]*kgo.Record {
		t.Helper()
		hw := endOffsets(t, b.Admin(t), topic)[0]
		c := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		defer c.Close()
		got := map[int64]*kgo.Record{}
		prev := int64(-1)
		for prev < hw-1 {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			for _, r := range fs.Records() {
				want, ok := produced[r.Offset]
				if r.Offset <= prev || !ok || !bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) {
					t.Fatalf("record at %d (after %d) is %q=%q, produced there %q=%q", r.Offset, prev, r.Key, r.Value, want.key, want.value)
				}
				prev = r.Offset
				got[r.Offset] = r
			}
		}
		return got
	}
	last := map[string]int64{}
	for off := int64(0); off < records; off++ {
		last[string(produced[off].key)] = off
	}
	got := consume()
	for k, off := range last {
		if got[off] == nil {
			t.Fatalf("key %s lost: its last record at %d is gone", k, off)
		}
	}
	t.Logf("after %d kills mid-clean: %d records of %d left, every key's last one among them", midClean, len(got), records)

	// Let the cleaner finish: then below the active segment, one record per key.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		dirty, ok, err := metricValue(b, "sediment_log_cleaner_dirty_bytes")
		if err == nil && ok && dirty == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the cleaner did not catch up: dirty bytes %v (%v)", dirty, err)
		case <-tick.C:
		}
	}
	var activeBase int64
	fmt.Sscanf(filepath.Base(activeSegment(t, dir)), "%d.log", &activeBase)
	lastBelow := map[string]int64{}
	for off := int64(0); off < activeBase; off++ {
		lastBelow[string(produced[off].key)] = off
	}
	got = consume()
	for off, r := range got {
		if off < activeBase && lastBelow[string(r.Key)] != off {
			t.Fatalf("record at %d of key %s below the active segment (%d) is not the key's last there (%d)", off, r.Key, activeBase, lastBelow[string(r.Key)])
		}
	}
	for k, off := range last {
		if got[off] == nil {
			t.Fatalf("key %s lost after cleaning: its last record at %d is gone", k, off)
		}
	}
	t.Logf("cleaned: one record for each of %d keys below the active segment at %d", len(lastBelow), activeBase)
}
