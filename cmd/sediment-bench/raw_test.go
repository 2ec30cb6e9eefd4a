package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRawBaseline runs both baselines at a small size on the test's temp
// dir: every byte appended lands in the files, each file was synced, and the
// loopback reader received exactly those bytes.
func TestRawBaseline(t *testing.T) {
	w := workloadConfig{partitions: 4, records: 3000, valueSize: 1000, maxInflight: 500}
	cfg := rawConfigFor(filepath.Join(t.TempDir(), "raw"), w)
	cfg.chunk = 10_000 // a partial last chunk: 750000 bytes a file
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := runRaw(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := range cfg.files {
		st, err := os.Stat(filepath.Join(cfg.dir, fmt.Sprintf("raw-%02d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total != 3_000_000 || res.write.bytes != total || res.read.bytes != total {
		t.Errorf("files hold %d bytes, writer reports %d, reader %d; want 3000000", total, res.write.bytes, res.read.bytes)
	}
	if res.syncs < int64(cfg.files) {
		t.Errorf("%d fdatasyncs for %d files", res.syncs, cfg.files)
	}
	if res.write.elapsed <= 0 || res.read.elapsed <= 0 {
		t.Errorf("untimed: %+v", res)
	}
	var b bytes.Buffer
	printRawResults(&b, res, cfg, []runResult{{target: "sediment", workloadResult: workloadResult{
		produce: phaseResult{bytes: res.write.bytes, elapsed: 2 * res.write.elapsed},
		consume: phaseResult{bytes: res.read.bytes, elapsed: res.read.elapsed},
	}}})
	out := b.String()
	for _, want := range []string{
		"sediment produce / raw durable writer: 0.50x (target >= 0.85x MISSED)",
		"sediment consume / loopback reader: 1.00x (target >= 0.7x met)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)

	cancel()
	if _, err := runRaw(ctx, cfg); err == nil {
		t.Error("runRaw with a cancelled context succeeded")
	}
	cfg.files = 0
	if _, err := runRaw(context.Background(), cfg); err == nil {
		t.Error("runRaw with no files succeeded")
	}
}

func TestRawMedians(t *testing.T) {
	run := func(w, r time.Duration, syncs int64) rawResult {
		return rawResult{write: phaseResult{bytes: 1, elapsed: w}, read: phaseResult{bytes: 1, elapsed: r}, syncs: syncs}
	}
	m := rawMedians([]rawResult{run(3, 10, 5), run(1, 30, 7), run(2, 20, 6)})
	if m.write.elapsed != 2 || m.read.elapsed != 20 || m.syncs != 6 || m.write.bytes != 1 {
		t.Errorf("medians = %+v", m)
	}
}

func TestQuickFlags(t *testing.T) {
	var f benchFlags
	fs := benchFlagSet(&f)
	if err := fs.Parse([]string{"--quick", "--records", "500", "--txn-records", "700"}); err != nil {
		t.Fatal(err)
	}
	if err := applyQuick(fs); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatalf("--quick sizes do not validate: %v", err)
	}
	if f.records != 500 || f.txn.records != 700 {
		t.Errorf("explicit flags overridden: --records %d, --txn-records %d", f.records, f.txn.records)
	}
	if f.tierBytes != 16<<20 || f.security.records != 20000 || f.cleaner.keys != 1000 || f.image.starts != 1 {
		t.Errorf("--quick left sizes: tier %d, security %d, cleaner keys %d, image starts %d", f.tierBytes, f.security.records, f.cleaner.keys, f.image.starts)
	}
	var unset benchFlags
	if err := benchFlagSet(&unset).Parse(nil); err != nil {
		t.Fatal(err)
	}
	if unset.records == 20000 {
		t.Error("--quick sizes without --quick")
	}
}

// TestSedimentQuick runs the whole bench with --quick --only sediment
// against a real broker: the raw baselines, the workload with every record
// verified, and the ratios printed.
func TestSedimentQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	bin := sedimentBinForTest(t)
	b := benchOutput(t, "--quick", "--only", "sediment", "--sediment-bin", bin, "--work-dir", t.TempDir(), "--timeout", "2m")
	for _, want := range []string{
		"sediment bench: 20000 records x 1024 B values",
		"raw durable writer: ", "loopback reader: ",
		"sediment produce / raw durable writer: ", "sediment consume / loopback reader: ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("output lacks %q:\n%s", want, b)
		}
	}
	t.Logf("\n%s", b)
}
