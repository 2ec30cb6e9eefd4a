package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sedimentio/sediment/segment/segmenttest"
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
		// DescribeProducers shows the open transaction's first offset.
		dp, err := b.admin().DescribeProducers(ctxT(t, 10*time.Second), kadm.TopicsSet{"txl": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		ps := dp.SortedProducers()
		if len(ps) != 1 || ps[0].CurrentTxnStartOffset != 11 || ps[0].LastSequence != 14 || ps[0].Leader != 1 {
			t.Fatalf("described producers %+v, want one with its transaction from offset 11, last sequence 14", ps)
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

	t.Run("TransactionVersion1", func(t *testing.T) {
		// The coordinator speaks transaction version 1: clients must not
		// see EndTxn v5 or transaction.version 2 (KIP-890 part 2), or they
		// would stop adding partitions themselves.
		resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t, 10*time.Second), b.client())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range resp.ApiKeys {
			if k.ApiKey == 26 && k.MaxVersion != 4 {
				t.Errorf("EndTxn advertised up to v%d, want v4", k.MaxVersion)
			}
		}
		for _, f := range resp.SupportedFeatures {
			if f.Name == "transaction.version" && f.MaxVersion >= 2 {
				t.Errorf("transaction.version %d supported", f.MaxVersion)
			}
		}
		for _, f := range resp.FinalizedFeatures {
			if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
				t.Errorf("transaction.version %d finalized", f.MaxVersionLevel)
			}
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		// Straight to the broker: the client would check partitions and
		// route requests itself.
		broker := b.client().SeedBrokers()[0]
		ctx := ctxT(t, 20*time.Second)
		req := func(r kmsg.Request) kmsg.Response {
			t.Helper()
			return brokerRequest(t, ctx, broker, r)
		}
		for _, fc := range []struct {
			keyType int8
			key     string
		}{{1, ""}, {2, "x"}, {-1, "x"}} {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.CoordinatorType, r.CoordinatorKeys = fc.keyType, []string{fc.key}
			got := req(r).(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode
			wantCode(t, fmt.Sprintf("FindCoordinator type %d key %q", fc.keyType, fc.key), got, kerr.InvalidRequest)
		}

		pr := kmsg.NewPtrProduceRequest()
		pr.Acks, pr.TimeoutMillis = -1, 5000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "__transaction_state"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = []byte{0}
		pt.Partitions = append(pt.Partitions, pp)
		pr.Topics = append(pr.Topics, pt)
		wantCode(t, "produce to __transaction_state", req(pr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)

		id := "nobody"
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.TransactionalID, ip.TransactionTimeoutMillis = &id, int32((time.Hour).Milliseconds())
		wantCode(t, "InitProducerId past transaction.max.timeout.ms", req(ip).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.InvalidTransactionTimeout)
		et := kmsg.NewPtrEndTxnRequest()
		et.TransactionalID, et.ProducerID, et.Commit = id, 12345, true
		wantCode(t, "EndTxn of an unknown id", req(et).(*kmsg.EndTxnResponse).ErrorCode, kerr.InvalidProducerIDMapping)

		dp := kmsg.NewPtrDescribeProducersRequest()
		dpt := kmsg.NewDescribeProducersRequestTopic()
		dpt.Topic, dpt.Partitions = "no-such-topic", []int32{0}
		dp.Topics = append(dp.Topics, dpt)
		wantCode(t, "DescribeProducers of a missing topic", req(dp).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)

		// Markers: an unknown partition, and a coordinator epoch older than
		// the one that wrote the producer's last marker.
		ds, err := b.admin().DescribeTransactions(ctx, "txa-producer")
		if err != nil {
			t.Fatal(err)
		}
		d := ds["txa-producer"]
		wm := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = d.ProducerID, d.ProducerEpoch, true, -5
		for _, tp := range []struct {
			topic string
			p     int32
		}{{"txa", 0}, {"txa", 9}, {"no-such-topic", 0}} {
			mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			mt.Topic, mt.Partitions = tp.topic, []int32{tp.p}
			m.Topics = append(m.Topics, mt)
		}
		wm.Markers = append(wm.Markers, m)
		got := req(wm).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics
		wantCode(t, "a marker of a deposed coordinator", got[0].Partitions[0].ErrorCode, kerr.TransactionCoordinatorFenced)
		wantCode(t, "a marker to a partition that does not exist", got[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
		wantCode(t, "a marker to a topic that does not exist", got[2].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
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

	t.Run("Verification", func(t *testing.T) {
		// KIP-890 part 1, with raw requests: transactional data reaches a
		// partition only as part of a transaction that includes it.
		b.createTopic("txv", 2, nil)
		broker := b.client().SeedBrokers()[0]
		ctx := ctxT(t, 30*time.Second)
		req := func(r kmsg.Request) kmsg.Response {
			t.Helper()
			return brokerRequest(t, ctx, broker, r)
		}
		id := "txv-producer"
		var pid int64
		var epoch int16
		waitFor(t, "InitProducerId", 20*time.Second, func() bool {
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorType, fc.CoordinatorKeys = 1, []string{id}
			req(fc)
			ip := kmsg.NewPtrInitProducerIDRequest()
			ip.TransactionalID, ip.TransactionTimeoutMillis = &id, 60000
			r := req(ip).(*kmsg.InitProducerIDResponse)
			pid, epoch = r.ProducerID, r.ProducerEpoch
			return r.ErrorCode == 0
		})
		// kgo sends the highest version both sides know: a client per
		// version pins it.
		at := func(key, version int16) *kgo.Broker {
			v := kversion.Stable()
			v.SetMaxKeyVersion(key, version)
			return b.client(kgo.MaxVersions(v)).SeedBrokers()[0]
		}
		ap := kmsg.NewPtrAddPartitionsToTxnRequest()
		ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = id, pid, epoch
		ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "txv", Partitions: []int32{0}}}
		wantCode(t, "AddPartitionsToTxn", brokerRequest(t, ctx, at(24, 3), ap).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode, nil)
		v10, v11 := at(0, 10), at(0, 11)

		produce := func(version int16, partition int32, seq int32, withID bool) int16 {
			t.Helper()
			pr := kmsg.NewPtrProduceRequest()
			pr.Acks, pr.TimeoutMillis = -1, 5000
			if withID {
				pr.TransactionID = &id
			}
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = "txv"
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Partition, pp.Records = partition, segmenttest.Transactional(pid, epoch, seq, fmt.Sprint("v", seq))
			pt.Partitions = append(pt.Partitions, pp)
			pr.Topics = append(pr.Topics, pt)
			br := v11
			if version == 10 {
				br = v10
			}
			resp := brokerRequest(t, ctx, br, pr).(*kmsg.ProduceResponse)
			if resp.Version != version {
				t.Fatalf("Produce went as v%d, not v%d", resp.Version, version)
			}
			return resp.Topics[0].Partitions[0].ErrorCode
		}
		end := func(partition int32) int64 {
			t.Helper()
			lo, err := b.admin().ListEndOffsets(ctx, "txv")
			if err != nil {
				t.Fatal(err)
			}
			o, _ := lo.Lookup("txv", partition)
			return o.Offset
		}
		wantCode(t, "a partition the transaction does not include (Produce v11)", produce(11, 1, 0, true), kerr.TransactionAbortable)
		wantCode(t, "the same, Produce v10", produce(10, 1, 0, true), kerr.InvalidTxnState)
		wantCode(t, "transactional data without a transactional id", produce(11, 0, 0, false), kerr.InvalidRecord)
		if e := end(1); e != 0 {
			t.Fatalf("partition 1 took refused data: end offset %d", e)
		}
		wantCode(t, "the partition added", produce(11, 0, 0, true), nil)
		wantCode(t, "more of the transaction", produce(11, 0, 1, true), nil)

		// The transaction is aborted; a late batch of it must not open a
		// new transaction that no marker would end.
		et := kmsg.NewPtrEndTxnRequest()
		et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = id, pid, epoch, false
		wantCode(t, "EndTxn(abort)", req(et).(*kmsg.EndTxnResponse).ErrorCode, nil)
		waitFor(t, "the ABORT marker", 10*time.Second, func() bool { return end(0) == 3 })
		// Until the abort is complete the coordinator answers
		// CONCURRENT_TRANSACTIONS, which the leader passes on as the
		// retriable NOT_ENOUGH_REPLICAS.
		var code int16
		waitFor(t, "a final answer", 10*time.Second, func() bool {
			code = produce(11, 0, 2, true)
			return code != kerr.NotEnoughReplicas.Code
		})
		wantCode(t, "a batch after the transaction ended", code, kerr.TransactionAbortable)
		if stable, end := offsets(t, b, "txv"); stable != end {
			t.Fatalf("read_committed end %d below the end %d: a transaction hangs", stable, end)
		}
	})
}

// offsets are a one-partition topic's ends as read_committed (the last
// stable offset) and read_uncommitted (the high watermark) see them.
// brokerRequest sends r straight to br, failing the test if it gets no
// response.
func brokerRequest(t *testing.T, ctx context.Context, br *kgo.Broker, r kmsg.Request) kmsg.Response {
	t.Helper()
	resp, err := br.Request(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

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
