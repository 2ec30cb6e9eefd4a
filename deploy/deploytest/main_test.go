package deploytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sedimentio/sediment/it/harness"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// sedimentBin is the broker binary: SEDIMENT_BIN (make test sets it), else
// one built from this checkout; under CI=true a missing SEDIMENT_BIN fails
// the test, since CI must test the binary make built.
func sedimentBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SEDIMENT_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("SEDIMENT_BIN: %v", err)
		}
		return bin
	}
	if harness.InCI() {
		t.Fatal("SEDIMENT_BIN is not set (CI=true): run through `make test`")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "deploytest-"); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "sediment")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/sediment")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sediment: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}
