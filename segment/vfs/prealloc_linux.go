//go:build linux

package vfs

import (
	"errors"
	"os"
	"syscall"
)

var _ Preallocator = osFile{}

// fallocKeepSize is FALLOC_FL_KEEP_SIZE of <linux/falloc.h>.
const fallocKeepSize = 0x1

// Preallocate is fallocate(2) with FALLOC_FL_KEEP_SIZE: blocks for [off, off+n), the size
// unchanged. A file system without fallocate (EOPNOTSUPP) gives errors.ErrUnsupported.
func (f osFile) Preallocate(off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fallocate(int(fd), fallocKeepSize, off, n)
			if serr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if serr == syscall.EOPNOTSUPP {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: errors.ErrUnsupported}
	}
	if serr != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: serr}
	}
	return nil
}
