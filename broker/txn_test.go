package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnConfig makes transaction tests quick: few internal partitions, the
// timeout reaper every 100 ms.
func txnConfig(c *Config) {
	c.OffsetsTopicPartitions = 3
	c.Group.InitialRebalanceDelay = 0
	c.Txn.NumPartitions = 3
	c.Txn.AbortTimedOutInterval = 100 * time.Millisecond
}

// txnProducer is a transactional franz-go producer of topic.
func txnProducer(b *testBroker, id, topic string, opts ...kgo.Opt) *kgo.Client {
	return b.client(append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(20)}, opts...)...)
}

// produceTxn runs one transaction writing n records to each of partitions
// and ends it with commit; it returns the values written.
func produceTxn(t *testing.T, cl *kgo.Client, tag string, partitions int32, n int, commit bool) []string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var vals []string
	var recs []*kgo.Record
	for p := range partitions {
		for i := range n {
			v := fmt.Sprintf("%s-p%d-%d", tag, p, i)
			vals = append(vals, v)
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("transaction %s: produce: %v", tag, err)
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatalf("transaction %s: end (commit %v): %v", tag, commit, err)
	}
	return vals
}

// alternateTxns runs rounds transactions of n records to each of
// partitions, committing the odd ones and aborting the even ones (the last
// is aborted when rounds is even); it returns the values committed and all.
func alternateTxns(t *testing.T, cl *kgo.Client, tag string, rounds int, partitions int32, n int) (committed, all []string) {
	t.Helper()
	for i := range rounds {
		commit := i%2 == 1
		vals := produceTxn(t, cl, fmt.Sprintf("%s%d", tag, i), partitions, n, commit)
		all = append(all, vals...)
		if commit {
			committed = append(committed, vals...)
		}
	}
	return committed, all
}

// consumeAll reads topic from the start with the isolation level until the
// values stop coming (want of them, then a quiet moment that would let any
// extra record show).
func consumeAll(t *testing.T, b *testBroker, topic string, iso kgo.IsolationLevel, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := b.client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso),
		kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	quiet := time.Time{}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("consume %s: %v", topic, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) >= want {
			if quiet.IsZero() {
				quiet = time.Now().Add(500 * time.Millisecond)
			} else if time.Now().After(quiet) {
				break
			}
		}
	}
	slices.Sort(got)
	return got
}

func sameRecords(t *testing.T, what string, got, want []string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %d records, want %d (first got %q, first want %q)", what, len(got), len(want), first(got), first(want))
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Transactions with franz-go on one broker: committed and aborted
// transactions over 3 partitions as read_committed and read_uncommitted
// consumers see them, the last stable offset, zombie fencing, the timeout
// reaper, and the admin APIs.
func TestTransactions(t *testing.T) {
	b := startBroker(t, txnConfig)

	t.Run("CommitAndAbort", func(t *testing.T) {
		b.createTopic("txa", 3, nil)
		cl := txnProducer(b, "txa-producer", "txa")
		committed, all := alternateTxns(t, cl, "t", 6, 3, 20)
		sameRecords(t, "read_committed", consumeAll(t, b, "txa", kgo.ReadCommitted(), len(committed)), committed)
		sameRecords(t, "read_uncommitted", consumeAll(t, b, "txa", kgo.ReadUncommitted(), len(all)), all)
	})

	t.Run("LastStableOffset", func(t *testing.T) {
		b.createTopic("txl", 1, nil)
		cl := txnProducer(b, "txl-producer", "txl")
		produceTxn(t, cl, "first", 1, 10, true) // offsets 0-9, the marker at 10
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for i := range 5 {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "open-%d", i)}) // 11-15
		}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if stable, end := offsets(t, b, "txl"); stable != 11 || end != 16 {
			t.Fatalf("with a transaction open: read_committed end %d, read_uncommitted end %d; want 11 and 16", stable, end)
		}
		if err := cl.EndTransaction(ctxT(t, 10*time.Second), kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		// EndTxn is answered once the commit is decided; the marker follows.
		waitFor(t, "the COMMIT marker", 10*time.Second, func() bool {
			stable, end := offsets(t, b, "txl")
			return stable == 17 && end == 17
		})
	})

	t.Run("ZombieFencing", func(t *testing.T) {
		b.createTopic("txz", 2, nil)
		zombie := txnProducer(b, "txz-producer", "txz")
		if err := zombie.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := zombie.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Partition: 0, Value: []byte("zombie-0")},
			&kgo.Record{Partition: 1, Value: []byte("zombie-1")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// A new producer of the same id aborts the zombie's transaction
		// and fences it.
		fresh := txnProducer(b, "txz-producer", "txz")
		vals := produceTxn(t, fresh, "fresh", 2, 5, true)
		err := zombie.EndTransaction(ctxT(t, 10*time.Second), kgo.TryCommit)
		if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
			t.Fatalf("the zombie's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
		}
		sameRecords(t, "read_committed", consumeAll(t, b, "txz", kgo.ReadCommitted(), len(vals)), vals)
		if stable, end := offsets(t, b, "txz"); stable != end {
			t.Fatalf("read_committed end %d below the end %d: the zombie's transaction is still open", stable, end)
		}
	})

	t.Run("TimeoutAborts", func(t *testing.T) {
		b.createTopic("txt", 1, nil)
		cl := txnProducer(b, "txt-producer", "txt", kgo.TransactionTimeout(time.Second))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("left open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if stable, end := offsets(t, b, "txt"); stable != 0 || end != 1 {
			t.Fatalf("with a transaction open: read_committed end %d, read_uncommitted end %d; want 0 and 1", stable, end)
		}
		// The coordinator aborts the transaction past its timeout: the
		// ABORT marker moves the last stable offset to the end.
		waitFor(t, "the coordinator to abort the timed-out transaction", 20*time.Second, func() bool {
			stable, end := offsets(t, b, "txt")
			return end == 2 && stable == 2
		})
		sameRecords(t, "read_committed", consumeAll(t, b, "txt", kgo.ReadCommitted(), 0), nil)
		ds, err := b.admin().DescribeTransactions(ctxT(t, 10*time.Second), "txt-producer")
		if err != nil {
			t.Fatal(err)
		}
		if d := ds["txt-producer"]; d.Err != nil || d.State != "CompleteAbort" {
			t.Fatalf("described %+v, want CompleteAbort", d)
		}
	})

	t.Run("ConsumeTransformProduce", func(t *testing.T) {
		b.createTopic("txin", 2, nil)
		b.createTopic("txout", 2, nil)
		const n = 300
		in := b.client(kgo.DefaultProduceTopic("txin"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var recs []*kgo.Record
		var want []string
		for i := range n {
			recs = append(recs, &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "in-%d", i)})
			want = append(want, fmt.Sprintf("out-in-%d", i))
		}
		if err := in.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b.addr), kgo.TransactionalID("ctp"), kgo.ConsumerGroup("ctp-group"),
			kgo.ConsumeTopics("txin"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.DefaultProduceTopic("txout"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		ctx := ctxT(t, 60*time.Second)
		// Every other transaction is aborted: its output never shows, its
		// offsets are not committed, and the session consumes the records
		// again.
		done, round := 0, 0
		for done < n {
			if ctx.Err() != nil {
				t.Fatalf("consumed and committed %d of %d", done, n)
			}
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			fs := sess.PollRecords(pctx, 40)
			cancel()
			got := 0
			fs.EachRecord(func(r *kgo.Record) {
				got++
				sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Value: append([]byte("out-"), r.Value...)}, nil)
			})
			round++
			commit := round%2 == 0
			end := kgo.TryAbort
			if commit {
				end = kgo.TryCommit
			}
			committed, err := sess.End(ctx, end)
			if err != nil {
				t.Fatalf("end (commit %v): %v", commit, err)
			}
			if committed != commit && got > 0 {
				t.Fatalf("committed %v, asked to commit %v", committed, commit)
			}
			if committed {
				done += got
			}
		}
		sameRecords(t, "read_committed output", consumeAll(t, b, "txout", kgo.ReadCommitted(), n), want)
		// The group's offsets were committed with the transactions.
		adm := b.admin()
		waitFor(t, "the transactional offsets to be committed", 10*time.Second, func() bool {
			offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), "ctp-group")
			if err != nil {
				return false
			}
			o0, _ := offs.Lookup("txin", 0)
			o1, _ := offs.Lookup("txin", 1)
			return o0.At == n/2 && o1.At == n/2
		})
	})

	t.Run("Admin", func(t *testing.T) {
		adm := b.admin()
		ds, err := adm.DescribeTransactions(ctxT(t, 10*time.Second), "txa-producer", "txl-producer", "nobody")
		if err != nil {
			t.Fatal(err)
		}
		if d := ds["txa-producer"]; d.Err != nil || d.State != "CompleteCommit" || d.ProducerID < 0 || d.Coordinator != 1 {
			t.Fatalf("txa-producer: %+v, want CompleteCommit", d)
		}
		if d := ds["txl-producer"]; d.Err != nil || d.State != "CompleteCommit" {
			t.Fatalf("txl-producer: %+v, want CompleteCommit", d)
		}
		if d := ds["nobody"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
			t.Fatalf("an unknown id: %+v, want TRANSACTIONAL_ID_NOT_FOUND", d)
		}
		ls, err := adm.ListTransactions(ctxT(t, 10*time.Second), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"txa-producer", "txl-producer", "txz-producer", "txt-producer", "ctp"} {
			if _, ok := ls[id]; !ok {
				t.Errorf("ListTransactions misses %s: %v", id, ls.TransactionalIDs())
			}
		}
		ls, err = adm.ListTransactions(ctxT(t, 10*time.Second), nil, []string{"CompleteAbort"})
		if err != nil {
			t.Fatal(err)
		}
		if ids := ls.TransactionalIDs(); !slices.Equal(ids, []string{"txt-producer"}) {
			t.Errorf("aborted transactions %v, want txt-producer", ids)
		}
	})
}

// offsets are a one-partition topic's ends as read_committed (the last
// stable offset) and read_uncommitted (the high watermark) see them.
func offsets(t *testing.T, b *testBroker, topic string) (stable, end int64) {
	t.Helper()
	adm := b.admin()
	c, err := adm.ListCommittedOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	e, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := c.Lookup(topic, 0)
	es, _ := e.Lookup(topic, 0)
	if cs.Err != nil || es.Err != nil {
		t.Fatalf("list offsets of %s: %v / %v", topic, cs.Err, es.Err)
	}
	return cs.Offset, es.Offset
}
