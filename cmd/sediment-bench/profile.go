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
// broker serves on its --http address: /debug/pprof/profile?seconds=N and
// /debug/pprof/allocs?seconds=N (a delta over the same N seconds). Both start
// with the phase; the bench waits for them after the phase and before the
// next, so each profile holds one phase only. A phase shorter than N leaves
// the broker idle for the rest of the window, which adds no CPU samples and
// no allocations (the end-offset check after the produce falls into the
// produce window: a few ListOffsets); a longer one is profiled for its
// first N seconds. The waits come after the phase's timer, so the figures
// of a profiled run are those of an unprofiled one plus the profiler's cost
// (about 5% CPU while sampling).
type profiler struct {
	dir     string
	seconds int
	http    string // the broker's --http address; empty: profile nothing
}

// start begins the profiles of phase ("produce" or "consume"): it requests
// them at once and returns a wait that writes cpu-PHASE.pprof and
// allocs-PHASE.pprof into the directory once the window has passed. Nil p:
// a wait that does nothing.
func (p *profiler) start(ctx context.Context, phase string) (wait func() error) {
	if p == nil || p.http == "" {
		return func() error { return nil }
	}
	errs := make(chan error, 2)
	for kind, path := range map[string]string{"cpu": "profile", "allocs": "allocs"} {
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.http, path, p.seconds)
		file := filepath.Join(p.dir, kind+"-"+phase+".pprof")
		go func() { errs <- fetchProfile(ctx, url, file, p.seconds) }()
	}
	return func() error {
		return errors.Join(<-errs, <-errs)
	}
}

// fetchProfile writes the body of url to file.
func fetchProfile(ctx context.Context, url, file string, seconds int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile: GET %s: %s: %s", url, resp.Status, msg)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile: GET %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// profileFlagHelp is the usage of --profile.
var profileFlagHelp = "write the sediment target's CPU and allocation profiles of the produce and consume phases into `DIR` (cpu-produce.pprof, allocs-produce.pprof, cpu-consume.pprof, allocs-consume.pprof; each run overwrites the previous run's), taken from the broker's pprof handlers over the first --profile-seconds of each phase; `make profile` runs it and prints the top frames (BENCH.md)"

// profileSecondsHelp is the usage of --profile-seconds.
var profileSecondsHelp = "with --profile: seconds of each phase profiled, from its start (the bench waits out the rest of the window after a shorter phase)"

// validProfileSeconds checks --profile-seconds.
func validProfileSeconds(s int) error {
	if s < 1 || s > 600 {
		return errors.New("--profile-seconds " + strconv.Itoa(s) + ": want 1 to 600")
	}
	return nil
}
