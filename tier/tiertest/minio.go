package tiertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MinIO is a MinIO server started for a test.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	t       testing.TB
	bin     string
	dir     string // data directory, kept across Stop and Start
	addr    string // S3 API host:port, kept across Stop and Start
	console string // console host:port, kept across Stop and Start
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{} // closed when the current process has exited
}

// MinIOBin returns the MinIO server binary the tests use: $SEDIMENT_MINIO_BIN,
// else <module root>/bin/minio (installed by `make test-deps`).
func MinIOBin() (string, error) {
	if p := os.Getenv("SEDIMENT_MINIO_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin", "minio"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// StartMinIO starts a MinIO server on a fresh directory and loopback ports,
// waits until it is live, and stops it when t's test ends.
//
// Without a binary (see MinIOBin) the test is skipped, or fails when the CI
// environment variable is "true": CI must run what users rely on.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := MinIOBin()
	if err != nil {
		t.Fatalf("finding the MinIO binary: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("MinIO server not found at %s (%v): run `make test-deps` (or set SEDIMENT_MINIO_BIN)", bin, err)
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	m := &MinIO{
		AccessKey: "sediment-test",
		SecretKey: "sediment-test-secret",
		t:         t,
		bin:       bin,
		dir:       t.TempDir(),
		out:       &syncBuffer{},
	}
	// Ports below the ephemeral range: no outgoing connection can take them
	// while the server is stopped, so Start finds them free again.
	m.addr, m.console = stablePort(t), stablePort(t)
	m.Endpoint = "http://" + m.addr
	t.Cleanup(m.stop)
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	return m
}

// start runs the server on m's directory and ports and waits until it is live.
func (m *MinIO) start() error {
	var lastErr error
	// A port may be briefly taken by someone else; retry for a while.
	for attempt := 1; attempt <= 20; attempt++ {
		runStart := len(m.out.String())
		m.done = make(chan struct{})
		m.cmd = exec.Command(m.bin, "server", m.dir, "--address", m.addr, "--console-address", m.console, "--quiet")
		m.cmd.Env = append(os.Environ(),
			"MINIO_ROOT_USER="+m.AccessKey,
			"MINIO_ROOT_PASSWORD="+m.SecretKey,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off",
		)
		m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
		if err := m.cmd.Start(); err != nil {
			close(m.done)
			return fmt.Errorf("starting %s: %v", m.bin, err)
		}
		cmd, done := m.cmd, m.done
		go func() {
			cmd.Wait()
			close(done)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := m.waitLive(ctx)
		cancel()
		if err == nil {
			return nil
		}
		m.stop()
		lastErr = fmt.Errorf("MinIO at %s: %v\n--- minio output ---\n%s", m.Endpoint, err, m.out.String()[runStart:])
		if !strings.Contains(m.out.String()[runStart:], "already in use") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return lastErr
}

// Stop ends the server (SIGTERM, then SIGKILL after 10s) and waits until it
// has exited; its data directory and ports stay reserved for Start. Clients
// meanwhile get connection refused, as from an S3 outage.
func (m *MinIO) Stop() {
	m.t.Helper()
	if !m.Running() {
		m.t.Fatal("MinIO.Stop: the server is not running")
	}
	m.stop()
}

// Kill ends the server with SIGKILL and waits until it has exited.
func (m *MinIO) Kill() {
	m.t.Helper()
	if !m.Running() {
		m.t.Fatal("MinIO.Kill: the server is not running")
	}
	m.cmd.Process.Kill()
	<-m.done
}

// Start runs a stopped server again on the same data directory, address
// and credentials (so URLs naming Endpoint stay valid and the buckets and
// objects are still there), and waits until it is live.
func (m *MinIO) Start() {
	m.t.Helper()
	if m.Running() {
		m.t.Fatal("MinIO.Start: the server is already running")
	}
	if err := m.start(); err != nil {
		m.t.Fatal(err)
	}
}

// Running reports whether the server process is up.
func (m *MinIO) Running() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// waitLive polls until the server is live (/minio/health/live) and its
// object layer is up (/minio/health/cluster: before that, requests fail
// with 503 XMinioServerNotInitialized), the process exits or ctx ends.
func (m *MinIO) waitLive(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	ok := func(path string) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for {
		if ok("/minio/health/live") && ok("/minio/health/cluster") {
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("exited: %v", m.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not live: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL if it lingers.
func (m *MinIO) stop() {
	if m.cmd == nil || m.done == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-m.done:
	case <-timer.C:
		m.cmd.Process.Kill()
		<-m.done
	}
}

// Output returns what the server has logged so far.
func (m *MinIO) Output() string { return m.out.String() }

// stablePort is a free loopback host:port below the kernel's ephemeral port
// range when it can find one (falling back to any free port), so that a
// stopped server's port is not handed to an outgoing connection.
func stablePort(t testing.TB) string {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	const floor = 10000
	if lo-floor >= 1000 {
		for range 100 {
			port := floor + rand.IntN(lo-floor)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				addr := l.Addr().String()
				l.Close()
				return addr
			}
		}
	}
	return freePort(t)
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
