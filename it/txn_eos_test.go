package it

// Exactly-once consume-transform-produce through crashes
// (TestTxnExactlyOnce).

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
)

const (
	eosPartitions = 6
	eosKeys       = 24
	eosRecords    = 2400 // eosRecords/eosKeys per key
)

// TestTxnExactlyOnce runs franz-go's GroupTransactSession in a process of
// its own that copies an input topic to an output topic (6 partitions
// each, RF=3) in transactions that also commit the consumed offsets. The
// process is killed with SIGKILL and started again twice mid-stream, and
// one broker is killed with SIGKILL and started again in between. A
// read_committed consumer of the output must then see each input record
// exactly once, and each key's records in input order; the group's
// committed offsets must be the input's end offsets.
func TestTxnExactlyOnce(t *testing.T) {
	t.Parallel()
	c := startTxnCluster(t)
	const in, out, group, id = "txn-eos-in", "txn-eos-out", "txn-eos", "it-txn-eos"
	c.CreateTopic(in, eosPartitions, 3, nil)
	c.CreateTopic(out, eosPartitions, 3, nil)

	// The input, all of it up front: "k<key>:<seq>" keyed by key, so each
	// key lives on one partition in order.
	pr := c.Client(t, kgo.DefaultProduceTopic(in), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx := testContext(t, 60*time.Second)
	var recs []*kgo.Record
	for i := range eosRecords {
		k := fmt.Sprintf("k%02d", i%eosKeys)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, "%s:%05d", k, i/eosKeys)})
	}
	if err := pr.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	pr.Close()

	dir := logDir(t)
	cfg := txnHelperConfig{Mode: "transform", Brokers: c.Addrs(), In: in, Out: out, Group: group, TxnID: id, PerTxn: 20, Pause: 100 * time.Millisecond}
	start := func() *harness.Process {
		p := startTxnHelper(t, dir, "transform", cfg)
		waitOutputLine(t, p, "transform: started", 30*time.Second)
		return p
	}
	// progress is the sum of the group's committed offsets; -1 and the
	// error when the coordinator does not answer. A fresh client each
	// time: one kept for the whole test was seen dialing the killed
	// broker 2, the group's coordinator it had found, for 90s on end.
	progress := func() (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl := c.Client(t)
		defer cl.Close()
		offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return -1, err
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) { n += o.At })
		return n, nil
	}
	waitProgress := func(p *harness.Process, atLeast int64) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			n, err := progress()
			if n >= atLeast {
				t.Logf("the group committed %d of %d input offsets", n, eosRecords)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the group committed %d input offsets after 90s, want %d (last error: %v)", n, atLeast, err)
			}
			if p != nil && !p.Running() {
				t.Fatalf("the transforming process exited: %v\n%s", p.ExitErr(), p.Tail(30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	p := start()
	for i, at := range []int64{eosRecords / 5, eosRecords / 2} {
		waitProgress(p, at)
		killInTxn(t, p)
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill -9 of the transforming process (%d of 2)", i+1)
		if i == 0 {
			// A broker dies while the restarted process rejoins the
			// group and fences its predecessor's transaction.
			b := c.Node(2)
			c.KillAndWait(b)
			t.Logf("kill -9 of broker 2")
			p = start()
			n, _ := progress()
			waitProgress(p, max(n, eosRecords/5)+eosRecords/10)
			b.Restart()
			t.Logf("broker 2 restarted")
			continue
		}
		p = start()
	}
	waitProgress(p, eosRecords)
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.Output(), "transform: committed"); n == 0 {
		t.Errorf("the last transforming process committed nothing:\n%s", p.Tail(30))
	}

	waitStable(t, c, out, 2*txnTimeout)
	got := readTopic(t, c, out, true, eosRecords)
	checkExactlyOnce(t, got)
	// What the kills left behind: they came while a transaction had its
	// records written, which its successor aborted.
	all := readTopic(t, c, out, false, eosRecords+1)
	if len(all) <= len(got) {
		t.Errorf("the output log holds %d records, as many as read_committed sees: the kills left no aborted transaction", len(all))
	}
	t.Logf("the output log holds %d records, %d of them aborted", len(all), len(all)-len(got))
}

// killInTxn waits until the transforming process p writes its next
// transaction's records (it pauses then before committing).
func killInTxn(t testing.TB, p *harness.Process) {
	t.Helper()
	n := strings.Count(p.Output(), "transform: open")
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.Output(), "transform: open") == n {
		if time.Now().After(deadline) {
			t.Fatalf("the transforming process opened no transaction within 30s:\n%s", p.Tail(30))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkExactlyOnce wants each input value "out:k<key>:<seq>" once, and
// each key's values in sequence order.
func checkExactlyOnce(t testing.TB, got []*kgo.Record) {
	t.Helper()
	seen := make(map[string]int)
	next := make(map[string]int) // per key: the next sequence number due
	problems := 0
	report := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range got {
		v := string(r.Value)
		seen[v]++
		k, seq, ok := strings.Cut(strings.TrimPrefix(v, "out:"), ":")
		n, err := strconv.Atoi(seq)
		if !ok || err != nil || k != string(r.Key) {
			report("output record %s[%d]@%d: unexpected key %q value %q", r.Topic, r.Partition, r.Offset, r.Key, v)
			continue
		}
		switch {
		case seen[v] > 1:
			report("output record %s[%d]@%d: %q again (duplicate)", r.Topic, r.Partition, r.Offset, v)
		case n != next[k]:
			report("output record %s[%d]@%d: %q, but key %s's next is %d (out of order or a gap)", r.Topic, r.Partition, r.Offset, v, k, next[k])
		}
		if n >= next[k] {
			next[k] = n + 1
		}
	}
	for i := range eosKeys {
		k := fmt.Sprintf("k%02d", i)
		if next[k] != eosRecords/eosKeys {
			report("key %s: read up to sequence %d, want %d", k, next[k], eosRecords/eosKeys)
		}
	}
	if problems > 20 {
		t.Errorf("... and %d more problems", problems-20)
	}
	if problems == 0 {
		t.Logf("read_committed: each of the %d input records exactly once, in order per key", eosRecords)
	}
}
