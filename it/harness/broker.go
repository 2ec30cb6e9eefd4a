package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultStartTimeout bounds how long a broker or MinIO may take to become
// ready when the config names no StartTimeout: generous, since under -race
// on two cores an embedded etcd can take several seconds to elect itself.
const DefaultStartTimeout = 60 * time.Second

// BrokerConfig is one `sediment serve` process.
type BrokerConfig struct {
	Bin     string // the sediment binary
	NodeID  int    // --node-id; 0 means 1
	DataDir string // --data-dir
	LogPath string // the broker's stdout and stderr, every run in turn
	// The listeners: Kafka (--listen), HTTP (--http: metrics and health),
	// and the etcd member's client and peer URLs. Each empty one is a free
	// loopback port the harness picks.
	Addr, HTTP, MetaClient, MetaPeer string
	Flags                            []string // more serve flags, after the harness's (later flags win)
	// Env is the broker's whole environment; nil means Environ() at each
	// start, so variables the caller sets before a restart reach it.
	Env          []string
	StartTimeout time.Duration // 0 means DefaultStartTimeout
}

// Broker is one `sediment serve` process that can be stopped and started
// again on the same data directory and ports. Not safe for concurrent use,
// except that its Process's methods are.
type Broker struct {
	NodeID  int
	Dir     string // --data-dir
	LogPath string
	// The listeners, all on 127.0.0.1: Kafka, HTTP, etcd client and peer.
	Addr, HTTP, MetaClient, MetaPeer string

	bin     string
	flags   []string // after the listeners: cluster flags, then the config's
	env     []string
	timeout time.Duration
	picked  bool // the harness chose the ports and no run has been ready yet
	runs    int
	current // the latest run: Process, Running, Stop, Kill
}

// errPortInUse is a start that failed because a port was taken meanwhile.
var errPortInUse = errors.New("port in use")

// registeredRE matches the line a broker logs once it is registered in
// etcd: the sign that this run, not a previous one whose lease outlives a
// kill -9, is what Metadata lists.
var registeredRE = regexp.MustCompile(`msg="broker registered"`)

// healthClient bounds each /healthz probe.
var healthClient = &http.Client{Timeout: 2 * time.Second}

// NewBroker prepares a broker (picking its free ports and creating its
// log file) without starting it.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	b := &Broker{
		NodeID: max(cfg.NodeID, 1), Dir: cfg.DataDir, LogPath: cfg.LogPath,
		Addr: cfg.Addr, HTTP: cfg.HTTP, MetaClient: cfg.MetaClient, MetaPeer: cfg.MetaPeer,
		bin: cfg.Bin, flags: cfg.Flags, env: cfg.Env, timeout: cfg.StartTimeout,
	}
	if b.timeout <= 0 {
		b.timeout = DefaultStartTimeout
	}
	if b.Addr == "" || b.HTTP == "" || b.MetaClient == "" || b.MetaPeer == "" {
		if b.Addr != "" || b.HTTP != "" || b.MetaClient != "" || b.MetaPeer != "" {
			return nil, errors.New("harness: BrokerConfig names some listeners but not all")
		}
		b.picked = true
		if err := b.pickPorts(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(b.LogPath), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(b.LogPath, nil, 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

// StartBroker starts a broker and returns once it is ready (see Start).
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	b, err := NewBroker(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Broker) pickPorts() error {
	addrs, err := FreeAddrs(4)
	if err != nil {
		return err
	}
	b.Addr, b.HTTP, b.MetaClient, b.MetaPeer = addrs[0], addrs[1], addrs[2], addrs[3]
	return nil
}

// Args is the broker's command line after the binary.
func (b *Broker) Args() []string {
	args := []string{
		"serve",
		"--node-id", strconv.Itoa(b.NodeID),
		"--data-dir", b.Dir,
		"--listen", b.Addr,
		"--http", b.HTTP,
		"--meta-client-listen", b.MetaClient,
		"--meta-peer-listen", b.MetaPeer,
	}
	return append(args, b.flags...)
}

// AddFlags appends serve flags for the runs that follow: a restart with a
// setting changed (later flags win).
func (b *Broker) AddFlags(flags ...string) {
	b.flags = append(b.flags[:len(b.flags):len(b.flags)], flags...)
}

// Start runs the broker (again, after Stop or Kill: same data directory,
// ports and flags) and returns once it is ready: it answers ApiVersions, its
// Metadata lists its own node id, /healthz answers 200 and, from the second
// run on, this run has logged that it registered. A port taken meanwhile
// is retried: on other ports while the harness chose them and the broker
// never ran, else on the same ports after a pause. A broker that fails to
// become ready within the start timeout is killed.
func (b *Broker) Start(ctx context.Context) error {
	if b.Running() {
		return fmt.Errorf("broker %d is still running; stop or kill it first", b.NodeID)
	}
	for attempt := 1; ; attempt++ {
		err := b.run(ctx)
		if err == nil {
			b.picked = false
			return nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 10 {
			return err
		}
		if b.picked {
			if err := b.pickPorts(); err != nil {
				return err
			}
			continue
		}
		// Usually a short-lived client socket took one of the ports.
		if sleep(ctx, 500*time.Millisecond) != nil {
			return err
		}
	}
}

// run starts one run and waits until it is ready; it kills a run that
// does not get there.
func (b *Broker) run(ctx context.Context) error {
	b.runs++
	note := fmt.Sprintf("=== harness: run %d: %s %s\n", b.runs, b.bin, strings.Join(b.Args(), " "))
	if err := appendFile(b.LogPath, note); err != nil {
		return err
	}
	env := b.env
	if env == nil {
		env = Environ()
	}
	p, err := StartProcess(Command{Name: fmt.Sprintf("broker %d", b.NodeID), Bin: b.bin, Args: b.Args(), Env: env, Log: b.LogPath})
	if err != nil {
		return err
	}
	b.cur = p
	wctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	err = WaitFor(wctx, 100*time.Millisecond, []*Process{p}, func() error { return b.ready(wctx) },
		func(last error) error {
			return fmt.Errorf("not ready after %s: %w (last error: %v)", b.timeout, wctx.Err(), last)
		})
	if err == nil {
		return nil
	}
	err = abandon(p, err)
	if strings.Contains(p.Output(), "address already in use") {
		return fmt.Errorf("broker %d: %w: %v", b.NodeID, errPortInUse, err)
	}
	return fmt.Errorf("broker %d: %w", b.NodeID, err)
}

// ready is one readiness check of the current run.
func (b *Broker) ready(ctx context.Context) error {
	md, err := PingKafka(ctx, b.Addr)
	if err != nil {
		return err
	}
	if err := listsBrokers(md, 1, []int32{int32(b.NodeID)}, false); err != nil {
		return err
	}
	if b.runs > 1 && !registeredRE.MatchString(b.cur.Output()) {
		return errors.New(`Metadata answers but this run has not logged "broker registered" yet`)
	}
	return httpOK(ctx, "http://"+b.HTTP+"/healthz")
}

// PID is the current run's process id.
func (b *Broker) PID() int { return b.cur.PID() }

// Pause freezes the current run (SIGSTOP), etcd member included.
func (b *Broker) Pause() error { return b.cur.Pause() }

// Resume continues a paused run (SIGCONT).
func (b *Broker) Resume() error { return b.cur.Resume() }

// Logs is the output of every run so far, each after a line starting
// "=== harness: run N:" with its command line.
func (b *Broker) Logs() string { return readFrom(b.LogPath, 0) }

// RunLogs is the output of the current run.
func (b *Broker) RunLogs() string {
	if b.cur == nil {
		return ""
	}
	return b.cur.Output()
}

// current is the latest run of a server that can be started again (a
// broker, MinIO).
type current struct {
	cur *Process // nil before the first start
}

// Process is the current (or last) run; nil before the first start.
func (c *current) Process() *Process { return c.cur }

// Running reports whether the current run has not exited.
func (c *current) Running() bool { return c.cur != nil && c.cur.Running() }

// Stop ends the current run: SIGTERM, SIGKILL after grace (see
// Process.Stop). No run yet is no error.
func (c *current) Stop(grace time.Duration) error {
	if c.cur == nil {
		return nil
	}
	return c.cur.Stop(grace)
}

// Kill ends the current run with SIGKILL and waits until it is gone.
func (c *current) Kill() error {
	if c.cur == nil {
		return nil
	}
	return c.cur.Kill()
}

// abandon kills p, a run that did not become ready, and returns err, the
// reason, with p's last output lines unless err is p's exit (Alive), which
// has them already.
func abandon(p *Process, err error) error {
	exited := !p.Running()
	_ = p.Kill()
	if exited {
		return err
	}
	return fmt.Errorf("%w%s", err, p.LogTail())
}

// httpOK GETs url and wants 200 OK.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// sleep waits d, or until ctx ends (then its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// appendFile appends s to the file at path.
func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}
