package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/it/harness"
)

// asCommandEnv, set to 1, makes the test binary the sediment command itself
// (TestMain), so tests can start a broker from the code under test without
// building bin/sediment first.
const asCommandEnv = "SEDIMENTTEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommandEnv) == "1" {
		os.Exit(runMain(context.Background(), os.Args[1:], streams{out: os.Stdout, err: os.Stderr}))
	}
	os.Exit(m.Run())
}

// startBroker runs `sediment serve` on free ports until the test ends: the
// binary $SEDIMENT_BIN when set (make test builds it), else this test binary
// as the command. It returns the Kafka address.
func startBroker(t *testing.T, flags ...string) string {
	t.Helper()
	return startBrokerConfig(t, harness.BrokerConfig{Flags: flags}).Addr
}

// startBrokerConfig is startBroker with cfg's addresses and flags (its
// Bin, DataDir, LogPath and Env are set here).
func startBrokerConfig(t *testing.T, cfg harness.BrokerConfig) *harness.Broker {
	t.Helper()
	bin, env := os.Getenv("SEDIMENT_BIN"), []string(nil)
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin, env = self, append(harness.Environ(), asCommandEnv+"=1")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), harness.DefaultStartTimeout)
	defer cancel()
	cfg.Bin, cfg.DataDir, cfg.LogPath, cfg.Env = bin, filepath.Join(dir, "data"), filepath.Join(dir, "broker.log"), env
	b, err := harness.StartBroker(ctx, cfg)
	if err != nil {
		t.Fatalf("starting a broker: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", b.Process().Tail(40))
		}
		if err := b.Stop(30 * time.Second); err != nil {
			t.Errorf("stopping the broker: %v", err)
		}
	})
	return b
}

// cli runs the sediment command line in process.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(context.Background(), args, streams{out: &out, err: &errb})
	return out.String(), errb.String(), code
}

// TestAdminBadInput: a wrong command line or an address with no broker
// behind it ends with a message naming the problem and exit 2 or 1, at
// once; help goes to stdout with exit 0.
func TestAdminBadInput(t *testing.T) {
	closed := closedAddr(t)
	silent := silentListener(t)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string // in stderr
	}{
		{args: nil, code: 2, want: "Usage:"},
		{args: []string{"frob"}, code: 2, want: `unknown command "frob"`},
		{args: []string{"group"}, code: 2, want: "sediment group list"},
		{args: []string{"group", "frob"}, code: 2, want: `unknown verb "frob"`},
		{args: []string{"group", "describe"}, code: 2, want: "name at least one GROUP"},
		{args: []string{"group", "delete", ""}, code: 2, want: "GROUP is empty"},
		{args: []string{"group", "list", "--bogus"}, code: 2, want: "-bogus"},
		{args: []string{"group", "list", "extra"}, code: 2, want: "no arguments"},
		{args: []string{"group", "list", "--state", "Sleepy"}, code: 2, want: `--state "Sleepy"`},
		{args: []string{"group", "list", "--output", "yaml"}, code: 2, want: `--output "yaml"`},
		{args: []string{"group", "list", "--timeout", "0s"}, code: 2, want: "--timeout"},
		{args: []string{"group", "list", "--bootstrap-server", " , "}, code: 2, want: "--bootstrap-server is empty"},
		{args: []string{"group", "list"}, env: map[string]string{"SEDIMENT_OUTPUT": "yaml"}, code: 2, want: "SEDIMENT_OUTPUT"},
		{args: []string{"group", "list", "--bootstrap-server", closed}, code: 1, want: "cannot reach any --bootstrap-server (" + closed + ")"},
		{args: []string{"group", "describe", "g", "--bootstrap-server", closed}, code: 1, want: "connection refused"},
		{args: []string{"group", "list"}, env: map[string]string{"SEDIMENT_BOOTSTRAP_SERVER": closed}, code: 1, want: closed},
		{args: []string{"group", "list", "--bootstrap-server", silent, "--timeout", "1s"}, code: 1, want: "no answer within --timeout 1s"},
		{args: []string{"group", "reset-offsets", "g", "--topic", "t"}, code: 2, want: "one of --to-earliest, --to-latest"},
		{args: []string{"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "1", "--shift-by", "1"}, code: 2, want: "--to-offset, --shift-by: give only one"},
		{args: []string{"group", "reset-offsets", "g", "--to-earliest"}, code: 2, want: "--topic"},
		{args: []string{"group", "reset-offsets", "g", "--to-earliest", "--topic", "t", "--all-topics"}, code: 2, want: "not both"},
		{args: []string{"group", "reset-offsets", "g", "h", "--topic", "t", "--to-earliest"}, code: 2, want: "one GROUP"},
		{args: []string{"group", "reset-offsets", "g", "--topic", "t:x", "--to-earliest"}, code: 2, want: `partition "x"`},
		{args: []string{"group", "reset-offsets", "g", "--topic", ":1", "--to-earliest"}, code: 2, want: "TOPIC"},
		{args: []string{"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"}, code: 2, want: "RFC 3339"},
		{args: []string{"group", "reset-offsets", "g", "--topic", "t", "--to-latest", "--execute", "--dry-run"}, code: 2, want: "contradict"},
		{args: []string{"help", "frob"}, code: 2, want: `unknown command "frob"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			start := time.Now()
			stdout, stderr, code := cli(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q in stderr (stdout %q)", code, stderr, tc.code, tc.want, stdout)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestAdminHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}} {
		stdout, _, code := cli(t, args...)
		if code != 0 || !strings.Contains(stdout, "sediment group <verb>") || !strings.Contains(stdout, "sediment serve") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
	for _, args := range [][]string{{"group", "--help"}, {"group", "help"}, {"help", "group"}} {
		stdout, _, code := cli(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, v := range []string{"list", "describe", "delete", "reset-offsets", "-bootstrap-server", "SEDIMENT_BOOTSTRAP_SERVER"} {
			if !strings.Contains(stdout, v) {
				t.Errorf("%v: %q missing from %q", args, v, stdout)
			}
		}
	}
	stdout, _, code := cli(t, "group", "reset-offsets", "--help")
	if code != 0 || !strings.Contains(stdout, "-to-datetime") || !strings.Contains(stdout, "-bootstrap-server") {
		t.Errorf("reset-offsets --help: exit %d, %q", code, stdout)
	}
}

// TestParseArgs: flags and positional arguments mix; "--" ends the flags.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		out  string
	}{
		{[]string{"a", "--output", "json", "b"}, "a b", "json"},
		{[]string{"--output=json", "a"}, "a", "json"},
		{[]string{"a", "--", "--output", "b"}, "a --output b", "table"},
		{nil, "", "table"},
	} {
		var f connFlags
		fs := newTestFlagSet(&f)
		pos, err := parseArgs(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || f.output != tc.out {
			t.Errorf("%q: positional %q, output %q, %v; want %q, %q", tc.args, pos, f.output, err, tc.pos, tc.out)
		}
	}
}

// TestConnFlagsEnv: SEDIMENT_<NAME> fills the connection flags the command
// line leaves unset, and only those.
func TestConnFlagsEnv(t *testing.T) {
	t.Setenv("SEDIMENT_BOOTSTRAP_SERVER", "h1:1")
	t.Setenv("SEDIMENT_OUTPUT", "json")
	var f connFlags
	fs := newTestFlagSet(&f)
	if _, err := parseArgs(fs, []string{"--output", "table"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, connFlagNames...); err != nil {
		t.Fatal(err)
	}
	if f.bootstrap != "h1:1" || f.output != "table" {
		t.Fatalf("bootstrap %q (want h1:1 from the environment), output %q (want table from the command line)", f.bootstrap, f.output)
	}
	if got := (&connFlags{bootstrap: "a, b:1,[::1]"}).seeds(); strings.Join(got, " ") != "a:9092 b:1 [::1]:9092" {
		t.Fatalf("seeds %q", got)
	}
}

// TestNoKfake: kfake (franz-go's fake cluster, used by the benchmark) must
// not end up in the sediment binary.
func TestNoKfake(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "kfake") {
			t.Fatalf("cmd/sediment depends on %s", dep)
		}
	}
}

func newTestFlagSet(f *connFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	return fs
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentListener accepts connections and never answers, until the test ends.
func silentListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
