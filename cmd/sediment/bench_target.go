package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchTarget is one system under test. start launches it, as child
// processes so their memory is measured apart from the bench's, and returns
// once it answers Kafka requests; the bench then runs the workload against
// instance.bootstrap and stops it.
//
// A multi-process target (the 3-broker cluster, bench_cluster.go) is an
// instance holding several children; a tiered catch-up read would be a
// target plus a read-only workload.
type benchTarget interface {
	name() string
	start(ctx context.Context, dir string) (*instance, error)
}

// instance is a started target. Not safe for concurrent use.
type instance struct {
	bootstrap   []string // Kafka seed addresses
	procs       []*child // processes whose peak RSS and CPU time are the target's
	brokers     int      // brokers Metadata must list before the target counts as up (0: 1)
	replication int16    // replication factor of the benchmark topic (0: 1)
}

// alive reports the first child that has exited, except children the bench
// killed on purpose.
func (in *instance) alive() error {
	for _, c := range in.procs {
		if c.killed.Load() {
			continue
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s (pid %d) exited during the run: %v%s", c.name, c.pid(), c.waitErr, c.logTail())
		default:
		}
	}
	return nil
}

// exitNote is empty when every child still runs, else why one stopped: the
// likeliest cause of a workload error.
func (in *instance) exitNote() string {
	if err := in.alive(); err != nil {
		return "; " + err.Error()
	}
	return ""
}

// peakRSS is the largest and the sum of VmHWM, the peak resident set, of
// the running children.
func (in *instance) peakRSS() (largest, sum uint64, err error) {
	for _, c := range in.procs {
		n, err := peakRSS(c.pid())
		if err != nil {
			return 0, 0, fmt.Errorf("%s (pid %d): %w", c.name, c.pid(), err)
		}
		largest = max(largest, n)
		sum += n
	}
	return largest, sum, nil
}

// cpuTime sums the user and system time of the stopped children.
func (in *instance) cpuTime() time.Duration {
	var sum time.Duration
	for _, c := range in.procs {
		if st := c.cmd.ProcessState; st != nil {
			sum += st.UserTime() + st.SystemTime()
		}
	}
	return sum
}

// stop ends every child, gracefully if it lets itself be. The children of
// a cluster are stopped together: one after the other, the last brokers
// would wait for an etcd quorum and for peers to take their leaderships
// that are already gone.
func (in *instance) stop() error {
	errs := make([]error, len(in.procs))
	var wg sync.WaitGroup
	for i, c := range in.procs {
		wg.Go(func() { errs[i] = c.stop(childStopGrace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// childStopGrace is how long a child may take to exit after SIGTERM.
const childStopGrace = 10 * time.Second

// sedimentTarget is one `sediment serve` with its own embedded etcd and the
// default flush policy (group-commit fsync).
type sedimentTarget struct {
	bin        string
	partitions int
	extra      []string // more serve flags (--sediment-flag), for experiments
}

func (t *sedimentTarget) name() string { return "sediment" }

func (t *sedimentTarget) start(ctx context.Context, dir string) (*instance, error) {
	in, _, err := startSingleBroker(ctx, t.bin, dir, t.partitions, t.extra, childEnv())
	return in, err
}

// startSingleBroker starts `serve` of bin as node 1 with its own etcd member on
// loopback ports, data in dir/data, log in dir/sediment.log, plus extra flags
// and env, and returns once it answers Kafka requests, with its HTTP address.
func startSingleBroker(ctx context.Context, bin, dir string, partitions int, extra, env []string) (*instance, string, error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return nil, "", err
	}
	kafka, httpAddr, metaClient, metaPeer := addrs[0], addrs[1], addrs[2], addrs[3]
	args := []string{
		"serve",
		"--node-id", "1",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen", kafka,
		"--http", httpAddr,
		"--meta-client-listen", metaClient,
		"--meta-peer-listen", metaPeer,
		"--num-partitions", strconv.Itoa(partitions),
	}
	c, err := startChildEnv("sediment", bin, append(args, extra...), filepath.Join(dir, "sediment.log"), env)
	if err != nil {
		return nil, "", err
	}
	in := &instance{bootstrap: []string{kafka}, procs: []*child{c}}
	if err := waitKafka(ctx, in, startLimit); err != nil {
		return nil, "", errors.Join(err, in.stop())
	}
	return in, httpAddr, nil
}

// kfakeTarget is franz-go's in-memory fake cluster with one broker, run by
// this binary's hidden `bench --kfake-serve`.
type kfakeTarget struct {
	bin string
}

func (t *kfakeTarget) name() string { return "kfake" }

func (t *kfakeTarget) start(ctx context.Context, dir string) (*instance, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	c, err := startChild("kfake", t.bin, []string{"bench", "--kfake-serve", addrs[0]}, filepath.Join(dir, "kfake.log"))
	if err != nil {
		return nil, err
	}
	in := &instance{bootstrap: addrs, procs: []*child{c}}
	if err := waitKafka(ctx, in, 30*time.Second); err != nil {
		return nil, errors.Join(err, in.stop())
	}
	return in, nil
}

// kfakeServe is the kfake child: one in-memory broker on addr until SIGTERM
// or SIGINT. The bench creates the topic through the Kafka API, as it does
// on every target.
func kfakeServe(addr string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--kfake-serve %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if host != "127.0.0.1" || err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("--kfake-serve %q: want 127.0.0.1:PORT (kfake listens on 127.0.0.1 only)", addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer c.Close()
	<-ctx.Done()
	return nil
}

// startLimit bounds how long a Sediment target may take to answer.
const startLimit = 60 * time.Second

// waitKafka retries ApiVersions and Metadata until the target answers both,
// listing in.brokers brokers (and, for a cluster, a controller), until its
// processes exit, or until limit passes.
func waitKafka(ctx context.Context, in *instance, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	retry := time.NewTimer(0)
	defer retry.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no Kafka answer on %v within %s: %w (last error: %v)", in.bootstrap, limit, ctx.Err(), last)
		case <-retry.C:
		}
		if err := in.alive(); err != nil {
			return err
		}
		if last = pingKafka(ctx, in.bootstrap, max(in.brokers, 1)); last == nil {
			return nil
		}
		retry.Reset(200 * time.Millisecond)
	}
}

func pingKafka(ctx context.Context, seeds []string, brokers int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	if av.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions: error code %d", av.ErrorCode)
	}
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("Metadata: %w", err)
	}
	switch {
	case len(md.Brokers) == 0:
		return errors.New("Metadata: no brokers yet")
	case len(md.Brokers) < brokers:
		return fmt.Errorf("Metadata: %d of %d brokers registered", len(md.Brokers), brokers)
	case brokers > 1 && md.ControllerID < 0:
		return errors.New("Metadata: no controller yet")
	}
	return nil
}

// freeAddrs returns n distinct 127.0.0.1 addresses that were free a moment
// ago: all n are held open together so the kernel hands out distinct ports.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// child is a process the bench started. Its output goes to a log file whose
// tail explains a failure. The goroutine started by startChild owns Wait.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and waitErr is set
	waitErr error
	killed  atomic.Bool // set by kill: the exit is the bench's doing, no failure
}

func startChild(name, bin string, args []string, logPath string) (*child, error) {
	return startChildEnv(name, bin, args, logPath, childEnv())
}

// startChildEnv is startChild with an explicit environment.
func startChildEnv(name, bin string, args []string, logPath string, env []string) (*child, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = env
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill sends SIGKILL, as a crash would, without waiting for the exit.
func (c *child) kill() error {
	c.killed.Store(true)
	return c.cmd.Process.Kill()
}

// stop sends SIGTERM, then SIGKILL if the child is still there after grace,
// and waits for it. A child killed by the bench's own signal is no error.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return c.exitErr(false)
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return c.exitErr(true)
	case <-t.C:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed%s", c.name, c.pid(), grace, c.logTail())
}

func (c *child) exitErr(signalled bool) error {
	if c.waitErr == nil {
		return nil
	}
	var ee *exec.ExitError
	if c.killed.Load() && errors.As(c.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	if signalled && errors.As(c.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s (pid %d) exited: %w%s", c.name, c.pid(), c.waitErr, c.logTail())
}

// logTail is the end of the child's output, formatted to follow an error.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	const maxLines, maxBytes = 30, 8 << 10
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s\n---", c.logPath, bytes.Join(lines, []byte("\n")))
}
