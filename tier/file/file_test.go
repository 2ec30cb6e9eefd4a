package file_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	"github.com/sedimentio/sediment/tier/tiertest"
)

func TestConformance(t *testing.T) {
	tiertest.Run(t, func(t *testing.T) tier.ObjectStore {
		s, err := file.New(filepath.Join(t.TempDir(), "tier"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestNoEscape checks that no key reaches outside the root, whatever the
// backend-independent key check lets through.
func TestNoEscape(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	s, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "a/../../x", "/etc/x", "..", "a\\..\\..\\x"} {
		_ = s.Put(t.Context(), key, strings.NewReader("x"), 1)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "root" {
		t.Errorf("files outside the root: %v", entries)
	}
}

// TestLayout pins the on-disk layout and the temp-file discipline: a key is a
// file path under the root, and no temporary file outlives Put.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	s, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	tiertest.MustPut(t, s, "t-0/00000000000000000000.log", []byte("hello"))
	b, err := os.ReadFile(filepath.Join(root, "t-0", "00000000000000000000.log"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("object file = %q, %v", b, err)
	}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), tier.TempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// An orphaned temporary file (a crash mid-Put) is never listed.
	if err := os.WriteFile(filepath.Join(root, "t-0", tier.TempPrefix+"orphan"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(t.Context(), "", func(k string, _ int64) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "t-0/00000000000000000000.log" {
		t.Errorf("List = %v", keys)
	}
	// Deleting the last object removes its now-empty directory.
	if err := s.Delete(t.Context(), "t-0/00000000000000000000.log"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "t-0", tier.TempPrefix+"orphan")); err != nil {
		t.Fatal(err)
	}
	tiertest.MustPut(t, s, "u/1", []byte("x"))
	if err := s.Delete(t.Context(), "u/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "u")); !os.IsNotExist(err) {
		t.Errorf("empty directory left after Delete: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("root removed: %v", err)
	}
}
