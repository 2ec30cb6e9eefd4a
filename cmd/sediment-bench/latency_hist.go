package main

import (
	"math"
	"math/bits"
	"time"
)

// latencyHist counts latencies in log-linear buckets, as HdrHistogram does:
// exact below 2^latencySubBits ns, then 2^latencySubBits buckets per power of
// two, so a percentile read from it is at most 1/2^latencySubBits (0.8%) above
// the true one. A minute at 100,000 records a second is 6 million samples;
// the histogram holds them in a fixed ~60 KiB. The maximum is kept exactly.
// Not safe for concurrent use.
type latencyHist struct {
	counts []uint64
	n      uint64
	max    time.Duration
}

const latencySubBits = 7

// latencyBucket is the bucket of d (negative counts as 0).
func latencyBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	const sub = 1 << latencySubBits
	if v < sub {
		return int(v)
	}
	shift := bits.Len64(v) - latencySubBits - 1 // v>>shift is in [sub, 2*sub)
	return sub + shift*sub + int(v>>shift) - sub
}

// latencyBucketMax is the largest latency bucket i holds.
func latencyBucketMax(i int) time.Duration {
	const sub = 1 << latencySubBits
	if i < sub {
		return time.Duration(i)
	}
	shift := (i - sub) / sub
	mant := uint64(i-sub-shift*sub) + sub
	hi := (mant+1)<<shift - 1
	if hi > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(hi)
}

func (h *latencyHist) add(d time.Duration) {
	i := latencyBucket(d)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

// quantile is the smallest latency that at least q of the samples do not
// exceed, rounded up to its bucket's top (never above the maximum); 0
// without samples.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(latencyBucketMax(i), h.max)
		}
	}
	return h.max
}

// latencySummary is the figures printed of one latency distribution.
type latencySummary struct {
	p50, p99, p999, max time.Duration
}

func (h *latencyHist) summary() latencySummary {
	return latencySummary{p50: h.quantile(0.50), p99: h.quantile(0.99), p999: h.quantile(0.999), max: h.max}
}
