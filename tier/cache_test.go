package tier

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newTestCache(t *testing.T, dir string, max int64) (*chunkCache, prometheus.Gauge) {
	t.Helper()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	c, err := newChunkCache(dir, max, g)
	if err != nil {
		t.Fatal(err)
	}
	return c, g
}

func TestChunkCacheLRU(t *testing.T) {
	dir := t.TempDir()
	c, g := newTestCache(t, dir, 300)
	chunk := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100) }
	for i := range 3 {
		if err := c.put(chunkName("k", i), chunk(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Touch 0, so 1 is the least recently used when 3 arrives.
	if b, ok := c.get(chunkName("k", 0)); !ok || !bytes.Equal(b, chunk(0)) {
		t.Fatalf("get 0: %v", ok)
	}
	if err := c.put(chunkName("k", 3), chunk(3)); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.get(chunkName("k", 1)); ok {
		t.Error("chunk 1 survived eviction")
	}
	for _, i := range []int{0, 2, 3} {
		if b, ok := c.get(chunkName("k", i)); !ok || !bytes.Equal(b, chunk(i)) {
			t.Errorf("chunk %d: %v", i, ok)
		}
	}
	if c.bytes() != 300 || gaugeValue(g) != 300 {
		t.Errorf("size %d, gauge %v; want 300", c.bytes(), gaugeValue(g))
	}
	if n := len(mustReadDir(t, dir)); n != 3 {
		t.Errorf("%d files, want 3", n)
	}
	// Larger than the whole cache: not cached, nothing evicted.
	if err := c.put(chunkName("k", 9), make([]byte, 301)); err != nil {
		t.Fatal(err)
	}
	if c.contains(chunkName("k", 9)) || c.bytes() != 300 {
		t.Error("an oversized chunk was cached")
	}
	// A file gone behind the cache's back is a miss, and forgotten.
	os.Remove(filepath.Join(dir, chunkName("k", 2)))
	if _, ok := c.get(chunkName("k", 2)); ok || c.contains(chunkName("k", 2)) || c.bytes() != 200 {
		t.Errorf("removed file: hit %v, size %d", ok, c.bytes())
	}
	c.remove(chunkName("k", 0))
	if _, ok := c.get(chunkName("k", 0)); ok || c.bytes() != 100 {
		t.Error("remove did not drop the chunk")
	}
}

func TestChunkCacheWipesOnStart(t *testing.T) {
	dir := t.TempDir()
	c, _ := newTestCache(t, dir, 1<<20)
	c.put(chunkName("a", 0), []byte("chunk"))
	os.WriteFile(filepath.Join(dir, ".chunk-7.tmp"), []byte("torn"), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o644)

	c2, g := newTestCache(t, dir, 1<<20)
	if _, ok := c2.get(chunkName("a", 0)); ok {
		t.Error("a chunk of the previous process was served")
	}
	names := mustReadDir(t, dir)
	if len(names) != 1 || names[0] != "README" {
		t.Errorf("after start the directory holds %v, want only README", names)
	}
	if gaugeValue(g) != 0 {
		t.Error("gauge not zero")
	}
}

func TestChunkCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	c, _ := newTestCache(t, dir, 10*64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := chunkName("k", (i*7+g)%25)
				want := bytes.Repeat([]byte(fmt.Sprint((i*7+g)%25%10)), 64)
				if b, ok := c.get(name); ok && !bytes.Equal(b, want) {
					t.Errorf("chunk %s: wrong bytes", name)
					return
				}
				if err := c.put(name, want); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.bytes() > 10*64 {
		t.Errorf("cache holds %d bytes, bound %d", c.bytes(), 10*64)
	}
	var total int64
	for _, n := range mustReadDir(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if total != c.bytes() {
		t.Errorf("files hold %d bytes, index says %d", total, c.bytes())
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestParseFrames(t *testing.T) {
	good := `{"v":1,"frame_size":10,"uncompressed_size":30,"compressed_size":12,"frames":[` +
		`{"uncompressed_offset":0,"uncompressed_len":10,"compressed_offset":0,"compressed_len":5},` +
		`{"uncompressed_offset":10,"uncompressed_len":20,"compressed_offset":5,"compressed_len":7}]}`
	if fs, err := parseFrames([]byte(good), 30, 12); err != nil || len(fs) != 2 {
		t.Fatalf("good frame index: %v", err)
	}
	if fs, err := parseFrames([]byte(`{"v":1,"frames":[]}`), 0, 0); err != nil || fs == nil {
		t.Fatalf("empty frame index: %v %v", fs, err)
	}
	for _, tc := range []struct {
		name, s  string
		size, cz int64
	}{
		{"json", `{"v":1,`, 30, 12},
		{"version", `{"v":2,"uncompressed_size":0,"compressed_size":0,"frames":[]}`, 0, 0},
		{"sizes", good, 31, 12},
		{"compressed size", good, 30, 13},
		{"gap", `{"v":1,"uncompressed_size":30,"compressed_size":12,"frames":[{"uncompressed_offset":0,"uncompressed_len":10,"compressed_offset":0,"compressed_len":5},{"uncompressed_offset":11,"uncompressed_len":19,"compressed_offset":5,"compressed_len":7}]}`, 30, 12},
		{"zero", `{"v":1,"uncompressed_size":0,"compressed_size":5,"frames":[{"uncompressed_offset":0,"uncompressed_len":0,"compressed_offset":0,"compressed_len":5}]}`, 0, 5},
		{"short", `{"v":1,"uncompressed_size":30,"compressed_size":12,"frames":[{"uncompressed_offset":0,"uncompressed_len":10,"compressed_offset":0,"compressed_len":5}]}`, 30, 12},
	} {
		if _, err := parseFrames([]byte(tc.s), tc.size, tc.cz); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestCheckRemoteIndex(t *testing.T) {
	seg := RemoteSegment{BaseOffset: 100, EndOffset: 200, Size: 5000}
	entry := func(rel, pos uint32) []byte {
		return []byte{byte(rel >> 24), byte(rel >> 16), byte(rel >> 8), byte(rel), byte(pos >> 24), byte(pos >> 16), byte(pos >> 8), byte(pos)}
	}
	ok := append(entry(5, 1000), entry(50, 3000)...)
	if err := checkRemoteIndex(ok, seg); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"torn":          ok[:12],
		"rel order":     append(entry(50, 1000), entry(5, 3000)...),
		"pos order":     append(entry(5, 3000), entry(50, 1000)...),
		"past end":      entry(101, 1000),
		"past log size": entry(5, 5000),
	} {
		if err := checkRemoteIndex(b, seg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
