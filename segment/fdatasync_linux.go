//go:build linux

package segment

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (and the metadata needed to read it back, such as its size)
// to stable storage, without the inode timestamps an fsync also writes.
func fdatasync(f *os.File) error {
	if syncDisabled.Load() {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
