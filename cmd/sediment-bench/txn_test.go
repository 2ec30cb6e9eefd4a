package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestTxnSpan(t *testing.T) {
	for _, tc := range []struct{ t, size, records, from, to int }{
		{0, 100, 250, 0, 100},
		{1, 100, 250, 100, 200},
		{2, 100, 250, 200, 250}, // the last, short
		{3, 100, 250, 250, 250}, // past the last: empty
		{9, 100, 250, 250, 250},
	} {
		if from, to := txnSpan(tc.t, tc.size, tc.records); from != tc.from || to != tc.to {
			t.Errorf("txnSpan(%d, %d, %d) = %d, %d; want %d, %d", tc.t, tc.size, tc.records, from, to, tc.from, tc.to)
		}
	}
}

func TestTxnProducers(t *testing.T) {
	for _, tc := range []struct{ flagged, inflight, size, want int }{
		{0, 10000, 100, 100},
		{0, 50, 100, 1},
		{7, 10000, 100, 7},
	} {
		if got := txnProducers(tc.flagged, tc.inflight, tc.size); got != tc.want {
			t.Errorf("txnProducers(%d, %d, %d) = %d, want %d", tc.flagged, tc.inflight, tc.size, got, tc.want)
		}
	}
}

func TestTxnFlagsValidate(t *testing.T) {
	ok := txnFlags{records: 1000, size: 100, latencyRate: 20, latencyTime: 10 * time.Second}
	if err := ok.validate(16); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*txnFlags){
		func(f *txnFlags) { f.size = 0 },
		func(f *txnFlags) { f.records = 99 },
		func(f *txnFlags) { f.producers = -1 },
		func(f *txnFlags) { f.backoff = -time.Millisecond },
		func(f *txnFlags) { f.latencyRate = 0 },
		func(f *txnFlags) { f.latencyTime = 10 * time.Millisecond }, // not one transaction at 20/s
	} {
		f := ok
		bad(&f)
		if err := f.validate(16); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}

func TestCommittedCheck(t *testing.T) {
	pool := newValuePool(minValueSize)
	c := newCommittedCheck(pool, 4, 2)
	// Partition 0: records 0 and 1 at offsets 0 and 1, a marker at 2, then
	// record 3 at 3; partition 1: record 2 at 0.
	for _, r := range []struct {
		p   int32
		off int64
		idx int
	}{{0, 0, 0}, {0, 1, 1}, {1, 0, 2}, {0, 3, 3}} {
		if idx, err := c.add(r.p, r.off, pool.value(r.idx)); err != nil || idx != r.idx {
			t.Fatalf("add(%d, %d, value %d) = %d, %v", r.p, r.off, r.idx, idx, err)
		}
	}
	if err := c.done([]int64{3, 1}); err != nil {
		t.Errorf("done: %v", err)
	}
	if err := c.done([]int64{2, 2}); err == nil || !strings.Contains(err.Error(), "partition 0: read 3 records, 2 were committed") {
		t.Errorf("done with other counts: %v", err)
	}
	for _, tc := range []struct {
		p    int32
		off  int64
		v    []byte
		want string
	}{
		{2, 9, pool.value(0), "partition 2 of a 2-partition topic"},
		{0, 2, pool.value(0), "got offset 2 after 3"},
		{1, 1, pool.value(2), "record 2 read twice"},
		{1, 1, pool.value(7), "beyond the 4 produced"},
	} {
		if _, err := c.add(tc.p, tc.off, tc.v); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add(%d, %d): %v, want an error saying %q", tc.p, tc.off, err, tc.want)
		}
	}
}

func TestCompareEnds(t *testing.T) {
	listed := func(offs ...int64) kadm.ListedOffsets {
		l := kadm.ListedOffsets{"t": {}}
		for p, o := range offs {
			l["t"][int32(p)] = kadm.ListedOffset{Topic: "t", Partition: int32(p), Offset: o}
		}
		return l
	}
	want := []int64{12, 5}
	if err := compareEnds("t", want, listed(12, 5), listed(12, 5)); err != nil {
		t.Error(err)
	}
	if err := compareEnds("t", want, listed(12, 5), listed(10, 5)); err == nil || !strings.Contains(err.Error(), "partition 0: last stable offset 10, want 12") {
		t.Errorf("LSO behind: %v", err)
	}
	if err := compareEnds("t", want, listed(12), listed(12, 5)); err == nil || !strings.Contains(err.Error(), "partition 1: no high watermark listed") {
		t.Errorf("partition missing: %v", err)
	}
}

func TestTxnLatencies(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	call := []time.Time{at(0), at(100), at(200), at(300)}
	done := []time.Time{at(50), at(102), at(205), at(301)}
	seen := []time.Time{at(60), at(110), at(204), at(320)} // the third seen before EndTransaction returned
	fromReturn, fromCall, endTxn := txnLatencies(call, done, seen, 1)
	want := func(name string, got []time.Duration, ms ...int) {
		t.Helper()
		if len(got) != len(ms) {
			t.Fatalf("%s = %v, want %v ms", name, got, ms)
		}
		for i := range ms {
			if got[i] != time.Duration(ms[i])*time.Millisecond {
				t.Errorf("%s = %v, want %v ms", name, got, ms)
			}
		}
	}
	want("fromReturn", fromReturn, -1, 8, 19)
	want("fromCall", fromCall, 4, 10, 20)
	want("endTxn", endTxn, 1, 2, 5)
}

func TestLoadFields(t *testing.T) {
	if got := loadFields("5.24 2.58 2.71 3/412 12345\n"); got != "5.24 2.58 2.71" {
		t.Errorf("loadFields = %q", got)
	}
	if got := loadFields(""); got != "?" {
		t.Errorf("loadFields of nothing = %q", got)
	}
}

// txnRun is a txnResult whose rates are easy to check: 100 MiB produced
// idempotently in idem and in transactions in txn.
func txnRun(idem, txn time.Duration, lat ...time.Duration) txnResult {
	p := func(d time.Duration) phaseResult { return phaseResult{records: 102400, bytes: 100 << 20, elapsed: d} }
	return txnResult{
		producers: 100,
		idem:      produced{produce: p(idem), p50: 30 * time.Millisecond, p99: 100 * time.Millisecond},
		idemRead:  p(time.Second / 4),
		txn:       txnProduced{produce: p(txn), transactions: 1024, p50: 90 * time.Millisecond, p99: 400 * time.Millisecond, markers: []int64{1024, 1024}},
		txnRead:   p(time.Second / 4),
		latency:   txnLatency{transactions: len(lat), rate: 20, fromReturn: lat, fromCall: lat, endTxn: lat},
		idemCPU:   time.Second, txnCPU: 4 * time.Second, brokerCPU: 8 * time.Second,
		txnAPIs: []apiTime{{api: "EndTxn", count: 1024, seconds: 2.048}},
		load:    "1.00 2.00 3.00",
	}
}

func TestPrintTxnResults(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	r := txnRun(time.Second, 1250*time.Millisecond, ms(1), ms(2), ms(3), ms(40))
	var b bytes.Buffer
	printTxnResults(&b, "results", r, nil)
	out := b.String()
	for _, want := range []string{
		"\ntxn, results:\n",
		"idempotent produce: 100.0 MiB/s, 102400 rec/s, p50 30.0 ms, p99 100.0 ms per record; read back and verified at 400.0 MiB/s",
		"transactional produce: 80.0 MiB/s, 81920 rec/s, 1024 transactions of 100 records by 100 producers, 2.00 partitions per transaction, p50 90.0 ms, p99 400.0 ms per transaction",
		"transactional produce requests in the broker: EndTxn 1024 x 2.0 ms mean (0 over 102.4 ms)",
		"ratio transactional/idempotent: 0.80x (target >= 0.7x met)",
		"(4 transactions of 10 records at 20.0/s): from EndTransaction's return p50 2.0 ms, p99 40.0 ms;",
		"broker: cpu s 1.0 idempotent produce (10.0 ms/MiB), 4.0 transactional produce (40.0 ms/MiB),",
		"load average 1.00 2.00 3.00",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	runs := []txnResult{r, txnRun(time.Second, 2*time.Second, ms(5)), txnRun(time.Second, 1500*time.Millisecond, ms(4))}
	b.Reset()
	printTxnResults(&b, "median of 3 runs", txnMedians(runs), runs)
	out = b.String()
	for _, want := range []string{
		"ratio transactional/idempotent: 0.67x (target >= 0.7x MISSED); per run: 0.80 0.50 0.67",
		"(6 transactions of 10 records at 20.0/s): from EndTransaction's return p50 3.0 ms, p99 40.0 ms;", // pooled
		"requests in the broker: EndTxn 3072 x 2.0 ms mean",                                               // summed
	} {
		if !strings.Contains(out, want) {
			t.Errorf("medians lack %q:\n%s", want, out)
		}
	}
	if runs[0].latency.fromReturn[3] != ms(40) {
		t.Error("txnMedians changed a run's latencies")
	}
}
