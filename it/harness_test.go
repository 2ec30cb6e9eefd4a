package it

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Timeouts of the harness. Generous: under -race on two cores an embedded
// etcd can take several seconds to elect itself.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
)

var (
	binOnce  sync.Once
	binPath  string
	binErr   error
	buildDir string // removed by TestMain when this test binary built the broker
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// inCI reports whether missing test dependencies must fail tests (CI=true).
func inCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// requireCommand returns the path of an external command a test needs. A
// missing one fails the test in CI and skips it elsewhere.
func requireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if inCI() {
		t.Fatalf("%s is required in CI (CI=true) but not found: %v (make test-deps installs it)", name, err)
	}
	t.Skipf("%s not found (%v); install it (make test-deps) to run this test", name, err)
	return ""
}

// sedimentBin is $SEDIMENT_BIN, or a static binary built once per test binary.
func sedimentBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("SEDIMENT_BIN"); p != "" {
			if _, err := os.Stat(p); err != nil {
				binErr = fmt.Errorf("SEDIMENT_BIN=%s: %w", p, err)
			}
			binPath = p
			return
		}
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		dir, err := os.MkdirTemp("", "sediment-it-bin-")
		if err != nil {
			binErr = err
			return
		}
		buildDir = dir
		out := filepath.Join(dir, "sediment")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/sediment")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building the broker (CGO_ENABLED=0 go build ./cmd/sediment in %s): %w\n%s", root, err, b)
			return
		}
		binPath = out
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n distinct loopback addresses that were free a moment ago.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var (
		addrs []string
		lns   []net.Listener
	)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// proc is one run of the broker process.
type proc struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited and its output is copied
	err      error         // cmd.Wait's result, set before done is closed
	logStart int           // offset of this run's output in Broker.logs
}

// Broker is one `sediment serve` process under test, restartable on the same
// data directory and ports. Its methods are meant for the test goroutine.
type Broker struct {
	t       testing.TB
	bin     string
	Dir     string // --data-dir
	Addr    string // Kafka listener
	HTTP    string // metrics and health
	etcdCl  string
	etcdPr  string
	extra   []string
	logs    *syncBuffer // stderr and stdout of every run, in order
	logFile *os.File
	LogPath string

	cur  *proc
	runs int
}

// errPortConflict is a start that failed because a port was taken meanwhile.
var errPortConflict = errors.New("port conflict")

// healthClient probes /healthz with a bound on each attempt.
var healthClient = &http.Client{Timeout: 2 * time.Second}

// registeredRE matches the line a broker logs once it is registered in etcd,
// that is, once this run (not a previous one) is what Metadata shows.
var registeredRE = regexp.MustCompile(`msg="broker registered"`)

// errIDInUse is a start that failed because the broker's previous
// incarnation still holds its etcd registration lease.
var errIDInUse = errors.New("broker id in use by the previous incarnation's lease")

// StartBroker starts a single broker with an embedded etcd on free loopback
// ports and a fresh data directory, and waits until it answers Kafka
// Metadata. extra are additional serve flags (later flags win). The broker is
// killed when the test ends.
func StartBroker(t testing.TB, extra ...string) *Broker {
	t.Helper()
	bin := sedimentBin(t)
	logDir := t.TempDir()
	if os.Getenv("SEDIMENT_IT_KEEP") != "" {
		d, err := os.MkdirTemp("", "sediment-it-logs-")
		if err != nil {
			t.Fatal(err)
		}
		logDir = d
	}
	logPath := filepath.Join(logDir, "broker.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{t: t, bin: bin, extra: extra, logs: &syncBuffer{}, logFile: lf, LogPath: logPath}
	t.Cleanup(b.cleanup)

	for attempt := 1; ; attempt++ {
		b.Dir = filepath.Join(t.TempDir(), "data")
		ports := freePorts(t, 4)
		b.Addr, b.HTTP, b.etcdCl, b.etcdPr = ports[0], ports[1], ports[2], ports[3]
		err := b.startAndWait()
		if err == nil {
			return b
		}
		if errors.Is(err, errPortConflict) && attempt < 5 {
			t.Logf("broker start attempt %d: %v; retrying on other ports", attempt, err)
			continue
		}
		t.Fatalf("starting broker: %v", err)
	}
}

// Restart starts the broker again on the same data directory and ports.
// The previous run must have exited (Stop or Kill).
func (b *Broker) Restart() {
	b.t.Helper()
	if b.Running() {
		b.t.Fatal("Restart: the broker is still running; Stop or Kill it first")
	}
	for attempt := 1; ; attempt++ {
		err := b.startAndWait()
		if err == nil {
			return
		}
		if errors.Is(err, errPortConflict) && attempt < 10 {
			// Someone took one of our ports between runs; it is usually
			// a short-lived client socket.
			b.t.Logf("broker restart attempt %d: %v; retrying", attempt, err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		b.t.Fatalf("restarting broker: %v", err)
	}
}

func (b *Broker) args() []string {
	args := []string{"serve",
		"--node-id", "1",
		"--data-dir", b.Dir,
		"--listen", b.Addr,
		"--http", b.HTTP,
		"--meta-client-listen", b.etcdCl,
		"--meta-peer-listen", b.etcdPr,
		"--log-level", "info",
	}
	return append(args, b.extra...)
}

// startAndWait starts one run and waits until Kafka answers.
func (b *Broker) startAndWait() error {
	b.runs++
	cmd := exec.Command(b.bin, b.args()...)
	// The broker reads SEDIMENT_* variables as flags: none may leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEDIMENT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	w := io.MultiWriter(b.logs, b.logFile)
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(w, "=== it harness: run %d: %s %s\n", b.runs, b.bin, strings.Join(b.args(), " "))
	p := &proc{cmd: cmd, done: make(chan struct{}), logStart: b.logs.Len()}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", b.bin, err)
	}
	b.cur = p
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	err := b.waitReady(ctx, p)
	if err == nil {
		return nil
	}
	b.Kill()
	out := b.logs.String()[p.logStart:]
	if strings.Contains(out, "address already in use") {
		return fmt.Errorf("%w: %v", errPortConflict, err)
	}
	if strings.Contains(out, "broker id in use by a live session") {
		return fmt.Errorf("%w: %v\n%s", errIDInUse, err, tail(out, 3))
	}
	return fmt.Errorf("%w\n--- broker output ---\n%s", err, tail(out, 60))
}

func (b *Broker) waitReady(ctx context.Context, p *proc) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("broker exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("broker not ready after %v: last error: %v", readyTimeout, last)
		case <-tick.C:
		}
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := adm.BrokerMetadata(actx)
		acancel()
		switch {
		case err != nil:
			last = err
			continue
		case len(m.Brokers) == 0:
			last = errors.New("metadata lists no brokers yet")
			continue
		}
		// Metadata may still list the previous incarnation (its lease
		// outlives a kill -9): wait until this run has registered.
		if !registeredRE.MatchString(b.logs.String()[p.logStart:]) {
			last = errors.New(`metadata answers but the broker has not logged "broker registered" yet`)
			continue
		}
		// The HTTP listener is up before Kafka's; check it answers too.
		resp, err := healthClient.Get("http://" + b.HTTP + "/healthz")
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("/healthz: %s", resp.Status)
			continue
		}
		return nil
	}
}

// Running reports whether the current run has not exited.
func (b *Broker) Running() bool {
	if b.cur == nil {
		return false
	}
	select {
	case <-b.cur.done:
		return false
	default:
		return true
	}
}

// PID is the current run's process id.
func (b *Broker) PID() int { return b.cur.cmd.Process.Pid }

// Signal sends sig to the current run without waiting.
func (b *Broker) Signal(sig syscall.Signal) {
	b.t.Helper()
	if err := b.cur.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		b.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to timeout for the current run to exit and returns its exit code.
func (b *Broker) Wait(timeout time.Duration) (int, error) {
	select {
	case <-b.cur.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("broker (pid %d) still running after %v", b.PID(), timeout)
	}
	var ee *exec.ExitError
	switch {
	case b.cur.err == nil:
		return 0, nil
	case errors.As(b.cur.err, &ee):
		return ee.ExitCode(), nil
	default:
		return -1, b.cur.err
	}
}

// Stop sends SIGTERM and requires a clean exit (code 0) within stopTimeout.
func (b *Broker) Stop() {
	b.t.Helper()
	if !b.Running() {
		b.t.Fatal("Stop: the broker is not running")
	}
	start := time.Now()
	b.Signal(syscall.SIGTERM)
	code, err := b.Wait(stopTimeout)
	if err != nil {
		b.Kill()
		b.t.Fatalf("SIGTERM: %v\n--- broker output ---\n%s", err, tail(b.RunLogs(), 60))
	}
	if code != 0 {
		b.t.Fatalf("SIGTERM: broker exited with code %d (%v), want 0\n--- broker output ---\n%s",
			code, b.cur.err, tail(b.RunLogs(), 60))
	}
	b.t.Logf("broker stopped cleanly in %v", time.Since(start).Round(time.Millisecond))
}

// Kill sends SIGKILL and waits for the process to be gone.
func (b *Broker) Kill() {
	if b.cur == nil {
		return
	}
	b.cur.cmd.Process.Kill()
	<-b.cur.done
}

func (b *Broker) cleanup() {
	b.Kill()
	if b.t.Failed() {
		b.t.Logf("--- broker output (last 150 lines; full log %s) ---\n%s", b.LogPath, tail(b.logs.String(), 150))
	}
	b.logFile.Close()
	if os.Getenv("SEDIMENT_IT_KEEP") != "" {
		b.t.Logf("broker log kept at %s", b.LogPath)
	}
}

// Logs is the output of every run so far.
func (b *Broker) Logs() string { return b.logs.String() }

// RunLogs is the output of the current run.
func (b *Broker) RunLogs() string {
	if b.cur == nil {
		return ""
	}
	return b.logs.String()[b.cur.logStart:]
}

// WaitLog waits until the current run's output matches re, and returns the
// first matching line.
func (b *Broker) WaitLog(re *regexp.Regexp, timeout time.Duration) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if line, ok := matchLine(b.RunLogs(), re); ok {
			return line, true
		}
		select {
		case <-deadline.C:
			return "", false
		case <-tick.C:
		}
	}
}

func matchLine(out string, re *regexp.Regexp) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if re.MatchString(sc.Text()) {
			return sc.Text(), true
		}
	}
	return "", false
}

// Memory returns VmRSS and VmHWM of the current run, in bytes.
func (b *Broker) Memory() (rss, hwm int64) {
	b.t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.PID()))
	if err != nil {
		b.t.Fatalf("reading broker memory: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			b.t.Fatalf("unexpected /proc status line %q", line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			b.t.Fatalf("unexpected /proc status line %q: %v", line, err)
		}
		if name == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}

// Client is a franz-go client of this broker, closed when the test ends.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(b.Addr), kgo.DialTimeout(3 * time.Second)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin is a kadm client of this broker, closed when the test ends.
func (b *Broker) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.Client(t))
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testContext is a context bounded by d and by the test's deadline.
func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
