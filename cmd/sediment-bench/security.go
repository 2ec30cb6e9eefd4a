package main

// The security phase (security): what TLS and SASL cost on one broker
// (issue 12). BENCH.md describes the method; in short, each run makes a CA
// and a broker certificate in the work directory, starts one broker with a
// PLAINTEXT and a SASL_SSL listener (SCRAM-SHA-512 only), creates a user
// with 4096 iterations through AlterUserScramCredentials on the PLAINTEXT
// listener, then:
//
//  1. throughput: the workload's produce and verifying consume of
//     --security-records records over PLAINTEXT, then the same over
//     SASL_SSL with franz-go's SCRAM-SHA-512 (each to a topic of its own),
//     and the SASL_SSL/PLAINTEXT ratios of produce and of consume;
//  2. handshakes (security_handshake.go): --security-handshake-conns
//     connectors each dialing the SASL_SSL listener over and over for
//     --security-handshake-time: TCP, a full TLS handshake, ApiVersions,
//     SaslHandshake, two SaslAuthenticate; handshakes per second and the
//     broker's CPU time per handshake.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sedimentio/sediment/it/harness"
)

const (
	securityTargetName = "security"
	securityPlainTopic = "sediment-bench-plaintext"
	securitySASLTopic  = "sediment-bench-sasl-ssl"
	securityUser       = "sediment-bench"
	// securityIterations is the SCRAM iteration count of the bench's user:
	// the figure, and Kafka's minimum.
	securityIterations = 4096
	// securityRatioTarget is the project's goal for produce and consume
	// over SASL_SSL against PLAINTEXT in the same run.
	securityRatioTarget = 0.7
	// securityHandshakeTarget is the goal for connections with a SCRAM
	// handshake per second on 2 cores.
	securityHandshakeTarget = 500.0
)

// securityFlags are the phase's part of the bench flags.
type securityFlags struct {
	records        int
	handshakeTime  time.Duration
	handshakeConns int
}

// addSecurityFlags registers the phase's flags on fs.
func addSecurityFlags(fs *flag.FlagSet, s *securityFlags) {
	fs.IntVar(&s.records, "security-records", 1_000_000, "security: `N` records (of --value-size) produced and read back over PLAINTEXT, then again over SASL_SSL; the default, the workload's, keeps the phase near 25 s on 2 cores")
	fs.DurationVar(&s.handshakeTime, "security-handshake-time", 10*time.Second, "security: how long the connectors dial and authenticate")
	fs.IntVar(&s.handshakeConns, "security-handshake-conns", 8, "security: connectors dialing in parallel, each one connection at a time")
}

func (s *securityFlags) validate(partitions int) error {
	switch {
	case s.records < partitions:
		return fmt.Errorf("--security-records %d: want at least --partitions", s.records)
	case s.handshakeTime <= 0:
		return fmt.Errorf("--security-handshake-time %s: want a positive duration", s.handshakeTime)
	case s.handshakeConns < 1 || s.handshakeConns > 1000:
		return fmt.Errorf("--security-handshake-conns %d: want 1 to 1000", s.handshakeConns)
	}
	return nil
}

// securityConfig is what the phase runs with.
type securityConfig struct {
	securityFlags
	sedimentBin string
	partitions  int
	maxInflight int
	serveFlags  []string // --sediment-flag
}

// securityLeg is the workload over one listener.
type securityLeg struct {
	prod                   produced
	consume                phaseResult
	produceCPU, consumeCPU time.Duration // the broker's
	produceClient          time.Duration // the bench's CPU over the produce
	consumeClient          time.Duration // and over the consume
}

// securityResult is one run of the phase.
type securityResult struct {
	plain, sasl  securityLeg
	handshakes   handshakeResult
	handshakeCPU time.Duration // the broker's, over the handshakes
	handshakeCl  time.Duration // the bench's
	iterations   int32         // of the user, as DescribeUserScramCredentials lists it
	brokerCPU    time.Duration // over the whole phase
	brokerRSS    uint64
	load         string
}

func (r securityResult) produceRatio() float64 {
	return r.sasl.prod.produce.mibPerSec() / r.plain.prod.produce.mibPerSec()
}

func (r securityResult) consumeRatio() float64 {
	return r.sasl.consume.mibPerSec() / r.plain.consume.mibPerSec()
}

// brokerCPUPerHandshake is the broker's CPU time per handshake.
func (r securityResult) brokerCPUPerHandshake() time.Duration {
	return r.handshakeCPU / time.Duration(max(r.handshakes.handshakes, 1))
}

// startSecurityBroker starts one broker like the sediment target's with a
// PLAINTEXT listener (the harness's address, which its readiness checks use)
// and a SASL_SSL one. It returns the instance, the SASL_SSL address and
// the HTTP address.
func startSecurityBroker(ctx context.Context, cfg securityConfig, dir string, certs *benchCerts) (*instance, string, error) {
	addrs, err := harness.FreeAddrs(5)
	if err != nil {
		return nil, "", err
	}
	plain, saslSSL := addrs[0], addrs[4]
	flags := []string{
		"--num-partitions", strconv.Itoa(cfg.partitions),
		"--listeners", "PLAINTEXT://" + plain + ",SASL_SSL://" + saslSSL,
		"--ssl-cert-file", certs.certFile,
		"--ssl-key-file", certs.keyFile,
		"--ssl-client-auth", "none",
		"--sasl-enabled-mechanisms", scramMechanism,
	}
	b, err := harness.StartBroker(ctx, harness.BrokerConfig{
		Bin:          cfg.sedimentBin,
		NodeID:       1,
		DataDir:      filepath.Join(dir, "data"),
		LogPath:      filepath.Join(dir, "sediment.log"),
		Addr:         plain,
		HTTP:         addrs[1],
		MetaClient:   addrs[2],
		MetaPeer:     addrs[3],
		Flags:        append(flags, cfg.serveFlags...),
		StartTimeout: startLimit,
	})
	if err != nil {
		return nil, "", err
	}
	in := &instance{
		bootstrap: []string{b.Addr},
		procs:     []*harness.Process{b.Process()},
		stopAll:   func() error { return b.Stop(childStopGrace) },
	}
	return in, saslSSL, nil
}

// runSecurity runs one security phase in dir (removed by the caller).
func runSecurity(ctx context.Context, cfg securityConfig, dir string, pool *valuePool, p *progress) (res securityResult, err error) {
	name := securityTargetName
	phase := func(s string) { p.set(name, s) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	phase("making a CA and the broker's certificate")
	certs, err := makeBenchCerts(dir)
	if err != nil {
		return res, fmt.Errorf("%s: certificates: %w", name, err)
	}
	phase("starting the broker (PLAINTEXT and SASL_SSL listeners)")
	in, saslAddr, err := startSecurityBroker(ctx, cfg, dir, certs)
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping the broker")
		if stopErr := in.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
		res.brokerCPU = in.cpuTime()
		res.load = loadAverage()
	}()
	broker := in.procs[0]
	fail := func(err error) error {
		return fmt.Errorf("%s: %w%s%s", name, err, in.exitNote(), broker.LogTail())
	}

	phase(fmt.Sprintf("creating user %s (%s, %d iterations) with AlterUserScramCredentials", securityUser, scramMechanism, securityIterations))
	pass, err := randomPassword()
	if err != nil {
		return res, fail(err)
	}
	if res.iterations, err = createScramUser(ctx, in.bootstrap, securityUser, pass); err != nil {
		return res, fail(err)
	}
	sc := newScramClient(securityUser, pass)
	// The broker learns of the credential through its etcd watch: wait for
	// the first authentication to pass.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var negotiated string
	err = harness.WaitFor(wctx, 100*time.Millisecond, in.procs,
		func() error {
			st, err := scramHandshake(wctx, saslAddr, certs.clientTLS(), sc)
			negotiated = describeTLS(st)
			return err
		},
		func(last error) error { return fmt.Errorf("no SCRAM authentication on SASL_SSL within 10s: %w", last) })
	cancel()
	if err != nil {
		return res, fail(err)
	}

	w := workloadConfig{topic: securityPlainTopic, partitions: cfg.partitions, replication: 1, records: cfg.records, valueSize: pool.size, maxInflight: cfg.maxInflight}
	legs := []struct {
		label string
		topic string
		seeds []string
		opts  []kgo.Opt
		out   *securityLeg
	}{
		{"PLAINTEXT", securityPlainTopic, in.bootstrap, nil, &res.plain},
		{"SASL_SSL", securitySASLTopic, []string{saslAddr}, []kgo.Opt{
			kgo.DialTLSConfig(certs.clientTLS()),
			kgo.SASL(scram.Auth{User: securityUser, Pass: pass}.AsSha512Mechanism()),
		}, &res.sasl},
	}
	for _, leg := range legs {
		w.topic = leg.topic
		legPhase := func(s string) { phase(leg.label + ": " + s) }
		legPhase("creating topic " + w.topic)
		if err := createTopic(ctx, in.bootstrap, w); err != nil {
			return res, fail(fmt.Errorf("creating topic: %w", err))
		}
		cpu0, self0 := broker.CPU(), selfCPU()
		leg.out.prod, err = produceChecked(ctx, leg.seeds, w, pool, legPhase, leg.opts...)
		if err != nil {
			return res, fail(fmt.Errorf("%s: %w", leg.label, err))
		}
		cpu1, self1 := broker.CPU(), selfCPU()
		leg.out.produceCPU, leg.out.produceClient = cpu1-cpu0, self1-self0
		legPhase(fmt.Sprintf("%.1f MiB/s produced; consuming %d records", leg.out.prod.produce.mibPerSec(), w.records))
		leg.out.consume, err = consume(ctx, leg.seeds, w, pool, leg.out.prod.ends, legPhase, leg.opts...)
		if err != nil {
			return res, fail(fmt.Errorf("%s: consume: %w", leg.label, err))
		}
		leg.out.consumeCPU, leg.out.consumeClient = broker.CPU()-cpu1, selfCPU()-self1
	}

	phase(fmt.Sprintf("handshakes: %d connectors for %s", cfg.handshakeConns, cfg.handshakeTime))
	cpu0, self0 := broker.CPU(), selfCPU()
	res.handshakes, err = measureHandshakes(ctx, saslAddr, certs.clientTLS(), sc, cfg.handshakeConns, cfg.handshakeTime)
	if err != nil {
		return res, fail(fmt.Errorf("handshakes: %w", err))
	}
	res.handshakeCPU, res.handshakeCl = broker.CPU()-cpu0, selfCPU()-self0
	res.handshakes.tls = negotiated

	if err := in.alive(); err != nil {
		return res, fail(err)
	}
	if res.brokerRSS, _, err = in.peakRSS(); err != nil {
		return res, fail(err)
	}
	return res, nil
}

// randomPassword is a fresh password for the bench's user.
func randomPassword() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// createScramUser gives user a SCRAM-SHA-512 credential with
// securityIterations iterations through the Kafka API (KIP-554) and
// returns the iteration count the broker then describes.
func createScramUser(ctx context.Context, seeds []string, user, pass string) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return 0, err
	}
	defer closeClient(cl)
	adm := kadm.NewClient(cl)
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: user, Mechanism: kadm.ScramSha512, Iterations: securityIterations, Password: pass,
	}})
	if err == nil {
		err = altered.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("AlterUserScramCredentials: %w", err)
	}
	described, err := adm.DescribeUserSCRAMs(ctx, user)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("DescribeUserScramCredentials: %w", err)
	}
	for _, ci := range described[user].CredInfos {
		if ci.Mechanism == kadm.ScramSha512 {
			return ci.Iterations, nil
		}
	}
	return 0, errors.New("DescribeUserScramCredentials lists no SCRAM-SHA-512 credential for the user just created")
}
