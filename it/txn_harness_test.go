package it

// The transaction tests' shared checks (txn_*_test.go): a 3-broker cluster
// set up for transactions, a ledger of what each transaction wrote and
// whether it committed, reading a topic back at either isolation level, and
// the last stable offset catching up with the high watermark (no hanging
// transaction).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transaction settings of the tests: a small __transaction_state makes the
// first FindCoordinator fast, a short abort scan finds expired transactions
// soon after their timeout.
const (
	txnTimeout         = 8 * time.Second
	txnAbortScan       = time.Second
	txnStatePartitions = 6
	txnReadTimeout     = 60 * time.Second
)

// txnBrokerFlags are groupBrokerFlags (the exactly-once test runs a
// consumer group) and the transaction coordinator's settings.
func txnBrokerFlags() []string {
	return append(slices.Clone(groupBrokerFlags),
		"--transaction-state-log-num-partitions", fmt.Sprint(txnStatePartitions),
		"--transaction-abort-timed-out-transaction-cleanup-interval", txnAbortScan.String(),
	)
}

// startTxnCluster starts a 3-broker cluster for the transaction tests.
func startTxnCluster(t *testing.T) *Cluster {
	t.Helper()
	return StartCluster(t, 3, txnBrokerFlags()...)
}

// txnLedger records every value a test's transactions wrote and whether
// its transaction committed; safe for concurrent use.
type txnLedger struct {
	mu        sync.Mutex
	committed []string
	aborted   []string
}

func (l *txnLedger) add(commit bool, values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if commit {
		l.committed = append(l.committed, values...)
	} else {
		l.aborted = append(l.aborted, values...)
	}
}

// check compares what a consumer read with what it must read: exactly the
// committed values at read_committed, every value at read_uncommitted,
// each once.
func (l *txnLedger) check(t testing.TB, who string, readCommitted bool, got []string) {
	t.Helper()
	l.mu.Lock()
	want := slices.Clone(l.committed)
	if !readCommitted {
		want = append(want, l.aborted...)
	}
	aborted := make(map[string]bool, len(l.aborted))
	for _, v := range l.aborted {
		aborted[v] = true
	}
	l.mu.Unlock()
	if problems := diffValues(want, got, func(v string) string {
		if aborted[v] {
			return " (aborted)"
		}
		return ""
	}); problems != "" {
		t.Errorf("%s read %d values, want %d:%s", who, len(got), len(want), problems)
		return
	}
	t.Logf("%s read exactly the %d values it must", who, len(got))
}

// diffValues lists (up to a bound) the values want has and got lacks, the
// values got has that want lacks, and duplicates; "" when they are the
// same multiset of distinct values. note annotates a value.
func diffValues(want, got []string, note func(string) string) string {
	counts := make(map[string]int, len(got))
	for _, v := range got {
		counts[v]++
	}
	wanted := make(map[string]bool, len(want))
	var b strings.Builder
	n := 0
	report := func(format string, args ...any) {
		if n++; n <= 20 {
			fmt.Fprintf(&b, "\n  "+format, args...)
		}
	}
	for _, v := range want {
		wanted[v] = true
		if counts[v] == 0 {
			report("missing %q", v)
		}
	}
	keys := make([]string, 0, len(counts))
	for v := range counts {
		keys = append(keys, v)
	}
	sort.Strings(keys)
	for _, v := range keys {
		switch {
		case !wanted[v]:
			report("unexpected %q%s (%d times)", v, note(v), counts[v])
		case counts[v] > 1:
			report("duplicate %q (%d times)", v, counts[v])
		}
	}
	if n > 20 {
		fmt.Fprintf(&b, "\n  ... and %d more", n-20)
	}
	return b.String()
}

// readTopic reads topic from the start with a franz-go consumer at the
// given isolation level until it has want records, then a moment more to
// catch extras (readUntil).
func readTopic(t testing.TB, c *Cluster, topic string, readCommitted bool, want int) []*kgo.Record {
	t.Helper()
	cl := txnConsumer(t, c, topic, readCommitted)
	defer cl.Close()
	var out []*kgo.Record
	readUntil(t, fmt.Sprintf("franz-go reading %s (read_committed %v)", topic, readCommitted), want, func() int {
		out = append(out, pollTxnConsumer(t, cl)...)
		return len(out)
	})
	return out
}

// txnConsumer is a franz-go consumer of topic from the start at the given
// isolation level; the caller closes it.
func txnConsumer(t testing.TB, c *Cluster, topic string, readCommitted bool) *kgo.Client {
	t.Helper()
	level := kgo.ReadUncommitted()
	if readCommitted {
		level = kgo.ReadCommitted()
	}
	return c.Client(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
}

// pollTxnConsumer polls cl for up to half a second and returns what came;
// fetch errors other than the poll's deadline are logged.
func pollTxnConsumer(t testing.TB, cl *kgo.Client) []*kgo.Record {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	fs := cl.PollFetches(ctx)
	cancel()
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("reading %s[%d]: %v", topic, p, err)
		}
	})
	return fs.Records()
}

// readUntil calls poll, which reads some more and says how many records it
// has read in all, until want are in and then for one more second (extras
// are a failure the caller sees); it fails the test when want do not come
// within txnReadTimeout.
func readUntil(t testing.TB, what string, want int, poll func() int) {
	t.Helper()
	deadline := time.Now().Add(txnReadTimeout)
	var extra time.Time // when to stop once want are in
	for n := 0; ; n = poll() {
		now := time.Now()
		if n >= want && extra.IsZero() {
			extra = now.Add(time.Second)
		}
		if !extra.IsZero() && now.After(extra) {
			return
		}
		if now.After(deadline) {
			t.Fatalf("%s: %d records after %s, want %d", what, n, txnReadTimeout, want)
		}
	}
}

// values are the records' values.
func values(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// waitStable waits until every partition of topic has its last stable
// offset (ListOffsets latest at read_committed) at its high watermark: no
// transaction is left open on it. It fails the test after within.
func waitStable(t testing.TB, c *Cluster, topic string, within time.Duration) {
	t.Helper()
	adm := c.Admin(t)
	start := time.Now()
	var last string
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hw, err1 := adm.ListEndOffsets(ctx, topic)
		lso, err2 := adm.ListCommittedOffsets(ctx, topic)
		cancel()
		if err := errors.Join(err1, err2, hw.Error(), lso.Error()); err != nil {
			last = err.Error()
		} else if behind := lsoBehind(hw, lso); behind == "" {
			t.Logf("%s: last stable offset at the high watermark on every partition after %v", topic, time.Since(start).Round(time.Millisecond))
			return
		} else {
			last = behind
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: last stable offset still short of the high watermark after %v: %s", topic, within, last)
}

// lsoBehind describes the partitions whose last stable offset is short of
// the high watermark; "" when there is none.
func lsoBehind(hw, lso kadm.ListedOffsets) string {
	var out []string
	hw.Each(func(h kadm.ListedOffset) {
		l, ok := lso.Lookup(h.Topic, h.Partition)
		if !ok || l.Offset != h.Offset {
			out = append(out, fmt.Sprintf("[%d] lso %d hw %d", h.Partition, l.Offset, h.Offset))
		}
	})
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// txnCoordinator is the node id of the transaction coordinator of id
// (FindCoordinator, key type 1), asked until one answers.
func txnCoordinator(t testing.TB, c *Cluster, id string) int32 {
	t.Helper()
	adm := c.Admin(t)
	deadline := time.Now().Add(clusterSettleTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, ok := adm.FindTxnCoordinators(ctx, id)[id]
		cancel()
		err := resp.Err
		if !ok {
			err = errors.New("no answer for the id")
		}
		if err == nil {
			return resp.NodeID
		}
		if time.Now().After(deadline) {
			t.Fatalf("FindCoordinator(transaction %q): %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
