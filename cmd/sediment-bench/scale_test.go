package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestScaleFlagsValidate(t *testing.T) {
	var f benchFlags
	if err := benchFlagSet(&f).Parse([]string{"--scale-partitions", "100, 1,16,16"}); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatal(err)
	}
	if got := f.scale.counts; len(got) != 3 || got[0] != 1 || got[1] != 16 || got[2] != 100 {
		t.Errorf("counts = %v, want [1 16 100]", got)
	}
	for _, bad := range []string{"", "0", "1,x", "-5", "200000"} {
		f.scale.partitions = bad
		if err := f.validate(); err == nil {
			t.Errorf("--scale-partitions %q accepted", bad)
		}
	}
}

func TestScaleVerdicts(t *testing.T) {
	row := func(n int, rf int16, mibs float64, produceP50 int) scaleRow {
		r := scaleRow{partitions: n, rf: rf, baseRSS: 40 << 20, idleRSS: 40<<20 + uint64(n)*(10<<10)}
		r.produce = phaseResult{bytes: int64(mibs * (1 << 20)), elapsed: 1e9}
		r.probe.produce = latStats{p50: 1000 * 1000, p99: 2000 * 1000}
		r.probe.fetch = latStats{p50: 100 * 1000, p99: 200 * 1000}
		r.probe.metadata = r.probe.fetch
		r.probeAlone = r.probe
		if produceP50 > 0 {
			r.probe.produce.p50 *= time.Duration(produceP50)
		}
		return r
	}
	var b strings.Builder
	printScaleResults(&b, "results", scaleResult{rows: []scaleRow{
		row(1, 1, 100, 0), row(16, 1, 100, 0), row(1000, 1, 60, 0), row(10000, 1, 80, 2), row(1000, 3, 50, 0),
	}})
	out := b.String()
	for _, want := range []string{
		"idle RSS per partition at 1000 partitions RF=1: 10.0 KiB (target: <= 20 KiB met)",
		"idle RSS per partition at 1000 partitions RF=3: 10.0 KiB",
		"produce at 1000 partitions / at 16: 0.60x (target: >= 0.7x MISSED)",
		"Produce of 1 partition beside 10000 idle ones RF=1 / alone (same broker): p50 2000/1000 µs 2.00x, p99 1.00x (target: p50 <= 1.2x MISSED)",
		"Fetch of 1 partition beside 10000 idle ones RF=1 / alone (same broker): p50 100/100 µs 1.00x, p99 1.00x (target: p50 <= 1.2x met)",
		"Produce of 1 partition beside 1000 idle ones RF=1 / alone (same broker): p50 1000/1000 µs 1.00x",
		"Metadata of 1 partition beside 1000 idle ones RF=3 / alone (same cluster): p50 100/100 µs 1.00x",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestScaleQuick runs the scale phase with --quick against a real broker:
// topics of 1, 16 and 1000 partitions created, their idle figures read,
// the probe requests checked and timed, and the workload produced and its
// end offsets verified.
func TestScaleQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers")
	}
	bin := sedimentBinForTest(t)
	b := benchOutput(t, "--quick", "--only", "scale", "--sediment-bin", bin, "--work-dir", t.TempDir(), "--timeout", "2m")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ +1 +1 .*$`),
		regexp.MustCompile(`(?m)^ +16 +1 .*$`),
		regexp.MustCompile(`(?m)^ +1000 +1 .*$`),
		regexp.MustCompile(`idle RSS per partition at 1000 partitions RF=1: -?[0-9.]+ KiB`),
		regexp.MustCompile(`produce at 1000 partitions / at 16: [0-9.]+x`),
		regexp.MustCompile(`Fetch of 1 partition beside 1000 idle ones RF=1 / alone \(same broker\): p50 [0-9]+/[0-9]+ µs [0-9.]+x`),
	} {
		if !want.Match(b) {
			t.Errorf("output lacks %s:\n%s", want, b)
		}
	}
	t.Logf("\n%s", b)
}
