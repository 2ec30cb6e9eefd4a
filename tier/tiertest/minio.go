package tiertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
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
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	m := &MinIO{
		AccessKey: "sediment-test",
		SecretKey: "sediment-test-secret",
		out:       &syncBuffer{},
		done:      make(chan struct{}),
	}
	addr, console := freePort(t), freePort(t)
	m.Endpoint = "http://" + addr
	m.cmd = exec.Command(bin, "server", t.TempDir(), "--address", addr, "--console-address", console, "--quiet")
	m.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(m.stop)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.waitLive(ctx); err != nil {
		t.Fatalf("MinIO at %s: %v\n--- minio output ---\n%s", m.Endpoint, err, m.out.String())
	}
	return m
}

// waitLive polls /minio/health/live until it answers 200, the process exits
// or ctx ends.
func (m *MinIO) waitLive(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/minio/health/live", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
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
