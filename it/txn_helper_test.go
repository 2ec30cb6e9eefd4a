package it

// The transaction tests' client processes: the test binary run again
// (re-exec) with txnHelperEnv set runs TestTxnHelperProcess alone, which
// becomes the helper the variable names instead of a test. A process of its
// own can be killed with SIGKILL like a crashed application, and its
// producer is a zombie to another process's.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
)

// txnHelperEnv holds a helper's txnHelperConfig as JSON.
const txnHelperEnv = "SEDIMENT_IT_TXN_HELPER"

// txnHelperConfig is what a helper process does.
type txnHelperConfig struct {
	Mode    string   // "transform" or "zombie"
	Brokers []string // seeds
	In, Out string   // transform: input and output topic; zombie: Out only
	Group   string   // transform: the consumer group
	TxnID   string
	// transform: records per transaction at most, and a pause in each
	// transaction once its records are written, so that a run of the test
	// finds it mid-stream and a kill finds a transaction open.
	PerTxn int
	Pause  time.Duration
	// zombie: what it tries once fenced, "produce" or "commit" (franz-go
	// refuses to commit once a produce failed, so one zombie cannot show
	// both refusals).
	Then string
	// zombie: its transaction.timeout.ms; 0 means a minute (never what
	// ends its transaction).
	TxnTimeout time.Duration
}

// TestTxnHelperProcess is not a test: it is the helper process of the
// transaction tests, and returns at once unless txnHelperEnv is set.
func TestTxnHelperProcess(t *testing.T) {
	raw := os.Getenv(txnHelperEnv)
	if raw == "" {
		return
	}
	var cfg txnHelperConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Println("helper: bad config:", err)
		os.Exit(2)
	}
	switch cfg.Mode {
	case "transform":
		os.Exit(txnTransform(cfg))
	case "zombie":
		os.Exit(txnZombie(cfg))
	}
	fmt.Println("helper: unknown mode", cfg.Mode)
	os.Exit(2)
}

// startTxnHelper starts this test binary as the helper cfg describes, its
// output in dir/name.log (appended to: the runs of a restarted helper follow
// each other), killed when the test ends.
func startTxnHelper(t testing.TB, dir, name string, cfg txnHelperConfig) *harness.Process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := harness.StartProcess(harness.Command{
		Name: name,
		Bin:  self,
		Args: []string{"-test.run=^TestTxnHelperProcess$", "-test.count=1"},
		Env:  append(harness.Environ(), txnHelperEnv+"="+string(raw)),
		Log:  filepath.Join(dir, name+".log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Kill()
		if t.Failed() {
			t.Logf("--- %s output (last 40 lines) ---\n%s", name, p.Tail(40))
		}
	})
	return p
}

// waitOutputLine waits until p has printed a line containing s.
func waitOutputLine(t testing.TB, p *harness.Process, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %s; its output:\n%s", p.Name(), s, within, p.Tail(40))
		}
		if !p.Running() {
			t.Fatalf("%s exited (%v) before printing %q; its output:\n%s", p.Name(), p.ExitErr(), s, p.Tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// txnTransform is the consume-transform-produce application: a
// GroupTransactSession that copies each record of In to Out (same key,
// value prefixed "out:"), committing the consumed offsets in the same
// transaction, until it is killed.
func txnTransform(cfg txnHelperConfig) int {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("it-txn-transform"),
		kgo.DialTimeout(time.Second),
		kgo.RequestTimeoutOverhead(3*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.TransactionalID(cfg.TxnID),
		kgo.TransactionTimeout(txnTimeout),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.In),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(groupSession),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		fmt.Println("transform: client:", err)
		return 1
	}
	defer sess.Close()
	ctx := context.Background()
	fmt.Println("transform: started")
	for {
		fs := sess.PollRecords(ctx, cfg.PerTxn)
		if fs.IsClientClosed() {
			return 0
		}
		fs.EachError(func(topic string, p int32, err error) {
			fmt.Printf("transform: fetch %s[%d]: %v\n", topic, p, err)
		})
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fmt.Println("transform: begin:", err)
			return 1
		}
		var failed atomic.Bool
		for _, r := range recs {
			out := &kgo.Record{Topic: cfg.Out, Key: r.Key, Value: append([]byte("out:"), r.Value...)}
			sess.Produce(ctx, out, func(_ *kgo.Record, err error) {
				if err != nil && !failed.Swap(true) {
					fmt.Println("transform: produce:", err)
				}
			})
		}
		// The records are in the log, uncommitted, for a while: a kill
		// that follows "transform: open" leaves a transaction to abort.
		if err := sess.Client().Flush(ctx); err != nil {
			fmt.Println("transform: flush:", err)
		}
		fmt.Printf("transform: open with %d records\n", len(recs))
		time.Sleep(cfg.Pause)
		committed, err := sess.End(ctx, kgo.TransactionEndTry(!failed.Load()))
		switch {
		case err != nil:
			fmt.Println("transform: end:", err)
		case committed:
			fmt.Printf("transform: committed %d records\n", len(recs))
		default:
			fmt.Printf("transform: aborted %d records\n", len(recs))
		}
	}
}

// txnZombie opens a transaction, writes a record to each of 3 partitions
// of Out, prints "zombie: open", and on SIGUSR1 (once another process has
// taken its transactional id) tries what Then says, to write one more
// record or to commit, and prints the outcome: "zombie: produce: ERR" or
// "zombie: commit: ERR" ("<nil>" for none).
func txnZombie(cfg txnHelperConfig) int {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("it-txn-zombie"),
		kgo.TransactionalID(cfg.TxnID),
		kgo.TransactionTimeout(cmp.Or(cfg.TxnTimeout, time.Minute)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(cfg.Out),
		kgo.RecordRetries(3),
	)
	if err != nil {
		fmt.Println("zombie: client:", err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		fmt.Println("zombie: begin:", err)
		return 1
	}
	for p := range int32(3) {
		v := fmt.Sprintf("zombie-%d", p)
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			fmt.Println("zombie: first produce:", err)
			return 1
		}
	}
	fmt.Println("zombie: open")
	select {
	case <-usr1:
	case <-ctx.Done():
		return 1
	}
	ctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if cfg.Then == "produce" {
		err = cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("zombie-late")}).FirstErr()
	} else {
		err = cl.EndTransaction(ctx, kgo.TryCommit)
	}
	fmt.Printf("zombie: %s: %v\n", cfg.Then, err)
	return 0
}
