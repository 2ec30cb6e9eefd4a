package it

// The test side of it/harness: the broker binary the tests run, and Broker,
// a harness.Broker bound to a test, whose methods fail the test instead of
// returning errors and whose process is killed when the test ends.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/harness"
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

// requireCommand returns the path of an external command a test needs. A
// missing one skips the test, or fails it under CI=true.
func requireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		harness.Missing(t, "%s not found (%v); install it (make test-deps) to run this test", name, err)
	}
	return p
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
		root, err := harness.ModuleRoot()
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

// logDir is where a test's broker logs go: its temporary directory, or
// one kept after the test with SEDIMENT_IT_KEEP set.
func logDir(t testing.TB) string {
	t.Helper()
	if os.Getenv("SEDIMENT_IT_KEEP") == "" {
		return t.TempDir()
	}
	d, err := os.MkdirTemp("", "sediment-it-logs-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// registeredRE matches the line a broker logs once it is registered in etcd.
var registeredRE = regexp.MustCompile(`msg="broker registered"`)

// Broker is one `sediment serve` process under test, restartable on the same
// data directory and ports. Its methods are meant for the test goroutine.
type Broker struct {
	*harness.Broker
	t testing.TB
}

// bind makes hb the test's: killed, its output shown on failure, when the
// test ends.
func bind(t testing.TB, hb *harness.Broker) *Broker {
	b := &Broker{Broker: hb, t: t}
	t.Cleanup(b.cleanup)
	return b
}

// StartBroker starts a single broker with an embedded etcd on free loopback
// ports and a fresh data directory, and waits until it answers Kafka
// Metadata. extra are additional serve flags (later flags win). The broker is
// killed when the test ends.
func StartBroker(t testing.TB, extra ...string) *Broker {
	t.Helper()
	hb, err := harness.NewBroker(harness.BrokerConfig{
		Bin:          sedimentBin(t),
		DataDir:      filepath.Join(t.TempDir(), "data"),
		LogPath:      filepath.Join(logDir(t), "broker.log"),
		Flags:        append([]string{"--log-level", "info"}, extra...),
		StartTimeout: readyTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := bind(t, hb)
	if err := hb.Start(context.Background()); err != nil {
		t.Fatalf("starting broker: %v", err)
	}
	return b
}

// Restart starts the broker again on the same data directory and ports.
// The previous run must have exited (Stop or Kill).
func (b *Broker) Restart() {
	b.t.Helper()
	if b.Running() {
		b.t.Fatal("Restart: the broker is still running; Stop or Kill it first")
	}
	if err := b.Broker.Start(context.Background()); err != nil {
		b.t.Fatalf("restarting broker: %v", err)
	}
}

// Signal sends sig to the current run without waiting.
func (b *Broker) Signal(sig syscall.Signal) {
	b.t.Helper()
	if err := b.Process().Signal(sig); err != nil {
		b.t.Fatal(err)
	}
}

// Wait waits up to timeout for the current run to exit and returns its exit code.
func (b *Broker) Wait(timeout time.Duration) (int, error) { return b.Process().Wait(timeout) }

// Stop sends SIGTERM and requires a clean exit (code 0) within stopTimeout.
func (b *Broker) Stop() {
	b.t.Helper()
	if !b.Running() {
		b.t.Fatal("Stop: the broker is not running")
	}
	start := time.Now()
	if err := b.Broker.Stop(stopTimeout); err != nil {
		b.t.Fatalf("SIGTERM: %v", err)
	}
	if code := b.Process().ExitCode(); code != 0 {
		b.t.Fatalf("SIGTERM: broker exited with code %d (%v), want 0\n--- broker output ---\n%s",
			code, b.Process().ExitErr(), tail(b.RunLogs(), 60))
	}
	b.t.Logf("broker stopped cleanly in %v", time.Since(start).Round(time.Millisecond))
}

// Kill sends SIGKILL and waits for the process to be gone.
func (b *Broker) Kill() { _ = b.Broker.Kill() }

func (b *Broker) cleanup() {
	b.Kill()
	if b.t.Failed() {
		b.t.Logf("--- broker %d output (last 150 lines; full log %s) ---\n%s", b.NodeID, b.LogPath, tail(b.Logs(), 150))
	}
	if os.Getenv("SEDIMENT_IT_KEEP") != "" {
		b.t.Logf("broker %d log kept at %s", b.NodeID, b.LogPath)
	}
}

// Memory returns VmRSS and VmHWM of the current run, in bytes.
func (b *Broker) Memory() (rss, hwm int64) {
	b.t.Helper()
	m, err := b.Process().Memory()
	if err != nil {
		b.t.Fatalf("reading broker memory: %v", err)
	}
	return int64(m.RSS), int64(m.HWM)
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
