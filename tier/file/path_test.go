package file

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/tier"
)

// FuzzPath checks the key-to-path mapping. Invariants: never panics; every
// key CheckKey accepts maps to a path strictly inside the root, and the key
// is recovered from it exactly.
func FuzzPath(f *testing.F) {
	for _, k := range []string{"a", "a/b", "../x", "a/../b", "/abs", "a//b", "a\\..\\b", ".", "t-0/00000000000000000000.log", "ü/ключ"} {
		f.Add(k)
	}
	s := &Store{root: "/srv/tier"}
	f.Fuzz(func(t *testing.T, key string) {
		if tier.CheckKey(key) != nil {
			return
		}
		p := s.path(key)
		rel, err := filepath.Rel(s.root, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("key %q maps to %q, outside root %q", key, p, s.root)
		}
		if filepath.ToSlash(rel) != key {
			t.Fatalf("key %q maps to %q, which reads back as %q", key, p, filepath.ToSlash(rel))
		}
	})
}
