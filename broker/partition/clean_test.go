package partition

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/segment/vfs"
)

func TestCleanerConfigValidate(t *testing.T) {
	if err := DefaultCleanerConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []CleanerConfig{
		{Threads: 0, DedupeBufferSize: 1 << 20, Backoff: 1},
		{Threads: 4, DedupeBufferSize: 2048, Backoff: 1},
		{Threads: 1, DedupeBufferSize: 1 << 20},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestCleanerPicksTheDirtiest: of the compacted logs due, the one with the
// largest dirty ratio is cleaned first, below its high watermark; a log in
// progress is skipped; logs that are not compacted are never picked.
func TestCleanerPicksTheDirtiest(t *testing.T) {
	fsys := vfs.NewMem()
	part := func(name string, policy segment.CleanupPolicy, versions int) *Partition {
		cfg := segment.DefaultConfig()
		cfg.SegmentBytes, cfg.CleanupPolicy, cfg.MinCleanableDirtyRatio = 1024, policy, 0.1
		l, err := segment.Open("/d/"+name, cfg, segment.Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		for i := range 40 {
			key := fmt.Sprint(i % versions)
			if _, err := l.AppendLeader(segmenttest.Batch{ProducerID: -1, Records: []segmenttest.Record{{Key: []byte(key), Value: []byte("some value of a record")}}}.Encode(), 0); err != nil {
				t.Fatal(err)
			}
		}
		l.Roll()
		p := &Partition{topic: name, log: l}
		p.hw.Store(l.LogEndOffset())
		return p
	}
	a := part("a", segment.CleanupCompact, 2)
	b := part("b", segment.CleanupCompact, 40)
	d := part("d", segment.CleanupDelete, 2)
	// b cleaned once: its dirt is gone. a is all dirty.
	if _, err := b.log.Clean(context.Background(), segment.NewOffsetMap(1<<16), b.hw.Load()); err != nil {
		t.Fatal(err)
	}
	c, err := newCleaner(DefaultCleanerConfig(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if p, limit := c.grabFilthiest([]*Partition{d, b, a}); p != a || limit != a.hw.Load() {
		t.Fatalf("picked %v below %d, want a", p, limit)
	}
	var m dto.Metric
	if err := c.met.dirtyPartitions.Write(&m); err != nil || m.GetGauge().GetValue() != 1 {
		got := m.GetGauge().GetValue()
		t.Fatalf("partitions_dirty %v (%v)", got, err)
	}
	if p, _ := c.grabFilthiest([]*Partition{d, b, a}); p != nil {
		t.Fatalf("picked %v while a is in progress and nothing else is due", p)
	}
	// A hold on the high watermark keeps what is above it out of the clean.
	a.hw.Store(0)
	delete(c.inProgress, a)
	if p, _ := c.grabFilthiest([]*Partition{a}); p != nil {
		t.Fatal("a log with nothing committed was picked")
	}
}
