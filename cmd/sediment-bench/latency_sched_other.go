//go:build !linux

package main

import "time"

// runqueueWait is unknown outside Linux.
func runqueueWait(pid int) time.Duration { return 0 }
