package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

func TestOSFileIsSyscallConn(t *testing.T) {
	f, err := OS{}.Create(filepath.Join(t.TempDir(), "f"))
	must(t, err)
	defer f.Close()
	if _, ok := f.(syscall.Conn); !ok {
		t.Fatal("an OS file is not a syscall.Conn: fetch could not sendfile it")
	}
}

// exists reports whether name exists in fsys with exactly the contents want.
func contents(t *testing.T, fsys FS, name string) (string, bool) {
	t.Helper()
	b, err := ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	must(t, err)
	return string(b), true
}

func TestMemCrashStrict(t *testing.T) {
	type step func(t *testing.T, m *MemFS)
	write := func(name, data string, sync bool) step {
		return func(t *testing.T, m *MemFS) {
			f, err := m.OpenReadWrite(name)
			must(t, err)
			st, _ := f.Stat()
			_, err = f.WriteAt([]byte(data), st.Size())
			must(t, err)
			if sync {
				must(t, f.Datasync())
			}
			must(t, f.Close())
		}
	}
	syncDir := func(name string) step { return func(t *testing.T, m *MemFS) { must(t, m.SyncDir(name)) } }
	for _, tc := range []struct {
		name  string
		steps []step
		want  map[string]string // name -> contents after the crash; "-" = absent
	}{
		{"synced file, unsynced name vanishes",
			[]step{write("/d/f", "abc", true)},
			map[string]string{"/d/f": "-"}},
		{"synced name, unsynced data is empty",
			[]step{write("/d/f", "abc", false), syncDir("/d")},
			map[string]string{"/d/f": ""}},
		{"synced name and data survive, later writes do not",
			[]step{write("/d/f", "abc", true), syncDir("/d"), write("/d/f", "def", false)},
			map[string]string{"/d/f": "abc"}},
		{"a sync covers every write before it",
			[]step{write("/d/f", "abc", false), write("/d/f", "def", true), syncDir("/d")},
			map[string]string{"/d/f": "abcdef"}},
		{"unsynced truncation is undone",
			[]step{write("/d/f", "abcdef", true), syncDir("/d"), func(t *testing.T, m *MemFS) {
				f, _ := m.OpenReadWrite("/d/f")
				must(t, f.Truncate(2))
				f.Close()
			}},
			map[string]string{"/d/f": "abcdef"}},
		{"unsynced rename is undone",
			[]step{write("/d/f", "old", true), syncDir("/d"), write("/d/f.tmp", "new", true),
				func(t *testing.T, m *MemFS) { must(t, m.Rename("/d/f.tmp", "/d/f")) }},
			map[string]string{"/d/f": "old", "/d/f.tmp": "-"}},
		{"synced rename sticks",
			[]step{write("/d/f", "old", true), syncDir("/d"), write("/d/f.tmp", "new", true),
				func(t *testing.T, m *MemFS) { must(t, m.Rename("/d/f.tmp", "/d/f")) }, syncDir("/d")},
			map[string]string{"/d/f": "new", "/d/f.tmp": "-"}},
		{"rename of unsynced data gives an empty file",
			[]step{write("/d/f.tmp", "new", false),
				func(t *testing.T, m *MemFS) { must(t, m.Rename("/d/f.tmp", "/d/f")) }, syncDir("/d")},
			map[string]string{"/d/f": ""}},
		{"unsynced remove is undone",
			[]step{write("/d/f", "abc", true), syncDir("/d"), func(t *testing.T, m *MemFS) { must(t, m.Remove("/d/f")) }},
			map[string]string{"/d/f": "abc"}},
		{"a file's data follows its inode across a remove",
			[]step{write("/d/f", "abc", false), syncDir("/d"), func(t *testing.T, m *MemFS) {
				f, _ := m.OpenReadWrite("/d/f")
				must(t, m.Remove("/d/f"))
				f.WriteAt([]byte("xyz"), 0)
				must(t, f.Datasync()) // the durable name still points to this inode
				f.Close()
			}},
			map[string]string{"/d/f": "xyz"}},
		{"a new directory needs its parent synced",
			[]step{func(t *testing.T, m *MemFS) { must(t, m.MkdirAll("/d/p")) }, write("/d/p/f", "abc", true), syncDir("/d/p")},
			map[string]string{"/d/p/f": "-"}},
		{"MkdirAllDurable syncs the parents it creates",
			[]step{func(t *testing.T, m *MemFS) { must(t, MkdirAllDurable(m, "/d/p/q")) }, write("/d/p/q/f", "abc", true), syncDir("/d/p/q")},
			map[string]string{"/d/p/q/f": "abc"}},
		{"RemoveAll is undone without a sync of the parent",
			[]step{func(t *testing.T, m *MemFS) { must(t, MkdirAllDurable(m, "/d/p")) }, write("/d/p/f", "abc", true), syncDir("/d/p"),
				func(t *testing.T, m *MemFS) { must(t, m.RemoveAll("/d/p")) }},
			map[string]string{"/d/p/f": "abc"}},
		{"WriteFileAtomic without its directory sync keeps the old contents",
			[]step{write("/d/f", "old", true), syncDir("/d"), func(t *testing.T, m *MemFS) { must(t, WriteFileAtomic(m, "/d/f", []byte("new"), false)) }},
			map[string]string{"/d/f": "old"}},
		{"WriteFileAtomic with its directory sync is durable",
			[]step{write("/d/f", "old", true), syncDir("/d"), func(t *testing.T, m *MemFS) { must(t, WriteFileAtomic(m, "/d/f", []byte("new"), true)) }},
			map[string]string{"/d/f": "new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			must(t, MkdirAllDurable(m, "/d"))
			for _, s := range tc.steps {
				s(t, m)
			}
			before := m.Ops()
			c := m.CrashClone()
			if m.Ops() != before {
				t.Fatal("CrashClone counted as an operation")
			}
			for name, want := range tc.want {
				got, ok := contents(t, c, name)
				if want == "-" && ok {
					t.Errorf("%s survived the crash with %q", name, got)
				} else if want != "-" && (!ok || got != want) {
					t.Errorf("%s after the crash: %q (exists %v), want %q", name, got, ok, want)
				}
			}
			// The clone is a working filesystem whose state is all durable.
			must(t, WriteFile(c, "/d/g", []byte("x")))
			if _, ok := contents(t, c.CrashClone(), "/d/g"); ok {
				t.Error("an unsynced file of the clone survived its crash")
			}
		})
	}
}

func TestMemSyncKnobs(t *testing.T) {
	m := NewMem()
	must(t, MkdirAllDurable(m, "/d"))
	m.SetIgnoreSyncs(true)
	must(t, WriteFileAtomic(m, "/d/f", []byte("abc"), true))
	if _, ok := contents(t, m.CrashClone(), "/d/f"); ok {
		t.Fatal("ignored syncs made a file durable")
	}
	m.SetIgnoreSyncs(false)
	boom := errors.New("boom")
	m.SetSyncError(boom)
	if err := WriteFileAtomic(m, "/d/g", []byte("abc"), true); !errors.Is(err, boom) {
		t.Fatalf("failing sync: %v", err)
	}
	if err := m.SyncDir("/d"); !errors.Is(err, boom) {
		t.Fatalf("failing SyncDir: %v", err)
	}
	if _, ok := contents(t, m.CrashClone(), "/d/f"); ok {
		t.Fatal("a failed SyncDir made an entry durable")
	}
	m.SetSyncError(nil)
	must(t, m.SyncDir("/d"))
	if got, _ := contents(t, m.CrashClone(), "/d/f"); got != "" {
		t.Fatalf("data of a file whose datasync was ignored survived: %q", got)
	}
}

func TestMemCrashAfter(t *testing.T) {
	m := NewMem()
	must(t, MkdirAllDurable(m, "/d"))
	f, err := m.Create("/d/f") // op 1
	must(t, err)
	recorded := false
	ch := m.CrashAfter(3, nil, func() { recorded = true })
	f.Write([]byte("a"))     // op 1 from now
	must(t, f.Datasync())    // op 2
	must(t, m.SyncDir("/d")) // op 3: the crash comes just before it
	if !recorded {
		t.Fatal("record not called")
	}
	c := <-ch
	if _, ok := contents(t, c, "/d/f"); ok {
		t.Fatal("the crash came after the directory sync")
	}
	if got, _ := contents(t, m, "/d/f"); got != "a" {
		t.Fatal("the original stopped working")
	}
	if got, _ := contents(t, m.CrashClone(), "/d/f"); got != "a" {
		t.Fatalf("after the sync: %q", got)
	}
}

// TestMemTornCrash checks that a torn clone only holds states the program could have had
// on disk: each file a page-wise mix of its durable and current contents, each directory
// its durable entries plus a prefix of the later changes.
func TestMemTornCrash(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 200 {
		m := NewMem()
		must(t, MkdirAllDurable(m, "/d"))
		names := []string{"/d/a", "/d/b", "/d/c"}
		history := map[string][]string{} // every content each name had
		for range 30 {
			name := names[r.IntN(len(names))]
			switch r.IntN(5) {
			case 0, 1:
				f, err := m.OpenReadWrite(name)
				must(t, err)
				b := bytes.Repeat([]byte{byte('a' + r.IntN(26))}, r.IntN(3*pageSize))
				f.WriteAt(b, int64(r.IntN(2*pageSize)))
				if r.IntN(2) == 0 {
					f.Datasync()
				}
				f.Close()
			case 2:
				must(t, m.SyncDir("/d"))
			case 3:
				m.Remove(name)
			case 4:
				m.Rename(name, names[r.IntN(len(names))])
			}
			for _, n := range names {
				got, _ := contents(t, m, n)
				history[n] = append(history[n], got)
			}
		}
		c := m.TornCrashClone(r)
		for _, n := range names {
			got, ok := contents(t, c, n)
			if !ok {
				continue
			}
			// Every page of got must be a page (or a zero page) of some version that
			// ever had that name's inode; checking against all versions of all names
			// is weaker but enough to catch garbage.
			for p := 0; p < len(got); p += pageSize {
				page := got[p:min(p+pageSize, len(got))]
				if allByte(page, 0) {
					continue
				}
				found := false
				for _, vs := range history {
					for _, v := range vs {
						if p < len(v) {
							want := []byte(v[p:min(p+len(page), len(v))])
							want = append(want, make([]byte, len(page)-len(want))...)
							found = found || string(want) == page
						}
					}
				}
				if !found {
					t.Fatalf("iter %d: %s page %d holds bytes no version had", iter, n, p/pageSize)
				}
			}
		}
	}
}

func allByte(s string, b byte) bool {
	for i := range len(s) {
		if s[i] != b {
			return false
		}
	}
	return true
}

func TestMemConcurrent(t *testing.T) {
	m := NewMem()
	must(t, MkdirAllDurable(m, "/d"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("/d/f%d", g)
			f, err := m.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for i := range 200 {
				f.WriteAt([]byte{byte(i)}, int64(i))
				if i%10 == 0 {
					f.Datasync()
					m.SyncDir("/d")
				}
				buf := make([]byte, 1)
				f.ReadAt(buf, int64(i))
				if i%50 == 0 {
					m.CrashClone()
					m.ReadDir("/d")
				}
			}
		}()
	}
	wg.Wait()
	for g := range 4 {
		got, ok := contents(t, m.CrashClone(), fmt.Sprintf("/d/f%d", g))
		if !ok || len(got) != 191 {
			t.Fatalf("f%d: %d bytes durable, want 191", g, len(got))
		}
	}
}
