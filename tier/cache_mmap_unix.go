//go:build linux || darwin || freebsd

package tier

import (
	"errors"
	"syscall"

	"github.com/sedimentio/sediment/segment/vfs"
)

// mapFile maps size bytes of f read-only.
func mapFile(f vfs.File, size int64) ([]byte, func(), error) {
	if size == 0 {
		return []byte{}, func() {}, nil
	}
	sc, ok := f.(syscall.Conn)
	if !ok {
		return nil, nil, errors.New("tier: chunk cache: file has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var (
		b    []byte
		merr error
	)
	if err := raw.Control(func(fd uintptr) {
		b, merr = syscall.Mmap(int(fd), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	}); err != nil {
		return nil, nil, err
	}
	if merr != nil {
		return nil, nil, merr
	}
	return b, func() { syscall.Munmap(b) }, nil
}
