package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// profiler captures the broker's CPU and allocation profiles of the workload's
// produce and consume phases (--profile DIR) from the pprof handlers the
// broker serves on its --http address. The CPU profile is
// /debug/pprof/profile?seconds=N, started with the phase. Allocations are two
// snapshots of /debug/pprof/heap?gc=1 (the GC makes each current: the runtime
// publishes allocations only at the end of a GC cycle, so a delta without
// one, allocs?seconds=N, shows what happened before the window and misses
// what happened in it), one at the phase's start and one N seconds later;
// `go tool pprof -base START END` is the phase's (make profile writes that as
// allocs-PHASE.pprof). The bench waits for both after the phase and before
// the next, so each window holds one phase only. A phase shorter than N
// leaves the broker idle for the rest of the window, which adds no CPU
// samples and no allocations (the end-offset check after the produce falls
// into the produce window: a few ListOffsets); a longer one is profiled for
// its first N seconds. The waits come after the phase's timer, so the figures
// of a profiled run are those of an unprofiled one plus the profiler's cost
// (about 5% CPU while sampling, and two GCs).
type profiler struct {
	dir     string
	seconds int
	http    string // the broker's --http address; empty: profile nothing
}

// start begins the profiles of phase ("produce" or "consume"): it requests
// them at once and returns a wait that writes cpu-PHASE.pprof,
// allocs-PHASE-start.pprof and allocs-PHASE-end.pprof into the directory
// once the window has passed. Nil p: a wait that does nothing.
func (p *profiler) start(ctx context.Context, phase string) (wait func() error) {
	if p == nil || p.http == "" {
		return func() error { return nil }
	}
	url := func(path string) string { return fmt.Sprintf("http://%s/debug/pprof/%s", p.http, path) }
	file := func(kind string) string { return filepath.Join(p.dir, kind+".pprof") }
	window := time.Duration(p.seconds) * time.Second
	cpu := make(chan error, 1)
	go func() {
		cpu <- fetchProfile(ctx, url(fmt.Sprintf("profile?seconds=%d", p.seconds)), file("cpu-"+phase), window)
	}()
	allocs := make(chan error, 1)
	go func() {
		start := time.Now()
		if err := fetchProfile(ctx, url("heap?gc=1"), file("allocs-"+phase+"-start"), 0); err != nil {
			allocs <- err
			return
		}
		select {
		case <-time.After(window - time.Since(start)):
		case <-ctx.Done():
			allocs <- ctx.Err()
			return
		}
		allocs <- fetchProfile(ctx, url("heap?gc=1"), file("allocs-"+phase+"-end"), 0)
	}()
	return func() error {
		return errors.Join(<-cpu, <-allocs)
	}
}

// fetchProfile writes the body of url, which takes about d to answer, to file.
func fetchProfile(ctx context.Context, url, file string, d time.Duration) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	err = httpGet(ctx, url, d+30*time.Second, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// httpGet GETs url within timeout and copies the body to w (io.Discard drops
// it), failing on a status other than 200.
func httpGet(ctx context.Context, url string, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, msg)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// profileFlagHelp is the usage of --profile.
var profileFlagHelp = "write the sediment target's CPU and allocation profiles of the produce and consume phases into `DIR` (cpu-PHASE.pprof, and allocs-PHASE-start.pprof and allocs-PHASE-end.pprof, whose difference is the phase's, for PHASE produce and consume; each run overwrites the previous run's), taken from the broker's pprof handlers over the first --profile-seconds of each phase; `make profile` runs it and prints the top frames (BENCH.md)"

// profileSecondsHelp is the usage of --profile-seconds.
var profileSecondsHelp = "with --profile: seconds of each phase profiled, from its start (the bench waits out the rest of the window after a shorter phase)"

// validProfileSeconds checks --profile-seconds.
func validProfileSeconds(s int) error {
	if s < 1 || s > 600 {
		return errors.New("--profile-seconds " + strconv.Itoa(s) + ": want 1 to 600")
	}
	return nil
}
