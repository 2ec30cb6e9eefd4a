package tier_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	"github.com/sedimentio/sediment/tier/tiertest"
)

func TestZZSimCatchUp(t *testing.T) {
	if os.Getenv("SIM") == "" {
		t.Skip()
	}
	const parts = 16
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var segs [][]tier.RemoteSegment
	var want int64
	for p := range parts {
		cfg := segment.DefaultConfig()
		cfg.SegmentBytes = 32 << 20
		l, err := segment.Open(t.TempDir(), cfg, segment.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 1100 {
			n := 16 + rng.IntN(200)
			recs := make([]segmenttest.Record, n)
			for j := range recs {
				v := make([]byte, 1024)
				for k := 0; k < len(v); k += 8 {
					binary.LittleEndian.PutUint64(v[k:], rng.Uint64())
				}
				recs[j] = segmenttest.Record{Value: v}
			}
			b := segmenttest.Batch{FirstTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}.Encode()
			if _, err := l.AppendLeader(b, 3); err != nil {
				t.Fatal(err)
			}
		}
		l.Roll()
		var ps []tier.RemoteSegment
		for _, info := range l.Segments() {
			if !info.Sealed || info.NextOffset == info.BaseOffset {
				continue
			}
			logb, _ := os.ReadFile(info.LogPath)
			idx, _ := os.ReadFile(info.IndexPath)
			seg := tier.RemoteSegment{V: 1, TopicID: testTopicID, Partition: int32(p), UploadID: "u", BaseOffset: info.BaseOffset, EndOffset: info.NextOffset - 1, LeaderEpoch: 3, Size: int64(len(logb)), Compression: "none", State: tier.CopyFinished}
			tiertest.MustPut(t, fs, objKey(seg, tier.KindIndex), idx)
			tiertest.MustPut(t, fs, objKey(seg, tier.KindLog), logb)
			want += int64(len(logb))
			ps = append(ps, seg)
		}
		segs = append(segs, ps)
		l.Close()
	}
	r, reg, _ := newReader(t, fs, func(c *tier.ReaderConfig) {
		d := tier.DefaultReaderConfig(c.CacheDir)
		d.CacheBytes = 1 << 30
		*c = d
	})
	next := make([]int64, parts)
	si := make([]int, parts)
	rounds := 0
	for more := true; more; rounds++ {
		more = false
		var wg sync.WaitGroup
		for p := range parts {
			if si[p] >= len(segs[p]) {
				continue
			}
			more = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := segs[p][si[p]]
				b, err := r.Read(t.Context(), s, next[p], 1<<20, true)
				if err != nil {
					t.Error(err)
					return
				}
				for len(b) > 0 {
					last := int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:])))
					next[p] = last + 1
					b = b[12+int(binary.BigEndian.Uint32(b[8:])):]
				}
				if next[p] > s.EndOffset {
					si[p]++
				}
			}()
		}
		wg.Wait()
	}
	got := metric(t, reg, "sediment_tier_remote_fetch_bytes_total")
	fmt.Printf("objects %d MiB, fetched %.0f MiB (%.2fx) in %.0f requests; hits %.0f misses %.0f; rounds %d\n", want>>20, got/(1<<20), got/float64(want),
		metric(t, reg, "sediment_tier_remote_fetch_requests_total"), metric(t, reg, "sediment_tier_cache_hits_total"), metric(t, reg, "sediment_tier_cache_misses_total"), rounds)
}
