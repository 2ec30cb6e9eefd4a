package harness

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func sh(t *testing.T, script string) *Process {
	t.Helper()
	p, err := StartProcess(Command{Name: "sh", Bin: "/bin/sh", Args: []string{"-c", script}, Log: filepath.Join(t.TempDir(), "logs", "sh.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

func TestProcessStop(t *testing.T) {
	p := sh(t, "echo started; exec sleep 60")
	waitOutput(t, p, "started")
	if !p.Running() || p.Alive() != nil {
		t.Fatalf("Running %v, Alive %v", p.Running(), p.Alive())
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop of a process that obeys SIGTERM: %v", err)
	}
	if p.Running() || p.Alive() != nil {
		t.Errorf("after Stop: Running %v, Alive %v", p.Running(), p.Alive())
	}
}

func TestProcessStopIgnored(t *testing.T) {
	p := sh(t, `trap "" TERM; echo trapped; exec sleep 60`)
	waitOutput(t, p, "trapped")
	err := p.Stop(300 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "ignored SIGTERM") || !strings.Contains(err.Error(), "trapped") {
		t.Errorf("Stop of a process that ignores SIGTERM = %v; want an error with its output", err)
	}
	if p.Running() {
		t.Error("still running after Stop")
	}
}

func TestProcessExitAndKill(t *testing.T) {
	p := sh(t, "echo bye; exit 3")
	if code, err := p.Wait(10 * time.Second); err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3", code, err)
	}
	if err := p.Alive(); err == nil || !strings.Contains(err.Error(), "bye") {
		t.Errorf("Alive of a process that exited on its own = %v; want an error with its output", err)
	}
	if err := p.Stop(time.Second); err == nil {
		t.Error("Stop of a process that had exited with code 3 = nil")
	}

	k := sh(t, "exec sleep 60")
	if err := k.Pause(); err != nil || !k.Paused() {
		t.Fatalf("Pause: %v, Paused %v", err, k.Paused())
	}
	if err := k.Resume(); err != nil || k.Paused() {
		t.Fatalf("Resume: %v, Paused %v", err, k.Paused())
	}
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	if k.Running() || k.ExitCode() != -1 || k.Alive() != nil || k.Stop(time.Second) != nil {
		t.Errorf("after Kill: Running %v, ExitCode %d, Alive %v, Stop %v", k.Running(), k.ExitCode(), k.Alive(), k.Stop(time.Second))
	}
}

func TestProcessOutputPerRun(t *testing.T) {
	log := filepath.Join(t.TempDir(), "p.log")
	for i, word := range []string{"first", "second"} {
		p, err := StartProcess(Command{Name: "sh", Bin: "/bin/sh", Args: []string{"-c", "echo " + word}, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(p.Output()); got != word {
			t.Errorf("run %d: Output %q, want %q", i+1, got, word)
		}
	}
	if b, _ := os.ReadFile(log); string(b) != "first\nsecond\n" {
		t.Errorf("log %q", b)
	}
}

func TestEnvironDropsSediment(t *testing.T) {
	t.Setenv("SEDIMENT_NODE_ID", "7")
	t.Setenv("HARNESS_KEPT", "1")
	env := strings.Join(Environ(), "\n")
	if strings.Contains(env, "SEDIMENT_NODE_ID") || !strings.Contains(env, "HARNESS_KEPT=1") {
		t.Errorf("Environ() = %s", env)
	}
}

func TestWaitKafkaProcessExit(t *testing.T) {
	p := sh(t, "echo no kafka here; exit 1")
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = WaitKafka(ctx, addrs, 1, p)
	if err == nil || !strings.Contains(err.Error(), "no kafka here") {
		t.Errorf("WaitKafka with an exited process = %v", err)
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := FreeAddrs(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("FreeAddrs = %v", addrs)
		}
		seen[a] = true
	}
	if a, err := StableAddr(); err != nil || !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("StableAddr = %q, %v", a, err)
	}
}

func TestMemoryAndCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	m, err := ReadMemory(os.Getpid())
	if err != nil || m.RSS == 0 || m.HWM < m.RSS {
		t.Errorf("ReadMemory(self) = %+v, %v", m, err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	if got := processCPU(os.Getpid()); got <= 0 {
		t.Errorf("processCPU(self) = %v", got)
	}
	if got := processCPU(-1); got != 0 {
		t.Errorf("processCPU(-1) = %v, want 0", got)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("ReadMemory(-1) succeeded")
	}
}

func waitOutput(t *testing.T, p *Process, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output: %q", s, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPingKafka runs the readiness checks against franz-go's kfake, which
// validates requests as Kafka does (ApiVersions v3+ needs a client software
// name).
func TestPingKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	md, err := PingKafka(ctx, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 || len(md.Topics) != 0 {
		t.Errorf("Metadata lists %d brokers and %d topics, want 3 and none", len(md.Brokers), len(md.Topics))
	}
	if err := WaitKafka(ctx, c.ListenAddrs(), 3); err != nil {
		t.Error(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := WaitKafka(short, c.ListenAddrs()[:1], 4); err == nil || !strings.Contains(err.Error(), "3 of 4 brokers") {
		t.Errorf("WaitKafka for 4 brokers of 3 = %v", err)
	}
}
