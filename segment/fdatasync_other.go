//go:build !linux

package segment

import "os"

// fdatasync falls back to fsync where fdatasync is not available.
func fdatasync(f *os.File) error {
	if syncDisabled.Load() {
		return nil
	}
	return f.Sync()
}
