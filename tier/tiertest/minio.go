package tiertest

import (
	"testing"

	"github.com/sedimentio/sediment/it/harness"
)

// MinIO is a MinIO server started for a test: it/harness runs it.
type MinIO = harness.MinIO

// StartMinIO starts a MinIO server on a fresh directory and loopback ports,
// waits until it is live, and stops it when t's test ends. Without a binary
// (harness.FindMinIO: $SEDIMENT_MINIO_BIN, else bin/minio) the test is
// skipped, or fails under CI=true. It forwards to harness.MinIOForTest,
// which new tests call directly.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	return harness.MinIOForTest(t)
}
