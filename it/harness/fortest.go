package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TB is the part of testing.TB that the test helpers use; *testing.T and
// *testing.B satisfy it. The package does not import testing: the
// benchmark binary runs the same harness outside any test.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// InCI reports whether the CI environment variable says this is CI
// (CI=true), where missing test dependencies fail tests instead of
// skipping them.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Missing ends t for want of something it needs (a tool, a server
// binary): a skip, but a failure under CI=true, since CI must run what
// users rely on.
func Missing(t TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("required in CI (CI=true): %s", msg)
	}
	t.Skipf("%s", msg)
}

// MinIOForTest starts a MinIO server (FindMinIO's binary; Missing when
// there is none) with credentials sediment-test / sediment-test-secret on a
// fresh directory, and stops it when t ends.
func MinIOForTest(t TB) *MinIO {
	t.Helper()
	bin, err := FindMinIO()
	if err != nil {
		t.Fatalf("finding the MinIO binary: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "MinIO server not found at %s (%v): run `make test-deps` (or set SEDIMENT_MINIO_BIN)", bin, err)
	}
	m, err := StartMinIO(context.Background(), MinIOConfig{
		Bin:       bin,
		Dir:       t.TempDir(),
		LogPath:   filepath.Join(t.TempDir(), "minio.log"),
		AccessKey: "sediment-test",
		SecretKey: "sediment-test-secret",
	})
	if err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	t.Cleanup(func() { _ = m.Stop(10 * time.Second) })
	return m
}
