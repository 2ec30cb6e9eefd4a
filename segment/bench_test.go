package segment

import (
	"context"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func BenchmarkAppendLeader(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Flush = FlushOS
	l := openTest(b, b.TempDir(), cfg, Options{})
	batch := segmenttest.Plain(string(make([]byte, 1000)))
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.AppendLeader(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendGroupCommit(b *testing.B) {
	l := openTest(b, b.TempDir(), DefaultConfig(), Options{})
	batch := segmenttest.Plain(string(make([]byte, 1000)))
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		buf := append([]byte(nil), batch...)
		for pb.Next() {
			r, err := l.AppendLeader(buf, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.WaitDurable(context.Background(), r.LastOffset+1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(l.syncs.Load())/float64(b.N), "syncs/op")
}

func BenchmarkReadTail(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Flush = FlushOS
	l := openTest(b, b.TempDir(), cfg, Options{})
	batch := segmenttest.Plain(string(make([]byte, 200)))
	for range 10000 {
		l.AppendLeader(batch, 0)
	}
	leo := l.LogEndOffset()
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		off := leo - 1 - i%100
		s, err := l.Read(off, 1<<20, leo, true)
		if err != nil || s.Len == 0 {
			b.Fatal(err)
		}
		s.Release()
		i++
	}
}

func BenchmarkReadIndexed(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Flush = FlushOS
	l := openTest(b, b.TempDir(), cfg, Options{})
	batch := segmenttest.Plain(string(make([]byte, 200)))
	for range 20000 {
		l.AppendLeader(batch, 0)
	}
	leo := l.LogEndOffset()
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		off := (i * 7919) % (leo - 1000)
		s, err := l.Read(off, 64<<10, leo, true)
		if err != nil || s.Len == 0 {
			b.Fatal(err)
		}
		s.Release()
		i++
	}
}
