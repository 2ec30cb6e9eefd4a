package it

// Committed and aborted transactions read back through the two paths that do
// not serve the log as it was written: tiered segments (TestTxnTiered, the
// aborted transactions coming from the uploaded txnindex objects) and
// compacted segments (TestTxnCompacted, the cleaner removing aborted data and,
// after delete.retention.ms, the markers nothing needs any more).

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/tier"
)

const (
	txnSegPartitions = 3
	txnSegTxns       = 6 // even ones commit, odd ones abort
	// txnSegBytes is the topics' segment.bytes: a transaction's batches and
	// marker on one partition take most of a segment, so transactions
	// straddle segments (data in one, ABORT marker and its txnindex entry in
	// the next).
	txnSegBytes = 2048
	// txnSegFillers non-transactional records per partition follow the
	// transactions: they seal the segment holding the last markers.
	txnSegFillers = 10
	// txnCompactSegBytes is the compacted topic's segment.bytes: its
	// transactions (about 9 KiB a partition) fit in the first segment and
	// txnCompactFillers records seal it, so the markers of the
	// transactions the cleaner empties are never the last batch of a
	// cleaned segment (which the cleaner keeps).
	txnCompactSegBytes = 12 << 10
	txnCompactFillers  = 20
)

// txnSegPad pads every record (in a header: keys and values stay readable in
// failure messages) to about a fifth of a segment, with bytes that the
// producer's default compression cannot shrink.
var txnSegPad = func() []kgo.RecordHeader {
	b := make([]byte, 300)
	rng := rand.New(rand.NewPCG(11, 13))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return []kgo.RecordHeader{{Key: "pad", Value: b}}
}()

// startTxnBroker is a 1-broker cluster with the transaction tests' settings:
// the cheapest setup where a single partition leader uploads and cleans.
func startTxnBroker(t *testing.T, extra ...string) *Cluster {
	t.Helper()
	flags := append(txnBrokerFlags(), "--min-insync-replicas", "1")
	return StartCluster(t, 1, append(flags, extra...)...)
}

// produceTxnRecord produces one padded record within f's open transaction.
func produceTxnRecord(t testing.TB, f *franzTxn, part int32, key, value string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	r := &kgo.Record{Partition: part, Value: []byte(value), Headers: txnSegPad}
	if key != "" {
		r.Key = []byte(key)
	}
	if err := f.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("transactional produce of %q to partition %d: %v", value, part, err)
	}
}

// produceFillers writes n non-transactional, keyed, padded records to every
// partition of topic and returns their values.
func produceFillers(t testing.TB, c *Cluster, topic string, n int) []string {
	t.Helper()
	cl := c.Client(t, manualPartitions, kgo.DefaultProduceTopic(topic))
	defer cl.Close()
	ctx := testContext(t, 30*time.Second)
	var out []string
	for part := range int32(txnSegPartitions) {
		for i := range n {
			v := fmt.Sprintf("filler-p%d-%d", part, i)
			r := &kgo.Record{Partition: part, Key: []byte(v), Value: []byte(v), Headers: txnSegPad}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("producing %s: %v", v, err)
			}
			out = append(out, v)
		}
	}
	return out
}

// TestTxnTiered writes transactions that alternately commit and abort over
// three partitions of a tiered topic (small segments, local.retention.bytes
// 0, the file tier backend), waits until the transactions are only in the
// tier (every partition's earliest local offset past them, its log start
// still 0), checks that the uploads cover them and that their txnindex
// objects list every aborted transaction, and reads the topic from offset 0:
// read_committed must see exactly the committed records (the aborted
// transactions' list in each Fetch answer comes from those objects),
// read_uncommitted every record.
func TestTxnTiered(t *testing.T) {
	t.Parallel()
	tierDir := filepath.Join(t.TempDir(), "tier")
	c := startTxnBroker(t, "--tier", "file://"+tierDir,
		"--tier-upload-interval", "200ms", "--log-retention-check-interval", "500ms")
	const topic = "txn-tiered"
	str := func(s string) *string { return &s }
	c.CreateTopic(topic, txnSegPartitions, 1, map[string]*string{
		"segment.bytes": str(strconv.Itoa(txnSegBytes)), "local.retention.bytes": str("0"),
	})
	f := franzTxnProducer(t, c, topic, "it-txn-tiered").(*franzTxn)
	var l txnLedger
	const perPart = 4
	for n := range txnSegTxns {
		commit := n%2 == 0
		if err := f.Begin(); err != nil {
			t.Fatalf("transaction %d: begin: %v", n, err)
		}
		var vals []string
		for i := range perPart {
			for part := range int32(txnSegPartitions) {
				v := fmt.Sprintf("tiered-t%d-p%d-%d", n, part, i)
				produceTxnRecord(t, f, part, "", v)
				vals = append(vals, v)
			}
		}
		if err := f.End(commit); err != nil {
			t.Fatalf("transaction %d: end (commit %v): %v", n, commit, err)
		}
		l.add(commit, vals...)
	}
	waitStable(t, c, topic, 30*time.Second)
	txnEnd := endOffsets(t, c.Admin(t), topic) // every transaction's data and marker lie below
	l.add(true, produceFillers(t, c, topic, txnSegFillers)...)

	waitBounds(t, "the transactions only in the tier", txnSegPartitions, 30*time.Second,
		func(p int32) (partBounds, error) { return c.bounds(topic, p) },
		func(p int32, b partBounds) bool { return b.Earliest == 0 && b.EarliestLocal >= txnEnd[p] })

	// The bucket: the uploads cover the transactions, and their txnindex
	// objects hold one entry for each aborted transaction (it touched
	// every partition), wherever its data and marker fell.
	tid := topicIDText(t, c.Admin(t), topic)
	abortedTxns := txnSegTxns / 2
	straddling := 0 // aborted transactions whose data and marker are in different uploads
	for p := range int32(txnSegPartitions) {
		var (
			entries []tier.TxnIndexEntry
			segs    []tier.RemoteSegment
		)
		waitUntil(t, fmt.Sprintf("%s[%d]: the manifest in the tier covers the transactions", topic, p), 20*time.Second, func() (bool, string) {
			b, err := os.ReadFile(filepath.Join(tierDir, filepath.FromSlash(tier.ManifestKey(tid, p))))
			if err != nil {
				return false, err.Error()
			}
			m, err := tier.ParseManifest(b)
			if err != nil {
				t.Fatalf("%s[%d]: manifest: %v", topic, p, err)
			}
			if err := checkCoverage(m, 0, txnEnd[p]-1); err != nil {
				return false, fmt.Sprintf("%v (segments%s)", err, describeSegments(m))
			}
			entries, segs = entries[:0], m.Segments
			for _, seg := range m.Segments {
				if !seg.TxnIndex {
					continue
				}
				raw, err := os.ReadFile(filepath.Join(tierDir, filepath.FromSlash(tier.SegmentObjectKey(seg, tier.KindTxnIndex))))
				if err != nil {
					t.Fatalf("%s[%d]: segment [%d, %d] says it has a txnindex object: %v", topic, p, seg.BaseOffset, seg.EndOffset, err)
				}
				es, err := tier.ParseTxnIndex(raw, seg)
				if err != nil {
					t.Fatalf("%s[%d]: txnindex of segment [%d, %d]: %v", topic, p, seg.BaseOffset, seg.EndOffset, err)
				}
				entries = append(entries, es...)
			}
			return true, ""
		})
		if len(entries) != abortedTxns {
			t.Errorf("%s[%d]: the tier's txnindex objects list %d aborted transactions, want %d: %+v", topic, p, len(entries), abortedTxns, entries)
		}
		for _, e := range entries {
			if !slices.ContainsFunc(segs, func(s tier.RemoteSegment) bool {
				return s.BaseOffset <= e.FirstOffset && e.LastOffset <= s.EndOffset
			}) {
				straddling++
			}
		}
		t.Logf("%s[%d]: uploads%s; their txnindex objects list %d aborted transactions: %+v", topic, p, describeSegments(&tier.Manifest{Segments: segs}), len(entries), entries)
	}
	if straddling == 0 && !t.Failed() {
		t.Errorf("no aborted transaction has its data and its marker in different uploads: the test misses the reads that must find a transaction's abort in a later segment's txnindex")
	}

	last := lastOffsets(t, c, topic)
	l.check(t, "franz-go read_committed from the tier", true, readToEnd(t, c, topic, true, last))
	l.check(t, "franz-go read_uncommitted from the tier", false, readToEnd(t, c, topic, false, last))
}

// txnCompactKeys are the keys of TestTxnCompacted's partitions and the
// transactions (even ones commit, odd ones abort) that write each: the last
// committed value of a key is older than an aborted one ("early", "mid"),
// or there is none ("ghost"); "all" is written twice in every transaction.
var txnCompactKeys = map[string][]int{
	"all":   {0, 1, 2, 3, 4, 5},
	"early": {0, 1},
	"ghost": {1, 3, 5},
	"mid":   {0, 2, 3},
	"late":  {4, 5},
}

// TestTxnCompacted writes keyed transactions that alternately commit and
// abort over three partitions of a compacted topic, seals them with
// non-transactional records, and waits until the log cleaner has cleaned
// past them (its cleaner-offset-checkpoint). Then, as in Kafka, both
// isolation levels must read exactly the last committed value of each key
// (and the fillers): the cleaner removed the aborted records, and an aborted
// value never hid an older committed one. The markers of the transactions
// the clean emptied must still be there right after it, and gone once
// delete.retention.ms has passed (KIP-534's delete horizon; the log files
// show it), the reads unchanged.
func TestTxnCompacted(t *testing.T) {
	t.Parallel()
	c := startTxnBroker(t, "--log-cleaner-backoff", "100ms")
	const (
		topic           = "txn-compacted"
		deleteRetention = 6 * time.Second
	)
	str := func(s string) *string { return &s }
	c.CreateTopic(topic, txnSegPartitions, 1, map[string]*string{
		"cleanup.policy":            str("compact"),
		"segment.bytes":             str(strconv.Itoa(txnCompactSegBytes)),
		"min.cleanable.dirty.ratio": str("0.01"),
		"delete.retention.ms":       str(strconv.FormatInt(deleteRetention.Milliseconds(), 10)),
	})
	f := franzTxnProducer(t, c, topic, "it-txn-compacted").(*franzTxn)
	keys := slices.Sorted(maps.Keys(txnCompactKeys))
	latest := map[string]string{} // partition/key -> its last committed value
	aborted := map[string]bool{}
	var written []string
	for n := range txnSegTxns {
		commit := n%2 == 0
		if err := f.Begin(); err != nil {
			t.Fatalf("transaction %d: begin: %v", n, err)
		}
		for part := range int32(txnSegPartitions) {
			for _, k := range keys {
				if !slices.Contains(txnCompactKeys[k], n) {
					continue
				}
				copies := 1
				if k == "all" {
					copies = 2
				}
				for i := range copies {
					v := fmt.Sprintf("compacted-t%d-p%d-%s-%d", n, part, k, i)
					produceTxnRecord(t, f, part, k, v)
					written = append(written, v)
					if commit {
						latest[fmt.Sprintf("%d/%s", part, k)] = v
					} else {
						aborted[v] = true
					}
				}
			}
		}
		if err := f.End(commit); err != nil {
			t.Fatalf("transaction %d: end (commit %v): %v", n, commit, err)
		}
	}
	waitStable(t, c, topic, 30*time.Second)
	txnEnd := endOffsets(t, c.Admin(t), topic)
	fillers := produceFillers(t, c, topic, txnCompactFillers)
	want := append(slices.Collect(maps.Values(latest)), fillers...)
	note := func(v string) string {
		switch {
		case aborted[v]:
			return " (aborted)"
		case slices.Contains(written, v):
			return " (committed, superseded)"
		}
		return ""
	}
	check := func(who string, got []string) {
		t.Helper()
		if problems := diffValues(want, got, note); problems != "" {
			t.Errorf("%s read %d values, want %d:%s", who, len(got), len(want), problems)
			return
		}
		t.Logf("%s read exactly the %d values it must", who, len(got))
	}

	// Each partition is looked at as soon as its clean is seen: the
	// markers of the transactions it emptied are still there, without a
	// transaction batch before them, until delete.retention.ms has passed.
	dir := func(p int32) string { return filepath.Join(c.Node(1).Dir, fmt.Sprintf("%s-%d", topic, p)) }
	early := map[int32]int{} // partition -> markers without a batch, right after its clean
	waitUntil(t, "the cleaner past the transactions", 30*time.Second, func() (bool, string) {
		for p := range int32(txnSegPartitions) {
			if _, ok := early[p]; ok {
				continue
			}
			dirty, err := cleanerFirstDirty(dir(p))
			if err != nil {
				return false, fmt.Sprintf("partition %d: %v", p, err)
			}
			if dirty < txnEnd[p] {
				return false, fmt.Sprintf("partition %d: first dirty offset %d, the transactions end at %d", p, dirty, txnEnd[p])
			}
			m, stray, err := txnMarkers(dir(p))
			if err != nil { // the cleaner swapped a segment meanwhile
				return false, fmt.Sprintf("partition %d: %v", p, err)
			}
			early[p] = stray
			t.Logf("%s[%d] cleaned past the transactions (first dirty offset %d): %d markers, %d of them without a transaction batch before them", topic, p, dirty, m, stray)
		}
		return true, ""
	})
	for p, stray := range early {
		if stray == 0 {
			t.Errorf("%s[%d]: right after its clean no marker is left without its transaction's batches: the markers of the emptied transactions went before delete.retention.ms (%v)", topic, p, deleteRetention)
		}
	}
	last := lastOffsets(t, c, topic)
	check("franz-go read_committed after cleaning", readToEnd(t, c, topic, true, last))
	check("franz-go read_uncommitted after cleaning", readToEnd(t, c, topic, false, last))

	// The markers of the transactions the cleaner emptied get a delete
	// horizon, delete.retention.ms away, and a clean after it removes them.
	// A marker stays while its transaction has a batch in the log (the
	// producer's last one is kept, empty, for its sequence) or when it is the
	// last batch of its cleaned segment (the cleaner keeps that one whole);
	// no marker here carries a data-less producer epoch (franz-go keeps its
	// epoch from one transaction to the next).
	removed, markers := 0, map[int32]int{}
	waitUntil(t, "markers without a transaction batch removed", deleteRetention+30*time.Second, func() (bool, string) {
		removed = 0
		for p := range int32(txnSegPartitions) {
			m, stray, err := txnMarkers(dir(p))
			if err != nil {
				return false, fmt.Sprintf("partition %d: %v", p, err)
			}
			if stray > 0 {
				return false, fmt.Sprintf("partition %d: %d of its %d markers have no transaction batch before them", p, stray, m)
			}
			removed += txnSegTxns - m
			markers[p] = m
		}
		return true, ""
	})
	if removed == 0 {
		t.Fatalf("no marker was removed (markers per partition %v, %d transactions): the cleaner kept markers of emptied transactions", markers, txnSegTxns)
	}
	t.Logf("markers left per partition %v: %d removed", markers, removed)
	check("franz-go read_committed after the markers went", readToEnd(t, c, topic, true, last))
	check("franz-go read_uncommitted after the markers went", readToEnd(t, c, topic, false, last))
}

// lastOffsets are the offsets of the last records of topic's partitions (a
// filler's in these tests: visible at both isolation levels).
func lastOffsets(t testing.TB, c *Cluster, topic string) map[int32]int64 {
	t.Helper()
	out := endOffsets(t, c.Admin(t), topic)
	for p := range out {
		out[p]--
	}
	return out
}

// readToEnd reads topic from the start with a franz-go consumer at the
// given isolation level until each partition p has delivered the record at
// offset last[p], and returns the values read. Unlike readTopic it needs no
// count: what the cleaner left is the outcome under test, and a count short
// of the truth would only make the read wait for its timeout.
func readToEnd(t testing.TB, c *Cluster, topic string, readCommitted bool, last map[int32]int64) []string {
	t.Helper()
	cl := txnConsumer(t, c, topic, readCommitted)
	defer cl.Close()
	var out []string
	done := map[int32]bool{}
	deadline := time.Now().Add(txnReadTimeout)
	for len(done) < len(last) {
		if time.Now().After(deadline) {
			t.Fatalf("franz-go reading %s (read_committed %v): the last offsets %v not all read after %v (partitions done: %v); read %q",
				topic, readCommitted, last, txnReadTimeout, done, out)
		}
		for _, r := range pollTxnConsumer(t, cl) {
			out = append(out, string(r.Value))
			if r.Offset >= last[r.Partition] {
				done[r.Partition] = true
			}
		}
	}
	return out
}

// cleanerFirstDirty reads the first dirty offset, where the last clean
// ended, from a partition directory's cleaner-offset-checkpoint (version 0,
// first dirty offset, earliest delete horizon: segment/clean.go).
func cleanerFirstDirty(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cleaner-offset-checkpoint"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != "0" {
		return 0, fmt.Errorf("cleaner-offset-checkpoint %q: not version 0 with two offsets", b)
	}
	return strconv.ParseInt(f[1], 10, 64)
}

// txnMarkers counts the control batches (transaction markers) of a
// partition's local log, and among them the strays: those with no
// transactional batch of their producer between them and its previous
// marker (the cleaner emptied their transaction), leaving out the last
// batch of a segment, which the cleaner keeps whole.
func txnMarkers(dir string) (markers, stray int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return 0, 0, err
	}
	var bases []int64 // of the segments, ascending
	for _, f := range files {
		b, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(f), ".log"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("segment file %s: %w", f, err)
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	segOf := func(off int64) int { return sort.Search(len(bases), func(i int) bool { return bases[i] > off }) }
	batches, err := readReplicaLog(dir)
	if err != nil {
		return 0, 0, err
	}
	const transactional, control = 0x10, 0x20
	hasData := map[int64]bool{} // by producer: a transactional batch since its last marker
	for i, bs := range batches {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(bs.raw); err != nil {
			return 0, 0, fmt.Errorf("batch at %d: %w", bs.base, err)
		}
		switch {
		case rb.Attributes&control != 0:
			markers++
			lastOfSegment := i == len(batches)-1 || segOf(batches[i+1].base) != segOf(bs.base)
			if !hasData[rb.ProducerID] && !lastOfSegment {
				stray++
			}
			delete(hasData, rb.ProducerID)
		case rb.Attributes&transactional != 0:
			hasData[rb.ProducerID] = true
		}
	}
	return markers, stray, nil
}
