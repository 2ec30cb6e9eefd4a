package main

// klite, the latency phase's comparison: a Kafka-compatible broker in Go
// (github.com/klaudworks/klite) that appends every partition's batches to one
// write-ahead log and syncs it once per --wal-sync-interval window (2 ms by
// default): group commit, as Sediment's default flush policy. It is started
// as a child like every target, with its defaults but for the addresses, the
// data directory and the WAL's size bound: without S3, klite deletes the
// oldest WAL segments beyond --wal-max-disk-size (1 GiB by default), unread
// records included, so the bound is set above what a run writes.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
)

// kliteTargetName is klite as a target of the workload (--only klite).
const kliteTargetName = "klite"

// newKliteTarget is the klite target of --only klite: --klite-bin, or klite
// next to the sediment binary, sized for a workload of bytes value bytes.
func newKliteTarget(flagged, sedimentBin string, partitions int, bytes int64) (*kliteTarget, error) {
	bin, why, err := resolveKlite(flagged, sedimentBin)
	if err == nil && bin == "" {
		err = errors.New(why)
	}
	if err != nil {
		return nil, fmt.Errorf("--only %s: %w", kliteTargetName, err)
	}
	return &kliteTarget{bin: bin, partitions: partitions, walMax: kliteWALMax(bytes)}, nil
}

// kliteWALMax is the --wal-max-disk-size for a run writing bytes of values:
// twice that (klite frames records too), and at least klite's default.
func kliteWALMax(bytes int64) int64 { return max(2*bytes, 1<<30) }

// kliteTarget is one klite broker.
type kliteTarget struct {
	bin        string
	partitions int
	walMax     int64 // --wal-max-disk-size: above the bytes the run writes
}

func (t *kliteTarget) name() string { return kliteTargetName }

func (t *kliteTarget) start(ctx context.Context, dir string) (*instance, error) {
	return startKafkaChild(ctx, "klite", t.bin, filepath.Join(dir, "klite.log"), func(addr string) []string {
		return []string{
			"--listen", addr,
			"--data-dir", filepath.Join(dir, "data"),
			"--default-partitions", strconv.Itoa(t.partitions),
			"--wal-max-disk-size", strconv.FormatInt(t.walMax, 10),
			"--log-level", "warn",
		}
	})
}

// latencyKlite starts klite in dir and runs the fixed rate against it.
func latencyKlite(ctx context.Context, cfg latencyConfig, dir string, rate float64, pool *valuePool, p *progress) (run latencyRun, err error) {
	name := latencyTargetName + " klite"
	phase := func(s string) { p.set(name, s) }
	written := rate * cfg.duration.Seconds() * float64(pool.size+100) // values and their framing
	t := &kliteTarget{bin: cfg.kliteBin, partitions: cfg.partitions, walMax: kliteWALMax(int64(written))}
	phase("starting klite")
	in, err := t.start(ctx, dir)
	if err != nil {
		return run, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping klite")
		if stopErr := in.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
	}()
	run, err = latencyAt(ctx, in, "", cfg, rate, pool, func(s string) { phase(fmt.Sprintf("%.0f rec/s: %s", rate, s)) })
	if err != nil {
		return run, fmt.Errorf("%s: %w%s%s", name, err, in.exitNote(), in.procs[0].LogTail())
	}
	run.target = "klite"
	return run, nil
}
