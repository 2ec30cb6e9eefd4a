package broker

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier/file"
)

// TestCompaction produces 200k records over 1k keys, with tombstones, to a compacted
// topic of small segments through a real client; the broker's cleaner compacts it.
// Reading from the start then gives exactly the last value of each key (tombstones
// included) below what was cleaned and every record of the uncleaned tail, in
// increasing offsets; after delete.retention.ms the tombstones are gone too. A record
// without a key is refused with INVALID_RECORD.
func TestCompaction(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.LogCleaner.Backoff = 50 * time.Millisecond })
	const (
		topic   = "compacted"
		records = 200_000
		keys    = 1000
	)
	cfg := func(v string) *string { return &v }
	b.createTopic(topic, 1, map[string]*string{
		"cleanup.policy":            cfg("compact"),
		"segment.bytes":             cfg("262144"),
		"min.cleanable.dirty.ratio": cfg("0.01"),
		"delete.retention.ms":       cfg("4000"),
	})
	// Batches well under segment.bytes: an append larger than a segment is
	// refused (below).
	cl := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(64<<10))
	ctx := ctxT(t, 120*time.Second)

	type rec struct {
		key, value []byte
	}
	produced := make(map[int64]rec, records)
	rng := rand.New(rand.NewPCG(1, 2))
	for start := 0; start < records; start += 10_000 {
		batch := make([]*kgo.Record, 0, 10_000)
		for i := start; i < start+10_000; i++ {
			r := &kgo.Record{Key: fmt.Appendf(nil, "key-%04d", rng.IntN(keys))}
			if rng.IntN(20) != 0 {
				r.Value = fmt.Appendf(nil, "value-%d", i)
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
	if len(produced) != records {
		t.Fatalf("%d offsets for %d records", len(produced), records)
	}

	// A record without a key has no place in a compacted topic.
	err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("null key: %v, want INVALID_RECORD", err)
	}
	// Nor a batch larger than segment.bytes (under max.message.bytes).
	big := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	err = big.ProduceSync(ctx, &kgo.Record{Key: []byte("big"), Value: make([]byte, 300<<10)}).FirstErr()
	if !errors.Is(err, kerr.RecordListTooLarge) {
		t.Fatalf("a batch of 300 KiB, segment.bytes 256 KiB: %v, want RECORD_LIST_TOO_LARGE", err)
	}

	p := b.srv.parts.Get(topic, 0)
	segs := p.Log().Segments()
	active := segs[len(segs)-1].BaseOffset
	waitFor(t, "the cleaner to clean every sealed segment", 60*time.Second, func() bool {
		c := p.Log().Cleanable(p.HighWatermark())
		return c.FirstDirty >= active && c.DirtyBytes == 0
	})
	t.Logf("%d records produced (%d in the active segment), log of %d bytes in %d segments after cleaning",
		records, records-active, p.Log().Size(), len(p.Log().Segments()))

	// last is each key's last record below cleaned; what lies below it must be exactly
	// those, what lies from it on, everything produced there.
	check := func(cleaned int64, tombstonesGone bool) {
		t.Helper()
		last := map[string]int64{}
		for off := int64(0); off < cleaned; off++ {
			if r, ok := produced[off]; ok {
				last[string(r.key)] = off
			}
		}
		c := b.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxBytes(1<<20))
		hw := p.HighWatermark()
		prev := int64(-1)
		seen := map[string]bool{}
		tail := 0
		for prev < hw-1 {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			for _, r := range fs.Records() {
				want, ok := produced[r.Offset]
				if r.Offset <= prev || !ok || !bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) {
					t.Fatalf("record at %d (after %d): %q=%q, produced %q=%q", r.Offset, prev, r.Key, r.Value, want.key, want.value)
				}
				prev = r.Offset
				if r.Offset >= cleaned {
					tail++
					continue
				}
				if last[string(r.Key)] != r.Offset || seen[string(r.Key)] {
					t.Fatalf("record at %d of key %s is not its last below %d (%d)", r.Offset, r.Key, cleaned, last[string(r.Key)])
				}
				if r.Value == nil && tombstonesGone {
					t.Fatalf("tombstone at %d still there after delete.retention.ms", r.Offset)
				}
				seen[string(r.Key)] = true
			}
		}
		for k, off := range last {
			if !seen[k] && !(tombstonesGone && produced[off].value == nil) {
				t.Fatalf("key %s lost: its last record at %d is gone", k, off)
			}
		}
		if want := records - int(cleaned); tail != want {
			t.Fatalf("%d records in the uncleaned tail from %d, produced %d", tail, cleaned, want)
		}
	}
	check(active, false)

	// Tombstones go at the first clean after their delete horizon (set by the clean that
	// first kept them, plus delete.retention.ms): the cleaner comes back for them.
	waitFor(t, "the tombstones' delete horizon to pass and a clean to remove them", 30*time.Second, func() bool {
		return tombstonesBelow(t, p.Log(), active) == 0 && !p.Log().Cleanable(p.HighWatermark()).HorizonPassed
	})
	check(active, true)
}

// tombstonesBelow counts the tombstones of the log below offset end.
func tombstonesBelow(t *testing.T, l *segment.Log, end int64) int {
	n := 0
	for off := l.LogStartOffset(); off < end; {
		s, err := l.Read(off, 64<<20, end, true)
		if err != nil {
			t.Fatal(err)
		}
		data, err := s.ReadAll()
		s.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			h, recs, err := segment.DecodeRecords(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Value == nil {
					n++
				}
			}
			off = h.NextOffset()
			data = data[h.Size():]
		}
	}
	return n
}

// TestCompactedTopicsAreNotTiered: with a tier, compacted topics stay local;
// asking for remote storage on one is INVALID_CONFIG (the tier's reader relies on
// contiguous offsets and immutable segments).
func TestCompactedTopicsAreNotTiered(t *testing.T) {
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, t.TempDir(), 1, nil, nil, func(d *Deps) { d.Tier = store })
	adm := b.admin()
	ctx := ctxT(t, 30*time.Second)
	compact, on := "compact,delete", "true"
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact, "remote.storage.enable": &on}, "refused")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("compact with remote storage: %v, want INVALID_CONFIG", err)
	}
	b.createTopic("local", 1, map[string]*string{"cleanup.policy": &compact})
	tp, ok := b.srv.cache.Topic("local")
	if !ok {
		t.Fatal("topic missing")
	}
	if s, err := b.srv.topicSettings(tp); err != nil || s.Tiered || !s.Log.CleanupPolicy.Compact() {
		t.Fatalf("settings of a compacted topic on a tiering broker: %+v %v", s, err)
	}
}
