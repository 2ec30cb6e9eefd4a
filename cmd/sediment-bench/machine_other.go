//go:build !linux

package main

import "time"

// The machine facts are read from /proc and statfs(2) on Linux; elsewhere
// the header says "?".
func kernelRelease() string     { return "?" }
func cpuModel() string          { return "" }
func fsType(path string) string { return "?" }

// selfCPU would need getrusage; reported as 0 here.
func selfCPU() time.Duration { return 0 }
