package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Command is a process for StartProcess to run.
type Command struct {
	Name string   // names the process in errors, e.g. "broker 2" or "minio"
	Bin  string   // path of the executable
	Args []string // arguments after Bin
	Env  []string // the whole environment; nil means Environ()
	// Log is the file that receives the process's stdout and stderr. It is
	// appended to (and created, with its directory, when missing), so the
	// runs of a restarted process follow each other in one file.
	Log string
}

// Process is one run of a Command. Its output goes straight to the log file
// (the child writes it; nothing is copied through this process), which the
// methods read back. Safe for concurrent use.
type Process struct {
	name  string
	cmd   *exec.Cmd
	log   string
	from  int64         // offset of this run's output in log
	done  chan struct{} // closed once the process has exited and err is set
	err   error         // cmd.Wait's result
	ended atomic.Bool   // Kill or Stop ended it: its exit is no failure
	pause atomic.Bool   // Pause sent SIGSTOP and no Resume followed
}

// Environ is this process's environment without SEDIMENT_* variables: the
// broker reads those as flags, and a setting meant for someone's `sediment
// serve` must not change a broker under test.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEDIMENT_") {
			env = append(env, kv)
		}
	}
	return env
}

// StartProcess starts c. A goroutine owned by the Process waits for it to
// exit; nothing else needs to be released, but a process that is not
// stopped runs on until the caller exits.
func StartProcess(c Command) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(c.Log), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := lf.Stat()
	if err != nil {
		lf.Close()
		return nil, err
	}
	cmd := exec.Command(c.Bin, c.Args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = Environ()
	}
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	p := &Process{name: c.Name, cmd: cmd, log: c.Log, from: st.Size(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// Name is the Command's name.
func (p *Process) Name() string { return p.name }

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file the process writes its output to.
func (p *Process) LogPath() string { return p.log }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited (a paused one runs).
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig without waiting. A process that has exited is no error.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s (pid %d): signal %v: %w", p.name, p.PID(), sig, err)
	}
	return nil
}

// Kill sends SIGKILL, as a crash would, and waits until the process is
// gone. Its exit is then no failure (Alive, Stop).
func (p *Process) Kill() error {
	p.ended.Store(true)
	err := p.Signal(syscall.SIGKILL)
	<-p.done
	return err
}

// Pause freezes the process with SIGSTOP, connections open: a long GC
// pause or a hung VM, as its peers see it.
func (p *Process) Pause() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.pause.Store(true)
	return nil
}

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error {
	if err := p.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	p.pause.Store(false)
	return nil
}

// Paused reports whether Pause froze the process and no Resume followed.
func (p *Process) Paused() bool { return p.pause.Load() && p.Running() }

// Stop sends SIGTERM (and SIGCONT, should the process be paused), waits up
// to grace for it to exit, then sends SIGKILL and waits. It returns nil
// when the process exited with code 0 or of the SIGTERM, or had been
// killed by Kill; otherwise an error saying how it ended, with the end of
// its output.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return p.exitErr(false)
	}
	p.ended.Store(true)
	_ = p.Signal(syscall.SIGTERM)
	if p.pause.Load() {
		_ = p.Resume()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exitErr(true)
	case <-t.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed%s", p.name, p.PID(), grace, p.LogTail())
}

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 when a signal ended it).
func (p *Process) Wait(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		return -1, fmt.Errorf("%s (pid %d) still running after %v", p.name, p.PID(), timeout)
	}
	return p.ExitCode(), nil
}

// ExitCode is the exit code of an exited process, -1 when a signal ended
// it or it still runs.
func (p *Process) ExitCode() int {
	if p.Running() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// ExitErr is cmd.Wait's error once the process has exited (nil for exit
// code 0 and while it runs).
func (p *Process) ExitErr() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Alive returns nil while the process runs, and after Kill or Stop ended
// it; otherwise, once it has exited on its own, an error saying how, with
// the end of its output.
func (p *Process) Alive() error {
	if p.ended.Load() || p.Running() {
		return nil
	}
	return fmt.Errorf("%s (pid %d) exited: %v%s", p.name, p.PID(), p.err, p.LogTail())
}

func (p *Process) exitErr(signalled bool) error {
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			switch {
			case ws.Signal() == syscall.SIGKILL && p.ended.Load():
				return nil
			case ws.Signal() == syscall.SIGTERM && signalled:
				return nil
			}
		}
	}
	return fmt.Errorf("%s (pid %d) exited: %w%s", p.name, p.PID(), p.err, p.LogTail())
}

// Output is what this run has written so far.
func (p *Process) Output() string { return readFrom(p.log, p.from) }

// Tail is the last n lines of this run's output.
func (p *Process) Tail(n int) string { return lastLines(p.Output(), n) }

// LogTail is the end of this run's output formatted to follow an error
// message: a newline, a line naming the log file, at most 40 lines (and
// 16 KiB); empty when the process has written nothing.
func (p *Process) LogTail() string {
	out := p.Output()
	const maxBytes = 16 << 10
	if len(out) > maxBytes {
		out = out[len(out)-maxBytes:]
	}
	out = lastLines(out, 40)
	if out == "" {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s\n---", p.log, out)
}

// Memory is the process's resident set now and at its peak.
func (p *Process) Memory() (Memory, error) {
	m, err := ReadMemory(p.PID())
	if err != nil {
		return m, fmt.Errorf("%s (pid %d): %w", p.name, p.PID(), err)
	}
	return m, nil
}

// CPU is the user and system time the process has used: once it has
// exited, as wait(2) reported it; before that, as /proc/<pid>/stat says (in
// ticks of 10 ms; 0 where there is no /proc).
func (p *Process) CPU() time.Duration {
	if !p.Running() {
		return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	}
	return processCPU(p.PID())
}

// Memory is a process's resident set in bytes, as Linux reports it in
// /proc/<pid>/status.
type Memory struct {
	RSS uint64 // VmRSS: resident now
	HWM uint64 // VmHWM: the peak resident set so far
}

// readFrom is the content of the file at path from offset from on; empty
// when it cannot be read.
func readFrom(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// lastLines is the last n lines of s, without a trailing newline.
func lastLines(s string, n int) string {
	b := bytes.TrimRight([]byte(s), "\n")
	if len(b) == 0 {
		return ""
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
