package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sedimentio/sediment/segment/vfs"
)

const (
	logStartName    = "log-start-offset"
	cleanMarkerName = "clean-shutdown"
)

// syncDir makes the partition directory's entries (files created, renamed, removed in
// it) durable.
func (l *Log) syncDir() error {
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("segment: sync directory %s: %w", l.dir, err)
	}
	return nil
}

// exists reports whether a file of the partition directory exists.
func (l *Log) exists(name string) bool {
	_, err := l.fs.Stat(filepath.Join(l.dir, name))
	return err == nil
}

// The log-start-offset checkpoint is two text lines: the version (0) and the offset.
// It is replaced atomically and durably (directory synced).
func (l *Log) writeLogStart(off int64) error {
	return vfs.WriteFileAtomic(l.fs, filepath.Join(l.dir, logStartName), fmt.Appendf(nil, "0\n%d\n", off), true)
}

// readLogStart returns the checkpointed log start offset, or -1 when there is none.
func (l *Log) readLogStart() (int64, error) {
	b, err := vfs.ReadFile(l.fs, filepath.Join(l.dir, logStartName))
	if errors.Is(err, fs.ErrNotExist) {
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
