package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// runqueueWait is how long the threads of process pid have been runnable but
// waiting for a CPU: the second field of /proc/PID/task/TID/schedstat,
// summed over the threads that exist now (Go's threads rarely end); 0 when
// it cannot be read. The latency phase prints its growth over a run: on a
// shared machine, time a broker or the bench waited for a CPU is latency no
// broker can avoid.
func runqueueWait(pid int) time.Duration {
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}
