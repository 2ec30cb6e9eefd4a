//go:build !(linux || darwin || freebsd)

package tier

import (
	"io"

	"github.com/sedimentio/sediment/segment/vfs"
)

// mapFile reads f whole where there is no mmap.
func mapFile(f vfs.File, size int64) ([]byte, func(), error) {
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !(err == io.EOF && size == 0) {
		return nil, nil, err
	}
	return b, func() {}, nil
}
