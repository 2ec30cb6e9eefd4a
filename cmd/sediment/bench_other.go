//go:build !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

// childSysProcAttr: the process-group and parent-death settings the bench
// uses are Linux's; elsewhere children are stopped by the bench's defers only.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// peakRSS needs /proc/<pid>/status (VmHWM), which only Linux has.
func peakRSS(pid int) (uint64, error) {
	return 0, errors.New("peak RSS is read from /proc/<pid>/status, which needs Linux")
}

func kernelRelease() string     { return "?" }
func cpuModel() string          { return "" }
func fsType(path string) string { return "?" }

// selfCPU would need getrusage; reported as 0 here.
func selfCPU() time.Duration { return 0 }
