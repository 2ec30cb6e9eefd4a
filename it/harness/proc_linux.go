//go:build linux

package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysProcAttr puts a child in its own process group, so a Ctrl-C in the
// terminal reaches only the caller (which then stops its children in
// order), and has the kernel kill it should the caller die without
// cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// ReadMemory reads VmRSS and VmHWM of a running process from
// /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	var m Memory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	var seen int
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(val), " kB")
		if !ok {
			return m, fmt.Errorf("unexpected line %q in /proc/%d/status", strings.TrimSpace(line), pid)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(kb), 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s in /proc/%d/status: %w", name, pid, err)
		}
		if name == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.HWM = n << 10
		}
		seen++
	}
	if seen != 2 {
		return m, errors.New("no VmRSS and VmHWM in /proc/<pid>/status")
	}
	return m, nil
}

// processCPU is the user+system CPU time a running process has used, from
// /proc/<pid>/stat (in USER_HZ ticks, 100 a second on Linux); 0 when it
// cannot be read.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: fields count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}
