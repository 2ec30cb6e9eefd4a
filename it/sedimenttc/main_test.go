package sedimenttc_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/it/harness"
)

// minioImage is the MinIO image the tests build FROM scratch from the pinned
// server `make test` installs into ./bin (scripts/minio.sh); TestMain removes it.
const minioImage = "sedimenttc-minio:test"

var (
	minioOnce  sync.Once
	minioErr   error
	minioBuilt bool
)

func TestMain(m *testing.M) {
	localDaemonHost()
	code := m.Run()
	if minioBuilt {
		exec.Command("docker", "image", "rm", "-f", minioImage).Run()
	}
	os.Exit(code)
}

// localDaemonHost sets TESTCONTAINERS_HOST_OVERRIDE=localhost when the
// Docker engine shares this network namespace (a docker0 bridge is here) and
// nothing else set it: testcontainers takes a /.dockerenv for "inside a
// container" and would dial the default gateway instead of the engine's
// published ports, which fails when the tests run in a container that also
// runs the engine (this project's machines).
func localDaemonHost() {
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); set {
		return
	}
	if _, err := net.InterfaceByName("docker0"); err == nil {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
}

// image is the Sediment image under test, $SEDIMENT_IMAGE or sediment:latest
// (`make image`). A missing Docker engine or image skips the test, or fails it
// under CI=true.
func image(t *testing.T) string {
	t.Helper()
	img := os.Getenv("SEDIMENT_IMAGE")
	if img == "" {
		img = "sediment:latest"
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		harness.Missing(t, "no Docker engine (docker info: %v: %s)", err, out)
	}
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", img).CombinedOutput(); err != nil {
		harness.Missing(t, "image %s not found (%v: %s); build it with `make image`", img, err, out)
	}
	return img
}

// localMinIOImage builds minioImage once per test binary: a FROM scratch
// image of the static ./bin/minio, entrypoint /minio (as the release images,
// which run `minio` with the command's arguments).
func localMinIOImage(t *testing.T) string {
	t.Helper()
	bin, err := harness.FindMinIO()
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		harness.Missing(t, "MinIO server not found (%v); install it (make minio)", err)
	}
	minioOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sedimenttc-minio")
		if err != nil {
			minioErr = err
			return
		}
		defer os.RemoveAll(dir)
		// A hard link when bin/ and the temp dir share a file system: the
		// binary is ~150 MB.
		if err := os.Link(bin, filepath.Join(dir, "minio")); err != nil {
			if out, err := exec.Command("cp", bin, filepath.Join(dir, "minio")).CombinedOutput(); err != nil {
				minioErr = fmt.Errorf("copying %s: %v: %s", bin, err, out)
				return
			}
		}
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
			minioErr = err
			return
		}
		df := "FROM scratch\nCOPY minio /minio\nCOPY data/ /data/\nENTRYPOINT [\"/minio\"]\n"
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			minioErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", minioImage, dir).CombinedOutput()
		if err != nil {
			minioErr = fmt.Errorf("docker build %s: %v: %s", minioImage, err, out)
			return
		}
		minioBuilt = true
	})
	if minioErr != nil {
		t.Fatal(minioErr)
	}
	return minioImage
}
