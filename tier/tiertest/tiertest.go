// Package tiertest is the conformance suite every tier.ObjectStore backend
// passes ([Run]), helpers that put and read objects in tests, and [StartMinIO]
// for tests of the s3 backend (it forwards to it/harness, which runs the
// server). It is imported by tests only.
package tiertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/sedimentio/sediment/tier"
)

// Run runs the conformance suite. open returns an empty store for one
// subtest; stores from different calls must not see each other's objects.
func Run(t *testing.T, open func(t *testing.T) tier.ObjectStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tier.ObjectStore)
	}{
		{"PutRead", testPutRead},
		{"ReadRanges", testReadRanges},
		{"ReadPastEnd", testReadPastEnd},
		{"EmptyObject", testEmptyObject},
		{"Overwrite", testOverwrite},
		{"Stat", testStat},
		{"Missing", testMissing},
		{"List", testList},
		{"ListStop", testListStop},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"ShortSource", testShortSource},
		{"Concurrent", testConcurrent},
		{"Large", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// MustPut puts data under key or fails the test.
func MustPut(t testing.TB, s tier.ObjectStore, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// MustRead reads the whole object key, which must be n bytes long.
func MustRead(t testing.TB, s tier.ObjectStore, key string, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if err := s.ReadAt(t.Context(), key, p, 0); err != nil {
		t.Fatalf("ReadAt(%q, 0, %d): %v", key, n, err)
	}
	return p
}

func testPutRead(t *testing.T, s tier.ObjectStore) {
	data := Data(1, 1000)
	for _, key := range []string{"a", "dir/sub/obj.log", "topic-0/00000000000000000000.log", "ü-ñ/ключ"} {
		MustPut(t, s, key, data)
		if got := MustRead(t, s, key, len(data)); !bytes.Equal(got, data) {
			t.Errorf("%q: read back different bytes", key)
		}
	}
}

func testReadRanges(t *testing.T, s tier.ObjectStore) {
	data := Data(2, 4096)
	MustPut(t, s, "r/obj", data)
	for _, r := range []struct{ off, n int }{
		{0, 1},       // first byte
		{2000, 100},  // middle
		{4095, 1},    // last byte
		{4000, 96},   // up to the end exactly
		{0, 4096},    // whole
		{1, 4095},    // all but the first
		{1234, 2000}, // arbitrary
	} {
		p := make([]byte, r.n)
		if err := s.ReadAt(t.Context(), "r/obj", p, int64(r.off)); err != nil {
			t.Errorf("ReadAt(off %d, len %d): %v", r.off, r.n, err)
			continue
		}
		if !bytes.Equal(p, data[r.off:r.off+r.n]) {
			t.Errorf("ReadAt(off %d, len %d): wrong bytes", r.off, r.n)
		}
	}
	if err := s.ReadAt(t.Context(), "r/obj", nil, 100); err != nil {
		t.Errorf("ReadAt(empty p): %v", err)
	}
	if err := s.ReadAt(t.Context(), "r/obj", make([]byte, 1), -1); err == nil {
		t.Error("ReadAt(negative offset) succeeded")
	}
}

func testReadPastEnd(t *testing.T, s tier.ObjectStore) {
	data := Data(3, 100)
	MustPut(t, s, "obj", data)
	for _, r := range []struct {
		off, n int
		want   error
	}{
		{99, 2, io.ErrUnexpectedEOF},   // last byte and one more
		{50, 100, io.ErrUnexpectedEOF}, // across the end
		{0, 101, io.ErrUnexpectedEOF},  // one more than all
		{100, 1, io.EOF},               // at the end
		{100, 10, io.EOF},
		{1000, 10, io.EOF}, // far past the end
	} {
		p := make([]byte, r.n)
		err := s.ReadAt(t.Context(), "obj", p, int64(r.off))
		if !errors.Is(err, r.want) {
			t.Errorf("ReadAt(off %d, len %d) = %v, want %v", r.off, r.n, err, r.want)
		}
		if s.IsNotExist(err) {
			t.Errorf("ReadAt(off %d, len %d): past the end reported as a missing key: %v", r.off, r.n, err)
		}
	}
}

func testEmptyObject(t *testing.T, s tier.ObjectStore) {
	MustPut(t, s, "empty", nil)
	if n, err := s.Stat(t.Context(), "empty"); err != nil || n != 0 {
		t.Errorf("Stat(empty) = %d, %v; want 0, nil", n, err)
	}
	if err := s.ReadAt(t.Context(), "empty", make([]byte, 1), 0); !errors.Is(err, io.EOF) {
		t.Errorf("ReadAt(empty object) = %v, want io.EOF", err)
	}
	if err := s.ReadAt(t.Context(), "empty", nil, 0); err != nil {
		t.Errorf("ReadAt(empty object, empty p) = %v", err)
	}
	var keys []string
	if err := s.List(t.Context(), "", func(k string, n int64) error {
		keys = append(keys, fmt.Sprintf("%s=%d", k, n))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"empty=0"}) {
		t.Errorf("List = %v, want [empty=0]", keys)
	}
}

func testOverwrite(t *testing.T, s tier.ObjectStore) {
	MustPut(t, s, "k/v", Data(4, 5000))
	short := Data(5, 300)
	MustPut(t, s, "k/v", short)
	if n, err := s.Stat(t.Context(), "k/v"); err != nil || n != 300 {
		t.Fatalf("Stat after overwrite = %d, %v; want 300", n, err)
	}
	if got := MustRead(t, s, "k/v", 300); !bytes.Equal(got, short) {
		t.Error("read after overwrite: old bytes")
	}
	if err := s.ReadAt(t.Context(), "k/v", make([]byte, 10), 300); !errors.Is(err, io.EOF) {
		t.Errorf("read past the new, shorter end = %v, want io.EOF", err)
	}
}

func testStat(t *testing.T, s tier.ObjectStore) {
	for i, n := range []int{1, 17, 65536} {
		key := fmt.Sprintf("stat/%d", i)
		MustPut(t, s, key, Data(uint64(i), n))
		if got, err := s.Stat(t.Context(), key); err != nil || got != int64(n) {
			t.Errorf("Stat(%q) = %d, %v; want %d", key, got, err, n)
		}
	}
}

func testMissing(t *testing.T, s tier.ObjectStore) {
	MustPut(t, s, "dir/present", []byte("x"))
	for _, key := range []string{"absent", "dir/absent", "dir", "dir/present/below", "no/such/dir/x"} {
		err := s.ReadAt(t.Context(), key, make([]byte, 1), 0)
		if !s.IsNotExist(err) || !errors.Is(err, tier.ErrNotExist) {
			t.Errorf("ReadAt(%q) = %v; want a not-exist error", key, err)
		}
		if err := s.ReadAt(t.Context(), key, nil, 0); !s.IsNotExist(err) {
			t.Errorf("ReadAt(%q, empty p) = %v; want a not-exist error", key, err)
		}
		if _, err := s.Stat(t.Context(), key); !s.IsNotExist(err) || !errors.Is(err, tier.ErrNotExist) {
			t.Errorf("Stat(%q) = %v; want a not-exist error", key, err)
		}
	}
	if s.IsNotExist(nil) || s.IsNotExist(io.EOF) || s.IsNotExist(errors.New("x")) {
		t.Error("IsNotExist true for an unrelated error")
	}
	if !s.IsNotExist(fmt.Errorf("wrapped: %w", tier.ErrNotExist)) {
		t.Error("IsNotExist false for a wrapped tier.ErrNotExist")
	}
}

// listKeys lists prefix as "key=size" strings.
func listKeys(t *testing.T, s tier.ObjectStore, prefix string) []string {
	t.Helper()
	var got []string
	if err := s.List(t.Context(), prefix, func(k string, n int64) error {
		got = append(got, fmt.Sprintf("%s=%d", k, n))
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func testList(t *testing.T, s tier.ObjectStore) {
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("List of an empty store = %v", got)
	}
	// Chosen so that directory walk order and key order differ ('.' and
	// '-' sort before '/').
	// No key is a directory of another ("a" and "a/b"): a file system
	// cannot hold both.
	keys := []string{
		"a.x", "a/b", "a-b", "a/b.c", "a0", "b/0/1", "b/0/2",
		"b/00", "b/1", "c", "t-0/00000000000000000010.log",
		"t-0/00000000000000000000.log", "t-0/00000000000000000000.index",
		"t-1/00000000000000000000.log",
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		MustPut(t, s, k, Data(uint64(i), len(k)))
	}
	want := func(prefix string) []string {
		sorted := slices.Sorted(slices.Values(keys))
		var w []string
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				w = append(w, fmt.Sprintf("%s=%d", k, len(k)))
			}
		}
		return w
	}
	for _, prefix := range []string{"", "a", "a/", "a/b", "b/0", "b/0/", "t-0/", "t-0/0000", "t-", "zz", "t-0/x/", "a/b/", "nope/"} {
		got := listKeys(t, s, prefix)
		if w := want(prefix); !slices.Equal(got, w) {
			t.Errorf("List(%q)\n got  %v\n want %v", prefix, got, w)
		}
	}
	got := listKeys(t, s, "")
	sorted := slices.Clone(got)
	slices.SortFunc(sorted, func(a, b string) int {
		return strings.Compare(a[:strings.LastIndexByte(a, '=')], b[:strings.LastIndexByte(b, '=')])
	})
	if !slices.Equal(got, sorted) {
		t.Errorf("List not in lexical key order: %v", got)
	}
}

func testListStop(t *testing.T, s tier.ObjectStore) {
	for i := range 5 {
		MustPut(t, s, fmt.Sprintf("s/%d", i), []byte{byte(i)})
	}
	stop := errors.New("stop")
	var seen []string
	err := s.List(t.Context(), "s/", func(k string, _ int64) error {
		seen = append(seen, k)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("List returned %v, want fn's error itself", err)
	}
	if !slices.Equal(seen, []string{"s/0", "s/1"}) {
		t.Errorf("List called fn for %v after it failed", seen)
	}
}

func testDelete(t *testing.T, s tier.ObjectStore) {
	MustPut(t, s, "d/x/1", []byte("one"))
	MustPut(t, s, "d/x/2", []byte("two"))
	if err := s.Delete(t.Context(), "d/x/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), "d/x/1"); !s.IsNotExist(err) {
		t.Errorf("Stat after Delete = %v; want not-exist", err)
	}
	if err := s.ReadAt(t.Context(), "d/x/1", make([]byte, 1), 0); !s.IsNotExist(err) {
		t.Errorf("ReadAt after Delete = %v; want not-exist", err)
	}
	if err := s.Delete(t.Context(), "d/x/1"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := s.Delete(t.Context(), "never/was"); err != nil {
		t.Errorf("Delete(missing): %v", err)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"d/x/2=3"}) {
		t.Errorf("List after Delete = %v", got)
	}
	if err := s.Delete(t.Context(), "d/x/2"); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List after deleting everything = %v", got)
	}
	// The key space is reusable, including where directories were.
	MustPut(t, s, "d/x", []byte("now an object"))
	if got := listKeys(t, s, "d"); !slices.Equal(got, []string{"d/x=13"}) {
		t.Errorf("List = %v", got)
	}
}

func testInvalidKeys(t *testing.T, s tier.ObjectStore) {
	ctx := t.Context()
	for _, key := range []string{
		"", "/abs", "../escape", "a/../../escape", "a/./b", "a//b", "a/", "..", ".",
		"a\\b", "nul\x00", "\xff", tier.TempPrefix + "x", "d/" + tier.TempPrefix + "y",
		strings.Repeat("k", tier.MaxKeyLen+1), strings.Repeat("s", 256),
	} {
		if err := s.Put(ctx, key, bytes.NewReader([]byte("x")), 1); !errors.Is(err, tier.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v; want ErrInvalidKey", key, err)
		}
		if err := s.ReadAt(ctx, key, make([]byte, 1), 0); !errors.Is(err, tier.ErrInvalidKey) {
			t.Errorf("ReadAt(%q) = %v; want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, tier.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v; want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, tier.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidKey", key, err)
		}
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("invalid keys left objects: %v", got)
	}
	for _, prefix := range []string{"../", "/", "a//", "..", tier.TempPrefix} {
		if got := listKeys(t, s, prefix); len(got) != 0 {
			t.Errorf("List(%q) = %v", prefix, got)
		}
	}
}

// shortReaderAt holds fewer bytes than the size Put is told.
type shortReaderAt struct{ b []byte }

func (r shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func testShortSource(t *testing.T, s tier.ObjectStore) {
	old := []byte("old")
	MustPut(t, s, "short", old)
	if err := s.Put(t.Context(), "short", shortReaderAt{Data(6, 100)}, 200); err == nil {
		t.Error("Put from a source shorter than size succeeded")
	}
	if got := MustRead(t, s, "short", len(old)); !bytes.Equal(got, old) {
		t.Errorf("failed Put replaced the object: %q", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "cancelled", bytes.NewReader(old), 3); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if _, err := s.Stat(t.Context(), "cancelled"); !s.IsNotExist(err) {
		t.Errorf("Put with a cancelled context left an object: %v", err)
	}
}

// testConcurrent overwrites objects while others read them: every read must
// see one whole version, never a mix or a torn object.
func testConcurrent(t *testing.T, s tier.ObjectStore) {
	const (
		keys     = 4
		versions = 4
		size     = 64 << 10
	)
	ver := func(k, v int) []byte { return Data(uint64(k*100+v), size) }
	for k := range keys {
		MustPut(t, s, fmt.Sprintf("c/%d", k), ver(k, 0))
	}
	g, ctx := errgroup.WithContext(t.Context())
	var mu sync.Mutex
	seen := map[string]int{}
	for k := range keys {
		key := fmt.Sprintf("c/%d", k)
		g.Go(func() error {
			for v := 1; v < versions; v++ {
				b := ver(k, v)
				if err := s.Put(ctx, key, bytes.NewReader(b), size); err != nil {
					return err
				}
			}
			return nil
		})
		for range 2 {
			g.Go(func() error {
				p := make([]byte, size)
				for range 2 * versions {
					if err := s.ReadAt(ctx, key, p, 0); err != nil {
						return fmt.Errorf("ReadAt(%q): %w", key, err)
					}
					found := -1
					for v := range versions {
						if bytes.Equal(p, ver(k, v)) {
							found = v
						}
					}
					if found < 0 {
						return fmt.Errorf("ReadAt(%q) saw bytes of no version", key)
					}
					mu.Lock()
					seen[key]++
					mu.Unlock()
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		key := fmt.Sprintf("c/%d", k)
		if got := MustRead(t, s, key, size); !bytes.Equal(got, ver(k, versions-1)) {
			t.Errorf("%q: last version lost", key)
		}
	}
}

func testLarge(t *testing.T, s tier.ObjectStore) {
	if testing.Short() {
		t.Skip("-short")
	}
	const size = 20 << 20
	data := Data(7, size)
	MustPut(t, s, "big/segment.log", data)
	if n, err := s.Stat(t.Context(), "big/segment.log"); err != nil || n != size {
		t.Fatalf("Stat = %d, %v", n, err)
	}
	if got := MustRead(t, s, "big/segment.log", size); !bytes.Equal(got, data) {
		t.Fatal("20 MiB object read back different")
	}
	p := make([]byte, 1<<20)
	off := int64(size - 1<<20 - 12345)
	if err := s.ReadAt(t.Context(), "big/segment.log", p, off); err != nil || !bytes.Equal(p, data[off:off+1<<20]) {
		t.Fatalf("ranged read of 20 MiB object: %v", err)
	}
	if err := s.ReadAt(t.Context(), "big/segment.log", p, size-10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read across the end of 20 MiB object = %v", err)
	}
}
