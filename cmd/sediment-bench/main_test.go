package main

import (
	"testing"
	"time"
)

func TestValuePoolCheck(t *testing.T) {
	p := newValuePool(64)
	records := len(p.vals) + 10 // so index len(p.vals) reuses entry 0
	for _, i := range []int{0, 1, len(p.vals), records - 1} {
		v := p.value(i)
		got, err := p.check(v, records)
		if err != nil || got != i {
			t.Fatalf("check(value(%d)) = %d, %v", i, got, err)
		}
	}
	if p.value(0)[20] == p.value(1)[20] && p.value(0)[40] == p.value(1)[40] && p.value(0)[60] == p.value(1)[60] {
		t.Error("values 0 and 1 look alike: the pool is not random")
	}
	bad := []struct {
		name string
		v    []byte
	}{
		{"short", p.value(3)[:63]},
		{"index beyond records", p.value(records)},
		{"flipped byte", func() []byte { v := p.value(3); v[40] ^= 1; return v }()},
	}
	for _, tc := range bad {
		if _, err := p.check(tc.v, records); err == nil {
			t.Errorf("%s: check accepted a bad value", tc.name)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i))
	}
	if got := percentile(lat, 0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := percentile(lat, 0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	if got := percentile(lat[:1], 0.99); got != 1 {
		t.Errorf("p99 of one = %d, want 1", got)
	}
}

func TestMedians(t *testing.T) {
	run := func(produce time.Duration, rss uint64) []runResult {
		return []runResult{{target: "x", peakRSS: rss, workloadResult: workloadResult{produce: phaseResult{records: 1, bytes: 1, elapsed: produce}}}}
	}
	m := medians([][]runResult{run(3, 10), run(1, 30), run(2, 20)})
	if m[0].produce.elapsed != 2 || m[0].peakRSS != 20 {
		t.Errorf("odd medians = %v, %d; want 2, 20", m[0].produce.elapsed, m[0].peakRSS)
	}
	m = medians([][]runResult{run(1, 10), run(4, 20)})
	if m[0].produce.elapsed != 3 || m[0].peakRSS != 15 {
		t.Errorf("even medians = %v, %d; want 3 (2.5 rounded), 15", m[0].produce.elapsed, m[0].peakRSS)
	}
}

func TestBenchFlagsValidate(t *testing.T) {
	var f benchFlags
	if err := benchFlagSet(&f).Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	f.only = "kafka"
	if err := f.validate(); err == nil {
		t.Error("--only kafka accepted")
	}
}

func TestParseOnly(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"all", []string{"sediment", "kfake", "sediment-3", "sediment-tier", "groups", "cleaner", "txn", "security", "latency", "scale", "image"}},
		{"both", []string{"sediment", "kfake"}},
		{"sediment-3", []string{"sediment-3"}},
		{"sediment, sediment-3", []string{"sediment", "sediment-3"}},
		{"sediment,klite", []string{"sediment", "klite"}}, // klite only when named: not in all
	} {
		got, err := parseOnly(tc.in)
		if err != nil {
			t.Errorf("parseOnly(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parseOnly(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for _, n := range tc.want {
			if !got[n] {
				t.Errorf("parseOnly(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
	for _, bad := range []string{"", "kafka", "sediment,", "sediment-5"} {
		if _, err := parseOnly(bad); err == nil {
			t.Errorf("parseOnly(%q) accepted", bad)
		}
	}
}
