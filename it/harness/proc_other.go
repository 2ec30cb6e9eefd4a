//go:build !linux

package harness

import (
	"errors"
	"syscall"
	"time"
)

// sysProcAttr: the process-group and parent-death settings are Linux's;
// elsewhere children end only when the caller stops them.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// ReadMemory needs /proc/<pid>/status, which only Linux has.
func ReadMemory(pid int) (Memory, error) {
	return Memory{}, errors.New("memory is read from /proc/<pid>/status, which needs Linux")
}

// processCPU needs /proc/<pid>/stat: 0 here.
func processCPU(pid int) time.Duration { return 0 }
