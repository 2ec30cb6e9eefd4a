package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/sedimentio/sediment/segment/vfs"
	"github.com/sedimentio/sediment/tier"
)

// Store is an object store rooted at a local directory. It is safe for
// concurrent use.
type Store struct {
	root string
}

var _ tier.ObjectStore = (*Store)(nil)

// New returns a Store rooted at dir, creating it if needed.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("tier/file: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tier/file: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("tier/file: create root: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root returns the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// path maps a valid key to its file. CheckKey guarantees the result is under
// s.root: no "..", no absolute keys, no empty segments, no backslashes.
func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// notExist wraps a "no such file" error so that it matches tier.ErrNotExist
// while keeping the original error in the chain.
func notExist(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("tier/file: %s %q: %w: %w", op, key, tier.ErrNotExist, err)
	}
	return fmt.Errorf("tier/file: %s %q: %w", op, key, err)
}

// Put implements tier.ObjectStore.
func (s *Store) Put(ctx context.Context, key string, r io.ReaderAt, size int64) error {
	if err := tier.CheckKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("tier/file: put %q: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dst := s.path(key)
	dir := filepath.Dir(dst)
	tmp, err := s.createTemp(dir, filepath.Base(dst))
	if err != nil {
		return fmt.Errorf("tier/file: put %q: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, &ctxReader{ctx: ctx, r: io.NewSectionReader(r, 0, size)})
	if err != nil {
		return fmt.Errorf("tier/file: put %q: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("tier/file: put %q: source holds %d bytes, want %d: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("tier/file: put %q: fsync: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tier/file: put %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("tier/file: put %q: %w", key, err)
	}
	committed = true
	// The rename is durable only once the directory is.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("tier/file: put %q: fsync directory: %w", key, err)
	}
	return nil
}

// createTemp creates a temporary file in dir, creating dir and its parents.
// A concurrent Delete may remove a directory it emptied between MkdirAll and
// CreateTemp, so a vanished directory is retried.
func (s *Store) createTemp(dir, base string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		if err := s.mkdirAll(dir); err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return nil, fmt.Errorf("a parent of the key is an object: %w", err)
			}
			return nil, err
		}
		f, err := os.CreateTemp(dir, tier.TempPrefix+base+"-*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			return nil, err
		}
	}
}

// mkdirAll creates dir and its missing parents and makes them durable: a
// new directory survives a crash only once its parent is synced, and the
// caller deletes its local copy of an object once Put returns.
func (s *Store) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	// The deepest ancestor that exists needs no sync of its own entry.
	top := dir
	for top != s.root {
		parent := filepath.Dir(top)
		if _, err := os.Stat(parent); err == nil || parent == top {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("fsync directory: %w", err)
		}
		if d == top || d == s.root {
			return nil
		}
	}
}

func syncDir(dir string) error { return vfs.OS{}.SyncDir(dir) }

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ReadAt implements tier.ObjectStore.
func (s *Store) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	if err := tier.CheckRead(key, off); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return notExist("read", key, err)
	}
	defer f.Close()
	if len(p) == 0 {
		// Make a directory (a key prefix) fail like a missing object.
		return s.checkRegular(f, key)
	}
	n, err := f.ReadAt(p, off)
	switch {
	case n == len(p):
		return nil
	case err == io.EOF && n == 0:
		return io.EOF
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("tier/file: read %q: %w: is a directory", key, tier.ErrNotExist)
	default:
		return fmt.Errorf("tier/file: read %q: %w", key, err)
	}
}

func (s *Store) checkRegular(f *os.File, key string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("tier/file: read %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("tier/file: read %q: %w: not a regular file", key, tier.ErrNotExist)
	}
	return nil
}

// Stat implements tier.ObjectStore.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	if err := tier.CheckKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		return 0, notExist("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("tier/file: stat %q: %w: not a regular file", key, tier.ErrNotExist)
	}
	return fi.Size(), nil
}

// Delete implements tier.ObjectStore. It also removes the directories the
// deletion leaves empty, up to the root.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := tier.CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil
	case err != nil:
		return fmt.Errorf("tier/file: delete %q: %w", key, err)
	case fi.IsDir():
		return nil // a key prefix, not an object: nothing to delete
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tier/file: delete %q: %w", key, err)
	}
	// Best effort: os.Remove fails on a directory that is not empty, which
	// is how a concurrent Put into it wins.
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List implements tier.ObjectStore. It walks only the directory that holds
// prefix's last complete segment, in key order.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	// Start at the deepest directory every matching key must be under.
	dirKey := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey = prefix[:i]
		if tier.CheckKey(dirKey) != nil {
			// No valid key lives under an invalid directory (empty
			// segment, "..", absolute...).
			return nil
		}
	}
	dir := s.root
	if dirKey != "" {
		dir = s.path(dirKey)
	}
	err := s.walk(ctx, dir, dirKey, prefix, fn)
	if err == errDirGone {
		return nil // nothing under prefix
	}
	return err
}

// errDirGone reports, inside walk, a directory that does not exist (never
// created, or removed by a concurrent Delete): it holds no keys.
var errDirGone = errors.New("directory gone")

// walk lists dir, whose key is dirKey ("" for the root), calling fn for
// objects whose key starts with prefix, in lexical key order.
//
// Sorting entries by name, with '/' appended to directories, gives lexical
// key order: every key under directory d starts with d+"/", so comparing a
// file name f with d+"/" orders f against all of them (if f is a prefix of
// d, f sorts first either way).
func (s *Store) walk(ctx context.Context, dir, dirKey, prefix string, fn func(string, int64) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return errDirGone
	}
	if err != nil {
		return fmt.Errorf("tier/file: list %q: %w", prefix, err)
	}
	type entry struct {
		sortName string
		name     string
		dir      bool
	}
	es := make([]entry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tier.TempPrefix) {
			continue
		}
		isDir := e.IsDir()
		sortName := name
		if isDir {
			sortName += "/"
		} else if !e.Type().IsRegular() {
			continue
		}
		es = append(es, entry{sortName, name, isDir})
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.sortName, b.sortName) })
	for _, e := range es {
		key := e.name
		if dirKey != "" {
			key = dirKey + "/" + e.name
		}
		if e.dir {
			// Descend only if keys under it can match prefix.
			kd := key + "/"
			if !strings.HasPrefix(kd, prefix) && !strings.HasPrefix(prefix, kd) {
				continue
			}
			err := s.walk(ctx, filepath.Join(dir, e.name), key, prefix, fn)
			if err != nil && err != errDirGone {
				return err
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) || tier.CheckKey(key) != nil {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a concurrent Delete
		}
		if err != nil {
			return fmt.Errorf("tier/file: list %q: %w", prefix, err)
		}
		if err := fn(key, fi.Size()); err != nil {
			return err
		}
	}
	return nil
}

// IsNotExist implements tier.ObjectStore.
func (s *Store) IsNotExist(err error) bool { return errors.Is(err, tier.ErrNotExist) }
