// Package vfs is the filesystem seam of package segment: the few operations a partition
// log performs on files and directories, behind two small interfaces, with two
// implementations.
//
//   - OS is the operating system's filesystem, what production uses. Its files are
//     *os.File underneath and satisfy syscall.Conn, so fetch can sendfile them; Datasync
//     is fdatasync(2) on Linux.
//   - MemFS is an in-memory filesystem that simulates power loss as strictly as POSIX
//     allows: a file's contents survive only as of its last Datasync, and a directory's
//     entries (files created, renamed or removed in it) only as of its last SyncDir, as on
//     ext4 or xfs without data=journal. CrashClone returns the filesystem as it would be
//     after a power cut; kill -9 cannot show this, because the page cache survives it.
//
// The package imports only the standard library, so that segment can depend on it and the
// tests of any package (segment, broker) can use MemFS.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Errors the os package would return, for MemFS and the helpers here.
var (
	errNotDir   error = syscall.ENOTDIR
	errIsDir    error = syscall.EISDIR
	errNotEmpty error = syscall.ENOTEMPTY
	errBadFD    error = syscall.EBADF
)

// File is an open file. Methods other than Close are safe for concurrent use.
type File interface {
	io.ReaderAt // a short read returns io.EOF, as os.File does
	io.WriterAt
	io.Writer // at the file's own offset, which only Write advances
	io.Closer
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	// Datasync makes the file's current contents and size durable (fdatasync(2) where
	// the system has it, else fsync). It does not make the file's name durable: that
	// takes a SyncDir of the directory holding it.
	Datasync() error
}

// Preallocator is a File that can reserve disk space for [off, off+n) without changing
// the file's size or contents (fallocate(2) with FALLOC_FL_KEEP_SIZE on Linux): later writes
// there find their blocks allocated, so a datasync after each of them has no block
// allocation to journal. The reserved space past the end is released by a Truncate to the
// size. OS files implement it on Linux; a filesystem that cannot reserve returns an error
// (errors.ErrUnsupported for one that never can), and nothing has changed.
type Preallocator interface {
	Preallocate(off, n int64) error
}

// FS is a filesystem. Names are paths in the host's syntax (filepath). All methods are
// safe for concurrent use. Errors are *fs.PathError or *os.LinkError values that wrap
// fs.ErrNotExist, fs.ErrExist and the like, as the os package's do.
type FS interface {
	// Create opens name for reading and writing, creating it or truncating it to zero.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens name for reading and writing, creating it (empty) if missing,
	// never truncating it.
	OpenReadWrite(name string) (File, error)
	// Rename renames (moves) oldname to newname, replacing a file there.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes name and everything below it; a missing name is no error.
	RemoveAll(name string) error
	// MkdirAll creates dir and any missing parents; an existing directory is no error.
	MkdirAll(dir string) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// Stat describes a file or directory.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes dir's entries durable: the files and directories created, renamed
	// and removed in it so far (fsync of the directory).
	SyncDir(dir string) error
}

// ReadFile reads a whole file.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if err == io.EOF {
		err = nil // the file shrank meanwhile: return what there is
	}
	return b[:n], err
}

// WriteFile creates or truncates name and writes data to it, without syncing anything.
func WriteFile(fsys FS, name string, data []byte) error {
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TmpSuffix is appended to a name while WriteFileAtomic writes its replacement.
const TmpSuffix = ".tmp"

// WriteFileAtomic replaces name with data so that, whenever power is lost, name holds
// either its old contents or data, never a mix: it writes name+TmpSuffix, datasyncs it and
// renames it over name. With syncDir it also syncs the directory, after which the new
// contents are durable; without, the caller syncs the directory later (once for several
// files). On error the temporary file is removed; a crash may leave it behind.
func WriteFileAtomic(fsys FS, name string, data []byte, syncDir bool) error {
	tmp := name + TmpSuffix
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("vfs: write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err == nil && syncDir {
		err = fsys.SyncDir(filepath.Dir(name))
	}
	if err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("vfs: write %s: %w", name, err)
	}
	return nil
}

// MkdirAllDurable is MkdirAll that also makes every directory it creates durable, by
// syncing the parent of each (KAFKA-3968: a directory entry is only on disk once its
// parent is synced). Directories that already existed are not synced.
func MkdirAllDurable(fsys FS, dir string) error {
	dir = filepath.Clean(dir)
	var missing []string // deepest first
	for d := dir; ; d = filepath.Dir(d) {
		st, err := fsys.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: d, Err: errNotDir}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if p := filepath.Dir(missing[i]); p != missing[i] {
			if err := fsys.SyncDir(p); err != nil {
				return err
			}
		}
	}
	return nil
}
