package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ObjectStore is where sealed segments go. Implementations are safe for
// concurrent use.
//
// Keys are slash-separated paths that satisfy [CheckKey]; every method
// rejects an invalid key with an error wrapping [ErrInvalidKey] before
// touching storage. A key should not also be a directory of another key
// ("a" and "a/b"): S3 allows it, but a file system cannot hold both, so the
// file backend's Put fails.
type ObjectStore interface {
	// Put stores size bytes read from r under key, replacing any object
	// there; readers see the old or the new object, never a partial one.
	// Put fails if r holds fewer than size bytes.
	Put(ctx context.Context, key string, r io.ReaderAt, size int64) error

	// ReadAt fills p from offset off of key. It never returns fewer bytes
	// without an error. Like io.ReadFull: it returns io.EOF when no byte of p
	// is available (off >= size) and io.ErrUnexpectedEOF when the range
	// starts inside the object but runs past its end. When ReadAt returns an
	// error the contents of p are unspecified. An empty p reads nothing and
	// returns nil if key exists.
	ReadAt(ctx context.Context, key string, p []byte, off int64) error

	// Stat returns the object's size.
	Stat(ctx context.Context, key string) (size int64, err error)

	// List calls fn for every key under prefix in lexical (byte) order, with
	// its size; fn's error stops the listing and is returned. prefix is a
	// plain string prefix ("topic-0/0000" matches "topic-0/00001.log"); the
	// empty prefix lists everything. Objects written concurrently with List
	// may or may not be seen.
	List(ctx context.Context, prefix string, fn func(key string, size int64) error) error

	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// IsNotExist reports whether err says the key does not exist.
	IsNotExist(err error) bool
}

// ErrNotExist is wrapped by the errors every backend returns for a missing
// key, so errors.Is(err, ErrNotExist) works whatever the backend.
var ErrNotExist = errors.New("tier: object does not exist")

// ErrInvalidKey is wrapped by the errors returned for keys that fail
// [CheckKey].
var ErrInvalidKey = errors.New("tier: invalid key")

// MaxKeyLen is the longest key in bytes, S3's limit.
const MaxKeyLen = 1024

// maxSegmentLen is the longest path segment in bytes, the usual filesystem
// limit on a file name.
const maxSegmentLen = 255

// TempPrefix starts the names of backends' temporary files. Keys whose
// segments start with it are rejected, so a temporary file can never be
// mistaken for, or collide with, an object.
const TempPrefix = ".tmp-"

// CheckKey reports whether key is a valid object key, and if not, why.
//
// A key is one or more segments joined by '/': no leading or trailing '/',
// no empty, "." or ".." segments, no segment starting with [TempPrefix], no
// backslash or NUL, valid UTF-8, at most [MaxKeyLen] bytes and 255 bytes per
// segment. The rules are the same for every backend, so a key valid for one is
// valid for all, and a key can never name a path outside a file store's root.
func CheckKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.ContainsAny(key, "\\\x00"):
		return bad("contains a backslash or NUL byte")
	case key[0] == '/':
		return bad("absolute (starts with '/')")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "." || seg == "..":
			return bad(fmt.Sprintf("%q path segment", seg))
		case strings.HasPrefix(seg, TempPrefix):
			return bad(fmt.Sprintf("segment starts with the reserved %q", TempPrefix))
		case len(seg) > maxSegmentLen:
			return bad(fmt.Sprintf("path segment longer than %d bytes", maxSegmentLen))
		}
	}
	return nil
}

// CheckRead validates the arguments of ReadAt shared by every backend.
func CheckRead(key string, off int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if off < 0 {
		return fmt.Errorf("tier: read %q: negative offset %d", key, off)
	}
	return nil
}
