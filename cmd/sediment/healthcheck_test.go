package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func runHealthcheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), append([]string{"healthcheck"}, args...), streams{out: &out, err: &errb})
	return code, errb.String()
}

func TestHealthcheck(t *testing.T) {
	var asked atomic.Int32
	readyAfter := int32(3) // /readyz answers 503 "starting" twice, then 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := asked.Add(1)
		switch {
		case r.URL.Path == "/stalled":
			http.Error(w, "tiering stalled: uploads to the object store are failing", http.StatusServiceUnavailable)
		case r.URL.Path != "/readyz":
			http.NotFound(w, r)
		case n < readyAfter:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("ready\n"))
		}
	}))
	defer srv.Close()

	code, stderr := runHealthcheck(t, srv.URL+"/stalled")
	if code != exitFail || !strings.Contains(stderr, "503") || !strings.Contains(stderr, "tiering stalled") {
		t.Errorf("a 503: exit %d, stderr %q; want 1 with the status and the broker's reason", code, stderr)
	}

	// No URL: the /readyz of SEDIMENT_HTTP, asked on loopback when it
	// listens on every interface (as in the image).
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Setenv("SEDIMENT_HTTP", "0.0.0.0:"+port)
	asked.Store(0)
	if code, stderr := runHealthcheck(t); code != exitFail || !strings.Contains(stderr, "starting") {
		t.Errorf("first ask while starting: exit %d, stderr %q; want 1, starting", code, stderr)
	}
	if code, stderr := runHealthcheck(t, "--wait", "10s"); code != exitOK || asked.Load() != readyAfter {
		t.Errorf("--wait: exit %d after %d requests, stderr %q; want 0 after %d", code, asked.Load(), stderr, readyAfter)
	}

	srv.Close()
	if code, stderr := runHealthcheck(t, "--timeout", "500ms"); code != exitFail || !strings.Contains(stderr, "127.0.0.1:"+port) {
		t.Errorf("nothing listening: exit %d, stderr %q; want 1 naming the address", code, stderr)
	}

	for _, args := range [][]string{{"ftp://x/readyz"}, {"a", "b"}, {"--timeout", "0"}, {"--wait", "-1s"}, {"--nope"}} {
		if code, _ := runHealthcheck(t, args...); code != exitUsage {
			t.Errorf("healthcheck %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	t.Setenv("SEDIMENT_HTTP", "no-port")
	if code, stderr := runHealthcheck(t); code != exitUsage || !strings.Contains(stderr, "SEDIMENT_HTTP") {
		t.Errorf("bad SEDIMENT_HTTP: exit %d, stderr %q; want 2 naming the variable", code, stderr)
	}
}
