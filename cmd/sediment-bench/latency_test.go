package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLatencyHistQuantiles(t *testing.T) {
	var h latencyHist
	if h.quantile(0.99) != 0 || h.summary() != (latencySummary{}) {
		t.Errorf("empty histogram: %+v", h.summary())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var exact []time.Duration
	for range 100_000 {
		// 1 µs to ~1 s, spread over many powers of two.
		d := time.Duration(float64(time.Microsecond) * float64(uint64(1)<<rng.IntN(20)) * (1 + rng.Float64()))
		exact = append(exact, d)
		h.add(d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want, got := percentile(exact, q), h.quantile(q)
		if got < want || float64(got-want) > float64(want)/(1<<latencySubBits) {
			t.Errorf("quantile(%v) = %v, exact %v: want at most 1/%d above", q, got, want, 1<<latencySubBits)
		}
	}
	if h.max != exact[len(exact)-1] || h.n != uint64(len(exact)) {
		t.Errorf("max %v, n %d; want %v, %d", h.max, h.n, exact[len(exact)-1], len(exact))
	}

	// Small values are exact; a negative one (clocks do not go back, but
	// rounding might) counts as 0.
	var s latencyHist
	for _, d := range []time.Duration{-5, 3, 100, 127} {
		s.add(d)
	}
	if got := (latencySummary{p50: 3, p99: 127, p999: 127, max: 127}); s.summary() != got {
		t.Errorf("small values: %+v, want %+v", s.summary(), got)
	}
}

func TestLatencyBuckets(t *testing.T) {
	// Every value lies in its bucket, whose top is below the next bucket's
	// values, and buckets are contiguous.
	for _, v := range []time.Duration{0, 1, 127, 128, 255, 256, 257, 1000, 1 << 20, 1<<20 + 12345, time.Hour, 1<<62 + 1} {
		i := latencyBucket(v)
		if top := latencyBucketMax(i); top < v {
			t.Errorf("value %d in bucket %d whose top is %d", v, i, top)
		}
		if i > 0 && latencyBucketMax(i-1) >= v {
			t.Errorf("value %d in bucket %d, but bucket %d reaches %d", v, i, i-1, latencyBucketMax(i-1))
		}
		if latencyBucket(latencyBucketMax(i)) != i || latencyBucket(latencyBucketMax(i)+1) != i+1 {
			t.Errorf("bucket %d's top %d is not its last value", i, latencyBucketMax(i))
		}
	}
}

func TestLatencySchedule(t *testing.T) {
	for _, tc := range []struct {
		j, n int
		rate float64
		tick int64
		due  int
	}{
		{1, 100, 2500, 1, 2}, // 2.5 records a tick: records 1 and 2 at tick 1
		{3, 100, 2500, 2, 5},
		{6, 100, 2500, 3, 7},
		{6, 6, 2500, 3, 6}, // never past n
		{1, 10, 10, 100, 1},
		{2, 10, 10, 200, 2},
		{1, 1000, 1e6, 1, 1000}, // a thousand a tick
	} {
		tick, due := latencySchedule(tc.j, tc.n, tc.rate)
		if tick != tc.tick || due != tc.due {
			t.Errorf("latencySchedule(%d, %d, %v) = %d, %d; want %d, %d", tc.j, tc.n, tc.rate, tick, due, tc.tick, tc.due)
		}
	}
}

func TestLatencyReader(t *testing.T) {
	pool := newValuePool(64)
	r := newLatencyReader(pool, 4, 2)
	// Record 0 (the warm-up) and 2 on partition 0, 1 and 3 on partition 1.
	for _, rec := range []struct {
		p   int32
		off int64
		idx int
	}{{0, 0, 0}, {1, 0, 1}, {0, 1, 2}, {1, 1, 3}} {
		if err := r.add(rec.p, rec.off, latencyValue(pool, rec.idx, 1000), 1000+int64(rec.idx)*int64(time.Millisecond)); err != nil {
			t.Fatalf("record %d: %v", rec.idx, err)
		}
	}
	if r.got != 4 || r.e2e.n != 3 || r.e2e.max != 3*time.Millisecond {
		t.Errorf("got %d, %d latencies, max %v; want 4, 3 (not the warm-up's), 3ms", r.got, r.e2e.n, r.e2e.max)
	}
	for _, tc := range []struct {
		name string
		p    int32
		off  int64
		v    []byte
		want string
	}{
		{"repeat", 0, 1, latencyValue(pool, 2, 0), "got offset 1, want 2"},
		{"gap", 1, 3, latencyValue(pool, 2, 0), "got offset 3, want 2"},
		{"other partition", 2, 0, latencyValue(pool, 2, 0), "partition 2 of a 2-partition topic"},
		{"twice", 0, 2, latencyValue(pool, 3, 0), "record 3 read twice"},
		{"beyond", 0, 2, latencyValue(pool, 4, 0), "record index 4, beyond the 4 produced"},
		{"short", 0, 2, latencyValue(pool, 1, 0)[:63], "value of 63 bytes"},
		{"corrupted", 0, 2, func() []byte { v := latencyValue(pool, 1, 0); v[40] ^= 1; return v }(), "value of record 1 corrupted"},
	} {
		if err := r.add(tc.p, tc.off, tc.v, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestLatencyFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{nil, ""},
		{[]string{"--latency-duration", "2s", "--latency-max-records", "20000", "--latency-rate", "5000"}, ""},
		{[]string{"--latency-duration", "10ms"}, "--latency-duration"},
		{[]string{"--latency-max-records", "15"}, "--latency-max-records"}, // fewer than --partitions
		{[]string{"--latency-rate", "-1"}, "--latency-rate"},
		{[]string{"--latency-rate", "0.5", "--latency-duration", "1s"}, "--latency-rate"}, // not one record
	} {
		var f benchFlags
		if err := benchFlagSet(&f).Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := f.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}

func TestRunqueueWait(t *testing.T) {
	if runqueueWait(-1) != 0 {
		t.Error("a wait for no process")
	}
	a := runqueueWait(os.Getpid())
	b := runqueueWait(os.Getpid())
	if a < 0 || b < a {
		t.Errorf("waits %v then %v: want a count that never goes back", a, b)
	}
}

func TestResolveKlite(t *testing.T) {
	dir := t.TempDir()
	sediment := filepath.Join(dir, "sediment")
	if bin, why, err := resolveKlite("", sediment); bin != "" || err != nil || !strings.Contains(why, "no --klite-bin") {
		t.Errorf("nothing next to sediment: %q, %q, %v", bin, why, err)
	}
	if _, _, err := resolveKlite(filepath.Join(dir, "missing"), sediment); err == nil {
		t.Error("a missing --klite-bin accepted")
	}
	if _, err := newKliteTarget("", sediment, 16, 1<<20); err == nil || !strings.Contains(err.Error(), "--only klite: no --klite-bin") {
		t.Errorf("--only klite without klite: %v", err)
	}
	next := filepath.Join(dir, "klite")
	if err := os.WriteFile(next, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if bin, why, err := resolveKlite("", sediment); bin != next || why != "" || err != nil {
		t.Errorf("klite next to sediment: %q, %q, %v", bin, why, err)
	}
	kt, err := newKliteTarget("", sediment, 16, 3<<30)
	if err != nil || kt.bin != next || kt.walMax != 6<<30 {
		t.Errorf("--only klite with klite next to sediment: %+v, %v; want %s and a 6 GiB WAL bound", kt, err, next)
	}
	if kliteWALMax(1<<20) != 1<<30 {
		t.Errorf("WAL bound for 1 MiB: %d, want klite's default 1 GiB", kliteWALMax(1<<20))
	}
}

func TestLatencyReport(t *testing.T) {
	run := func(target string, p99 time.Duration) latencyRun {
		return latencyRun{target: target, rate: 1000, records: 1000, sendTime: time.Second,
			e2e: latencySummary{p50: time.Millisecond, p99: p99, p999: 2 * p99, max: 3 * p99}}
	}
	res := func(sed, kl time.Duration) latencyResult {
		k := run("klite", kl)
		return latencyResult{max: phaseResult{records: 10, bytes: 10 << 20, elapsed: time.Second}, sediment: run("sediment", sed), klite: &k}
	}
	runs := []latencyResult{res(4*time.Millisecond, 8*time.Millisecond), res(12*time.Millisecond, 6*time.Millisecond), res(8*time.Millisecond, 4*time.Millisecond)}
	var b bytes.Buffer
	printLatencyResults(&b, "median of 3 runs", latencyMedians(runs), runs)
	noKlite := runs[0]
	noKlite.klite = nil
	printLatencyResults(&b, "results", noKlite, nil)
	out := b.String()
	for _, want := range []string{
		"latency sediment maximum produce: 10 rec/s (10.0 MiB/s)",
		"latency sediment @ 1000 rec/s: e2e p50 1.00 p99 8.00 p99.9 16.00 max 24.0 ms",
		"latency klite @ 1000 rec/s: e2e p50 1.00 p99 6.00",
		"sediment e2e p99: 8.00 ms (target <= 10 ms met); per run: 4.00 12.00 8.00",
		"sediment e2e p99 / klite e2e p99: 1.33 (target <= 1 MISSED); per run: 0.50 2.00 2.00",
		"sediment e2e p99: 4.00 ms (target <= 10 ms met)\nsediment e2e p99 / klite e2e p99: no klite",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestLatencyQuick runs the latency phase with --quick against a real
// broker (and klite, when $KLITE_BIN names one), so that it cannot rot:
// the maximum, the fixed rate with every record checked, the lines.
func TestLatencyQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	bin := sedimentBinForTest(t)
	args := []string{"--quick", "--only", "latency", "--latency-duration", "1s", "--sediment-bin", bin, "--work-dir", t.TempDir(), "--timeout", "2m"}
	wants := []string{"latency sediment maximum produce: ", "latency sediment @ ", "sediment e2e p99: "}
	if klite := os.Getenv("KLITE_BIN"); klite != "" {
		args = append(args, "--klite-bin", klite)
		wants = append(wants, "latency klite @ ", "sediment e2e p99 / klite e2e p99: ")
	}
	b := benchOutput(t, args...)
	for _, want := range wants {
		if !strings.Contains(string(b), want) {
			t.Errorf("output lacks %q:\n%s", want, b)
		}
	}
	t.Logf("\n%s", b)
}

// benchOutput runs benchMain with args and returns what it printed on
// stdout (its results), failing t on an error.
func benchOutput(t *testing.T, args ...string) []byte {
	t.Helper()
	// benchMain prints its results on os.Stdout: read them from a file.
	outPath := filepath.Join(t.TempDir(), "stdout")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = out
	err = benchMain(args)
	os.Stdout = stdout
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
