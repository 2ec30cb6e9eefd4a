package it

// Zombie fencing across processes (TestTxnZombieFencing).

import (
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestTxnZombieFencing runs a transactional producer in a process of its
// own (the zombie) that leaves a transaction open, then takes its
// transactional id from the test process: the new producer's
// InitProducerId fences the zombie and aborts its open transaction. The
// zombie's next produce (one subtest) or its commit (the other) must fail
// with PRODUCER_FENCED or INVALID_PRODUCER_EPOCH, read_committed consumers must see only the new
// producer's records, read_uncommitted ones the zombie's first records too
// (aborted) but never what it tried after it was fenced, and no partition's
// last stable offset may stay behind.
func TestTxnZombieFencing(t *testing.T) {
	t.Parallel()
	c := startTxnCluster(t)
	for _, then := range []string{"produce", "commit"} {
		t.Run(then, func(t *testing.T) { zombieFenced(t, c, then) })
	}
}

func zombieFenced(t *testing.T, c *Cluster, then string) {
	topic, id := "txn-zombie-"+then, "it-txn-zombie-"+then
	c.CreateTopic(topic, 3, 3, nil)
	zombie := startTxnHelper(t, logDir(t), "zombie-"+then, txnHelperConfig{Mode: "zombie", Brokers: c.Addrs(), Out: topic, TxnID: id, Then: then})
	waitOutputLine(t, zombie, "zombie: open", 60*time.Second)
	var l txnLedger
	l.add(false, "zombie-0", "zombie-1", "zombie-2")

	// The zombie's transaction holds the last stable offset back.
	ctx := testContext(t, 30*time.Second)
	adm := c.Admin(t)
	hw, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if lsoBehind(hw, lso) == "" {
		t.Fatalf("the zombie's open transaction does not hold the last stable offset back: high watermarks %v, last stable offsets %v", hw.Offsets(), lso.Offsets())
	}

	p := franzTxnProducer(t, c, topic, id)
	if err := p.Begin(); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for part := range int32(3) {
		v := fmt.Sprintf("successor-%d", part)
		if err := p.Produce(part, v); err != nil {
			t.Fatalf("the successor's produce: %v", err)
		}
		vals = append(vals, v)
	}
	if err := p.End(true); err != nil {
		t.Fatalf("the successor's commit: %v", err)
	}
	l.add(true, vals...)

	if err := zombie.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if _, err := zombie.Wait(60 * time.Second); err != nil {
		t.Fatalf("the zombie: %v\n%s", err, zombie.Tail(20))
	}
	out := zombie.Output()
	m := regexp.MustCompile(`zombie: ` + then + `: (.*)`).FindStringSubmatch(out)
	switch {
	case m == nil:
		t.Errorf("the zombie printed no %s outcome:\n%s", then, out)
	case !regexp.MustCompile(`PRODUCER_FENCED|INVALID_PRODUCER_EPOCH`).MatchString(m[1]):
		t.Errorf("the zombie's %s after it was fenced: %q, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", then, m[1])
	default:
		t.Logf("the zombie's %s after it was fenced: %s", then, m[1])
	}
	waitStable(t, c, topic, 30*time.Second)
	l.check(t, "read_committed", true, values(readTopic(t, c, topic, true, len(l.committed))))
	l.check(t, "read_uncommitted", false, values(readTopic(t, c, topic, false, len(l.committed)+len(l.aborted))))
}
