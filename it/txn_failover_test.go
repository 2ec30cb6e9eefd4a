package it

// The transaction coordinator killed mid-commit
// (TestTxnCoordinatorFailover).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestTxnCoordinatorFailover kills (SIGKILL) the broker that coordinates
// two transactional ids right after EndTxn(commit) of the first returned:
// its PrepareCommit is in __transaction_state, and its markers to the six
// partitions of the transaction are being written or not yet. The second
// id's transaction was left open by a process killed before (a hanging
// transaction). After election the next coordinator must finish the
// commit (read_committed sees exactly its records, DescribeTransactions
// says CompleteCommit) and abort the open transaction once its
// transaction.timeout.ms passed: every partition's last stable offset
// reaches its high watermark.
func TestTxnCoordinatorFailover(t *testing.T) {
	t.Parallel()
	c := startTxnCluster(t)
	const topic, hangTopic, id = "txn-failover", "txn-failover-hang", "it-txn-failover"
	const partitions = 6
	c.CreateTopic(topic, partitions, 3, nil)
	c.CreateTopic(hangTopic, 3, 3, nil)
	coord := txnCoordinator(t, c, id)
	hangID := ""
	for i := 0; hangID == ""; i++ {
		if i == 100 {
			t.Fatalf("no transactional id among 100 has broker %d as its coordinator", coord)
		}
		if cand := fmt.Sprintf("it-txn-hang-%d", i); txnCoordinator(t, c, cand) == coord {
			hangID = cand
		}
	}
	t.Logf("broker %d coordinates %s and %s", coord, id, hangID)

	// The hanging transaction: its producer dies with it open.
	var hang txnLedger
	hangStart := time.Now()
	zombie := startTxnHelper(t, logDir(t), "hanging", txnHelperConfig{Mode: "zombie", Brokers: c.Addrs(), Out: hangTopic, TxnID: hangID, TxnTimeout: txnTimeout})
	waitOutputLine(t, zombie, "zombie: open", 60*time.Second)
	if err := zombie.Kill(); err != nil {
		t.Fatal(err)
	}
	hang.add(false, "zombie-0", "zombie-1", "zombie-2")

	// The transaction whose commit the coordinator's death interrupts.
	var l txnLedger
	p := franzTxnProducer(t, c, topic, id)
	if err := p.Begin(); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for i := range 3 {
		for part := range int32(partitions) {
			v := fmt.Sprintf("failover-p%d-%d", part, i)
			if err := p.Produce(part, v); err != nil {
				t.Fatalf("produce: %v", err)
			}
			vals = append(vals, v)
		}
	}
	if err := p.End(true); err != nil {
		t.Fatalf("EndTxn(commit): %v", err)
	}
	c.KillAndWait(c.Node(coord))
	killed := time.Now()
	l.add(true, vals...)
	t.Logf("kill -9 of broker %d, the coordinator, right after EndTxn(commit) returned", coord)

	// Whether the kill came before every marker was written: the last
	// stable offset is behind then (informative; the outcome must be the
	// same either way).
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	hw, _ := adm.ListEndOffsets(ctx, topic) // partitions the dead broker led fail: left out
	lso, _ := adm.ListCommittedOffsets(ctx, topic)
	cancel()
	var missing []string
	hw.Each(func(h kadm.ListedOffset) {
		if l, ok := lso.Lookup(topic, h.Partition); ok && h.Err == nil && l.Err == nil && l.Offset < h.Offset {
			missing = append(missing, fmt.Sprintf("[%d] lso %d hw %d", h.Partition, l.Offset, h.Offset))
		}
	})
	t.Logf("right after the kill, partitions without their marker (among those whose leader answered): %v", missing)

	waitStable(t, c, topic, clusterSettleTimeout)
	t.Logf("the commit completed %v after the kill", time.Since(killed).Round(time.Millisecond))
	l.check(t, "read_committed", true, values(readTopic(t, c, topic, true, len(l.committed))))
	waitTxnState(t, c, id, "CompleteCommit")

	// The hanging transaction ends within its timeout, the failover and
	// one abort scan (and some slack for a loaded machine).
	waitStable(t, c, hangTopic, txnTimeout+clusterSessionTimeout+txnAbortScan+20*time.Second-time.Since(hangStart))
	t.Logf("the hanging transaction was aborted %v after it began (transaction.timeout.ms %v)", time.Since(hangStart).Round(time.Millisecond), txnTimeout)
	hang.check(t, "read_committed", true, values(readTopic(t, c, hangTopic, true, 0)))
	hang.check(t, "read_uncommitted", false, values(readTopic(t, c, hangTopic, false, len(hang.aborted))))
	waitTxnState(t, c, hangID, "CompleteAbort")

	c.Node(coord).Restart()
	c.WaitISR(topic, partitions, 3, clusterSettleTimeout)
	l.check(t, "read_committed after the old coordinator's return", true, values(readTopic(t, c, topic, true, len(l.committed))))
}

// waitTxnState waits until DescribeTransactions says id is in state. Each
// attempt has a client of its own, which looks the coordinator up afresh
// (a kept client may keep asking a dead one it found).
func waitTxnState(t testing.TB, c *Cluster, id, state string) {
	t.Helper()
	deadline := time.Now().Add(clusterSettleTimeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl := c.Client(t)
		d, err := kadm.NewClient(cl).DescribeTransactions(ctx, id)
		cl.Close()
		cancel()
		if err == nil {
			dt, ok := d[id]
			switch {
			case !ok:
				last = "not described"
			case dt.Err != nil:
				last = dt.Err.Error()
			case dt.State == state:
				t.Logf("transaction %s: %s (coordinator %d)", id, state, dt.Coordinator)
				return
			default:
				last = dt.State
			}
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("transaction %s: %s after %v, want %s", id, last, clusterSettleTimeout, state)
}
