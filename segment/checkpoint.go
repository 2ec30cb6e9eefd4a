package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// syncDisabled is a test seam: fuzz targets turn fsync off so that they can run thousands
// of Open/Close cycles a second. Never set outside tests.
var syncDisabled atomic.Bool

const (
	logStartName    = "log-start-offset"
	cleanMarkerName = "clean-shutdown"
)

// writeFileAtomic replaces path with data: write a temporary file, fdatasync it, rename it
// over path, and with syncDir fsync the directory so the rename is durable.
func writeFileAtomic(path string, data []byte, syncDirToo bool) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = fdatasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && syncDirToo {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("segment: write %s: %w", path, err)
	}
	return nil
}

// syncDir makes directory entries (created, renamed, removed files) durable.
func syncDir(dir string) error {
	if syncDisabled.Load() {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("segment: sync directory %s: %w", dir, err)
	}
	return nil
}

// The log-start-offset checkpoint is two text lines: the version (0) and the offset.
func writeLogStart(dir string, off int64) error {
	return writeFileAtomic(filepath.Join(dir, logStartName), fmt.Appendf(nil, "0\n%d\n", off), true)
}

// readLogStart returns the checkpointed log start offset, or -1 when there is none.
func readLogStart(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, logStartName))
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	lines := strings.Fields(string(b))
	if len(lines) != 2 || lines[0] != "0" {
		return -1, fmt.Errorf("%w: %s: %q", errCheckpoint, logStartName, b)
	}
	off, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || off < 0 {
		return -1, fmt.Errorf("%w: %s: %q", errCheckpoint, logStartName, b)
	}
	return off, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
