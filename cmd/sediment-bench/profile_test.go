package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProfiler fetches the profiles of a phase from real pprof handlers and
// writes them as gzipped protobufs (what `go tool pprof` reads); a broker
// without the handlers fails the phase with the URL in the error.
func TestProfiler(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := t.TempDir()
	p := &profiler{dir: dir, seconds: 1, http: strings.TrimPrefix(srv.URL, "http://")}
	start := time.Now()
	wait := p.start(context.Background(), "produce")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("profiles returned after %v, before their 1 s window", d)
	}
	for _, name := range []string{"cpu-produce.pprof", "allocs-produce-start.pprof", "allocs-produce-end.pprof"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: not a gzipped profile: % x", name, b[:min(len(b), 8)])
		}
	}

	var none *profiler
	if err := none.start(context.Background(), "consume")(); err != nil {
		t.Errorf("nil profiler: %v", err)
	}

	bare := httptest.NewServer(http.NotFoundHandler())
	defer bare.Close()
	p.http = strings.TrimPrefix(bare.URL, "http://")
	err := p.start(context.Background(), "consume")()
	if err == nil || !strings.Contains(err.Error(), "/debug/pprof/profile?seconds=1") || !strings.Contains(err.Error(), "404") {
		t.Errorf("profile from a server without pprof: %v, want a 404 naming the URL", err)
	}
}
