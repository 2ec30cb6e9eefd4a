package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// TestFSConformance runs the same checks against the OS and MemFS, so that tests on
// MemFS mean something for production.
func TestFSConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func(t *testing.T) (FS, string)
	}{
		{"os", func(t *testing.T) (FS, string) { return OS{}, t.TempDir() }},
		{"mem", func(t *testing.T) (FS, string) { return NewMem(), "/data" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, root := tc.fs(t)
			dir := filepath.Join(root, "a", "b")
			must(t, MkdirAllDurable(fsys, dir))
			must(t, fsys.MkdirAll(dir)) // exists: no error
			p := filepath.Join(dir, "f")

			// Open of a missing file, Create, Write, WriteAt with a gap, ReadAt, Stat.
			if _, err := fsys.Open(p); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Open missing: %v", err)
			}
			f, err := fsys.Create(p)
			must(t, err)
			if _, err := f.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("xy"), 8); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("!")); err != nil { // at offset 5, not at the end
				t.Fatal(err)
			}
			buf := make([]byte, 20)
			n, err := f.ReadAt(buf, 0)
			if n != 10 || err != io.EOF || !bytes.Equal(buf[:n], []byte("hello!\x00\x00xy")) {
				t.Fatalf("ReadAt = %d %v %q", n, err, buf[:n])
			}
			if n, err := f.ReadAt(buf[:3], 2); n != 3 || err != nil {
				t.Fatalf("ReadAt inside = %d %v", n, err)
			}
			if n, err := f.ReadAt(buf, 10); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt at end = %d %v", n, err)
			}
			st, err := f.Stat()
			must(t, err)
			if st.Size() != 10 || st.IsDir() || st.Name() != "f" {
				t.Fatalf("Stat = %v %v %v", st.Size(), st.IsDir(), st.Name())
			}
			// Truncate down then up: the regrown bytes are zeros, not the old ones.
			must(t, f.Truncate(3))
			must(t, f.Truncate(6))
			must(t, f.Datasync())
			must(t, f.Close())
			if err := f.Close(); err == nil {
				t.Fatal("second Close succeeded")
			}
			b, err := ReadFile(fsys, p)
			must(t, err)
			if !bytes.Equal(b, []byte("hel\x00\x00\x00")) {
				t.Fatalf("after truncations: %q", b)
			}

			// A read-only file refuses writes; OpenReadWrite keeps contents; Create truncates.
			r, err := fsys.Open(p)
			must(t, err)
			if _, err := r.WriteAt([]byte("z"), 0); err == nil {
				t.Fatal("write to a read-only file succeeded")
			}
			r.Close()
			rw, err := fsys.OpenReadWrite(p)
			must(t, err)
			if st, _ := rw.Stat(); st.Size() != 6 {
				t.Fatalf("OpenReadWrite truncated: %d", st.Size())
			}
			rw.Close()
			rw, err = fsys.OpenReadWrite(p + "2")
			must(t, err)
			rw.Close()
			c, err := fsys.Create(p)
			must(t, err)
			c.Close()
			if st, _ := fsys.Stat(p); st.Size() != 0 {
				t.Fatalf("Create kept %d bytes", st.Size())
			}

			// WriteFile, WriteFileAtomic, Rename, ReadDir, Remove, RemoveAll.
			must(t, WriteFile(fsys, p, []byte("one")))
			must(t, WriteFileAtomic(fsys, p, []byte("two"), true))
			if b, _ := ReadFile(fsys, p); string(b) != "two" {
				t.Fatalf("WriteFileAtomic: %q", b)
			}
			if _, err := fsys.Stat(p + TmpSuffix); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("temporary file left: %v", err)
			}
			must(t, fsys.Rename(p, p+"3"))
			must(t, fsys.MkdirAll(filepath.Join(dir, "sub")))
			entries, err := fsys.ReadDir(dir)
			must(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
				if e.IsDir() != (e.Name() == "sub") {
					t.Fatalf("%s: IsDir %v", e.Name(), e.IsDir())
				}
			}
			if !slices.Equal(names, []string{"f2", "f3", "sub"}) {
				t.Fatalf("ReadDir = %v", names)
			}
			if err := fsys.Remove(p); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Remove missing: %v", err)
			}
			must(t, WriteFile(fsys, filepath.Join(dir, "sub", "x"), nil))
			if err := fsys.Remove(filepath.Join(dir, "sub")); err == nil {
				t.Fatal("Remove of a non-empty directory succeeded")
			}
			must(t, fsys.Remove(p+"3"))
			must(t, fsys.SyncDir(dir))
			must(t, fsys.RemoveAll(filepath.Join(root, "a")))
			must(t, fsys.RemoveAll(filepath.Join(root, "a")))
			if _, err := fsys.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("RemoveAll left %s: %v", dir, err)
			}
			if err := fsys.SyncDir(dir); err == nil {
				t.Fatal("SyncDir of a missing directory succeeded")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
