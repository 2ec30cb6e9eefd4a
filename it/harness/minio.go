package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MinIOConfig is one MinIO server.
type MinIOConfig struct {
	Bin     string // the minio binary (FindMinIO finds the project's)
	Dir     string // the data directory, kept across Stop and Start
	LogPath string // the server's output, every run in turn; "" means Dir + ".log"
	// The root credentials, which S3 clients of the server use as their
	// access key and secret; "" means "sediment" and "sediment-secret".
	AccessKey, SecretKey string
	// Env is the server's environment before the harness adds
	// MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, MINIO_BROWSER=off and
	// MINIO_UPDATE=off; nil means Environ().
	Env          []string
	StartTimeout time.Duration // 0 means DefaultStartTimeout
}

// MinIO is a MinIO server on two stable loopback ports (StableAddr: S3 and
// console), which it keeps, with its data, across Stop and Start: while it
// is stopped, clients get connection refused, as from an S3 outage. Not
// safe for concurrent use, except that its Process's methods are.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:port, the S3 API
	AccessKey string
	SecretKey string

	cfg     MinIOConfig
	addr    string // S3 API host:port
	console string // console host:port
	current        // the latest run: Process, Running, Stop, Kill
}

// StartMinIO starts a MinIO server and returns once it is live.
func StartMinIO(ctx context.Context, cfg MinIOConfig) (*MinIO, error) {
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Clean(cfg.Dir) + ".log"
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey, cfg.SecretKey = "sediment", "sediment-secret"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	m := &MinIO{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, cfg: cfg}
	var err error
	if m.addr, err = StableAddr(); err != nil {
		return nil, err
	}
	if m.console, err = StableAddr(); err != nil {
		return nil, err
	}
	m.Endpoint = "http://" + m.addr
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.LogPath), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.LogPath, nil, 0o644); err != nil {
		return nil, err
	}
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Start runs a stopped server again on the same data directory, ports and
// credentials (URLs naming Endpoint stay valid, the buckets and objects
// are still there) and returns once it is live: /minio/health/live and
// /minio/health/cluster answer 200 (before the latter, requests fail with
// 503 XMinioServerNotInitialized). A port taken meanwhile is retried for a
// while.
func (m *MinIO) Start(ctx context.Context) error {
	if m.Running() {
		return errors.New("MinIO is already running")
	}
	env := m.cfg.Env
	if env == nil {
		env = Environ()
	}
	env = append(env[:len(env):len(env)],
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	var lastErr error
	for range 20 {
		p, err := StartProcess(Command{
			Name: "minio", Bin: m.cfg.Bin, Env: env, Log: m.cfg.LogPath,
			Args: []string{"server", m.cfg.Dir, "--address", m.addr, "--console-address", m.console, "--quiet"},
		})
		if err != nil {
			return err
		}
		m.cur = p
		wctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
		err = WaitFor(wctx, 50*time.Millisecond, []*Process{p}, func() error { return m.live(wctx) },
			func(last error) error {
				return fmt.Errorf("MinIO at %s not live within %s: %w (last error: %v)", m.Endpoint, m.cfg.StartTimeout, wctx.Err(), last)
			})
		cancel()
		if err == nil {
			return nil
		}
		lastErr = abandon(p, err)
		if !strings.Contains(p.Output(), "already in use") || sleep(ctx, 500*time.Millisecond) != nil {
			break
		}
	}
	return lastErr
}

func (m *MinIO) live(ctx context.Context) error {
	for _, path := range []string{"/minio/health/live", "/minio/health/cluster"} {
		if err := httpOK(ctx, m.Endpoint+path); err != nil {
			return err
		}
	}
	return nil
}

// Output is what the server has written, every run so far.
func (m *MinIO) Output() string { return readFrom(m.cfg.LogPath, 0) }

// FindMinIO is the MinIO server binary of the project's tests:
// $SEDIMENT_MINIO_BIN, else bin/minio in the module root above the working
// directory (where `make minio` installs it). It does not check that the
// file exists.
func FindMinIO() (string, error) {
	if p := os.Getenv("SEDIMENT_MINIO_BIN"); p != "" {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "minio"), nil
}

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) {
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
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
