package it

// TestSecurityClients: five Kafka clients against one broker's SASL_SSL and
// SSL listeners (issue 12, "Tests", third item).
//
// The broker has three listeners: PLAINTEXT (setup: topics, the SCRAM user
// through AlterUserScramCredentials), SASL_SSL and SSL, with
// --ssl-client-auth required, which applies to the SSL listener only: as in
// Kafka (KIP-684), a SASL_SSL listener asks for no client certificate (the
// clients here present one anyway; it is not requested).
//
// What each client library offers, as used here:
//   - franz-go: kgo.DialTLSConfig, pkg/sasl/plain and pkg/sasl/scram.
//   - sarama: Net.TLS and Net.SASL; it has no SCRAM client of its own and
//     takes one through SCRAMClientGeneratorFunc: xdgSCRAM below, over
//     github.com/xdg-go/scram (the library kafka-go's SCRAM uses as well).
//   - kafka-go: Transport.TLS/SASL for the Writer, Dialer.TLS/SASLMechanism
//     for the Reader, with its sasl/plain and sasl/scram packages.
//   - confluent-kafka-go and kcat (librdkafka): security.protocol, ssl.*,
//     sasl.* properties.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	kgsasl "github.com/segmentio/kafka-go/sasl"
	kgplain "github.com/segmentio/kafka-go/sasl/plain"
	kgscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xdgscram "github.com/xdg-go/scram"

	"github.com/sedimentio/sediment/it/harness"
	"github.com/sedimentio/sediment/security/securitytest"
)

// The SCRAM user every SASL client logs in as (PLAIN is checked against
// the same stored credentials).
const (
	secUser     = "alice"
	secPassword = "alice-secret"
	secRecords  = 5 // records each client produces and consumes back
)

// certFiles are a PEM certificate and its key on disk.
type certFiles struct{ Cert, Key string }

// secBroker is the broker under test and the certificates made for it.
type secBroker struct {
	*Broker
	SASLAddr, SSLAddr string // the SASL_SSL and SSL listeners (Addr is PLAINTEXT)
	CAFile            string // the CA that signed the broker's and the clients' certificates
	Client            certFiles
	Expired           certFiles // signed by the CA, expired a minute ago
	Untrusted         certFiles // signed by a CA the broker does not trust
}

// secCreds are how a client connects: the listener's protocol, the SASL
// mechanism, user and password (SASL_SSL only) and the client certificate.
type secCreds struct {
	Protocol       string // SASL_SSL, SSL, or PLAINTEXT (a client without TLS on Addr)
	Addr           string // PLAINTEXT only: the TLS listener it tries
	Mechanism      string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "" on SSL
	User, Password string
	Cert           certFiles
}

// addr is the listener creds are for.
func (sb *secBroker) addr(c secCreds) string {
	switch c.Protocol {
	case "SSL":
		return sb.SSLAddr
	case "PLAINTEXT":
		return c.Addr
	}
	return sb.SASLAddr
}

// writePEM writes a certificate and key under dir/name.{pem,key}.
func writePEM(t testing.TB, dir, name string, cert, key []byte) certFiles {
	t.Helper()
	f := certFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(f.Cert, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Key, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// startSecBroker starts a broker with PLAINTEXT, SASL_SSL and SSL
// listeners requiring client certificates, and creates the SCRAM-SHA-256
// and SCRAM-SHA-512 credentials of secUser through the PLAINTEXT listener.
func startSecBroker(t *testing.T) *secBroker {
	t.Helper()
	dir := t.TempDir()
	ca := securitytest.NewCA(t, "sediment-it-ca")
	srv := ca.WriteFiles(t, filepath.Join(dir, "broker"), pkix.Name{CommonName: "localhost", Organization: []string{"sediment-it"}})
	sb := &secBroker{CAFile: srv.CA}
	cert, key := ca.Issue(t, pkix.Name{CommonName: "it-client", Organization: []string{"sediment-it"}})
	sb.Client = writePEM(t, dir, "client", cert, key)
	cert, key = ca.IssueUntil(t, pkix.Name{CommonName: "it-expired"}, time.Now().Add(-time.Minute))
	sb.Expired = writePEM(t, dir, "expired", cert, key)
	cert, key = securitytest.NewCA(t, "rogue-ca").Issue(t, pkix.Name{CommonName: "it-client", Organization: []string{"sediment-it"}})
	sb.Untrusted = writePEM(t, dir, "untrusted", cert, key)

	addrs, err := harness.FreeAddrs(6)
	if err != nil {
		t.Fatal(err)
	}
	sb.SASLAddr, sb.SSLAddr = addrs[4], addrs[5]
	hb, err := harness.NewBroker(harness.BrokerConfig{
		Bin:     sedimentBin(t),
		DataDir: filepath.Join(dir, "data"),
		LogPath: filepath.Join(logDir(t), "broker.log"),
		Addr:    addrs[0], HTTP: addrs[1], MetaClient: addrs[2], MetaPeer: addrs[3],
		Flags: []string{
			// debug: successful authentications are logged at debug level
			// (refusals at info), as Kafka logs them.
			"--log-level", "debug",
			"--listeners", "PLAINTEXT://" + addrs[0] + ",SASL_SSL://" + sb.SASLAddr + ",SSL://" + sb.SSLAddr,
			"--ssl-cert-file", srv.Cert, "--ssl-key-file", srv.Key, "--ssl-ca-file", srv.CA,
			"--ssl-client-auth", "required",
		},
		StartTimeout: readyTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	sb.Broker = bind(t, hb)
	if err := hb.Start(context.Background()); err != nil {
		t.Fatalf("starting broker: %v", err)
	}
	ctx := testContext(t, 30*time.Second)
	altered, err := sb.Admin(t).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: secUser, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: secPassword},
		{User: secUser, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: secPassword},
	})
	if err != nil {
		t.Fatalf("AlterUserScramCredentials: %v", err)
	}
	for _, a := range altered {
		if a.Err != nil {
			t.Fatalf("AlterUserScramCredentials %s: %v (%s)", a.User, a.Err, a.ErrMessage)
		}
	}
	return sb
}

// tlsConfig is a Go client's TLS config for c: the broker's CA and c's
// client certificate; nil for PLAINTEXT.
func (sb *secBroker) tlsConfig(t testing.TB, c secCreds) *tls.Config {
	t.Helper()
	if c.Protocol == "PLAINTEXT" {
		return nil
	}
	caPEM, err := os.ReadFile(sb.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(c.Cert.Cert, c.Cert.Key)
	if err != nil {
		t.Fatal(err)
	}
	// Send the certificate whatever CAs the broker names as acceptable (Go's client
	// would otherwise keep a certificate of another CA to itself).
	send := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return &tls.Config{RootCAs: pool, GetClientCertificate: send, MinVersion: tls.VersionTLS12}
}

// secClient produces secRecords records to partition 0 of topic through
// the listener of c and consumes them back, returning the first error (a
// record read back wrong is one too).
type secClient func(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error

// checkSecValues checks that values are records 0.. of topic's partition 0.
func checkSecValues(topic string, values []string) error {
	if len(values) != secRecords {
		return fmt.Errorf("%s: read %d records, want %d", topic, len(values), secRecords)
	}
	for i, v := range values {
		if want := value(topic, 0, i); v != want {
			return fmt.Errorf("%s: record %d is %q, want %q", topic, i, v, want)
		}
	}
	return nil
}

// --- franz-go ---

func franzMechanism(c secCreds) sasl.Mechanism {
	switch c.Mechanism {
	case "PLAIN":
		return plain.Auth{User: c.User, Pass: c.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism()
	}
	return nil
}

// franzOpts are the options of a franz-go client of c's listener.
func (sb *secBroker) franzOpts(t testing.TB, c secCreds) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(sb.addr(c)), kgo.DialTimeout(5 * time.Second)}
	if cfg := sb.tlsConfig(t, c); cfg != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if m := franzMechanism(c); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func franzSecClient(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error {
	cl, err := kgo.NewClient(append(sb.franzOpts(t, c), manualPartitions,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(250*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range secRecords {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(value(topic, 0, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	var got []string
	for len(got) < secRecords {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consume: %d of %d records: %w", len(got), secRecords, err)
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return checkSecValues(topic, got)
}

// --- sarama ---

// xdgSCRAM is sarama's SCRAMClient over github.com/xdg-go/scram.
type xdgSCRAM struct {
	hash xdgscram.HashGeneratorFcn
	conv *xdgscram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, password, authzID string) error {
	cl, err := x.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	x.conv = cl.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

func (sb *secBroker) saramaConfig(t testing.TB, c secCreds) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "it-sarama-security"
	cfg.Version = sarama.V2_8_0_0
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.TLS.Config = sb.tlsConfig(t, c)
	cfg.Net.TLS.Enable = cfg.Net.TLS.Config != nil
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	if c.Mechanism == "" {
		return cfg
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Version = sarama.SASLHandshakeV1
	cfg.Net.SASL.User, cfg.Net.SASL.Password = c.User, c.Password
	switch c.Mechanism {
	case "PLAIN":
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case "SCRAM-SHA-256":
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: xdgscram.SHA256} }
	case "SCRAM-SHA-512":
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: xdgscram.SHA512} }
	}
	return cfg
}

func saramaSecClient(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error {
	cfg := sb.saramaConfig(t, c)
	prod, err := sarama.NewSyncProducer([]string{sb.addr(c)}, cfg)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer prod.Close()
	for i := range secRecords {
		if _, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(value(topic, 0, i))}); err != nil {
			return fmt.Errorf("produce: %w", err)
		} else if off != int64(i) {
			return fmt.Errorf("produce: record %d acknowledged at offset %d", i, off)
		}
	}
	cons, err := sarama.NewConsumer([]string{sb.addr(c)}, cfg)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer pc.Close()
	var got []string
	for len(got) < secRecords {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case err := <-pc.Errors():
			return fmt.Errorf("consume: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("consume: %d of %d records: %w", len(got), secRecords, ctx.Err())
		}
	}
	return checkSecValues(topic, got)
}

// --- kafka-go ---

func kafkaGoMechanism(c secCreds) (kgsasl.Mechanism, error) {
	switch c.Mechanism {
	case "PLAIN":
		return kgplain.Mechanism{Username: c.User, Password: c.Password}, nil
	case "SCRAM-SHA-256":
		return kgscram.Mechanism(kgscram.SHA256, c.User, c.Password)
	case "SCRAM-SHA-512":
		return kgscram.Mechanism(kgscram.SHA512, c.User, c.Password)
	}
	return nil, nil
}

func kafkaGoSecClient(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error {
	mech, err := kafkaGoMechanism(c)
	if err != nil {
		return err
	}
	tlsCfg := sb.tlsConfig(t, c)
	tr := &kafka.Transport{TLS: tlsCfg, SASL: mech, MetadataTTL: time.Second, DialTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kafka.TCP(sb.addr(c)), Transport: tr, Topic: topic,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, MaxAttempts: 2,
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := range secRecords {
		msgs = append(msgs, kafka.Message{Value: []byte(value(topic, 0, i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{sb.addr(c)}, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 1 << 20,
		MaxWait: 250 * time.Millisecond,
		Dialer:  &kafka.Dialer{Timeout: 5 * time.Second, TLS: tlsCfg, SASLMechanism: mech},
	})
	defer r.Close()
	var got []string
	for len(got) < secRecords {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("consume: %d of %d records: %w", len(got), secRecords, err)
		}
		got = append(got, string(m.Value))
	}
	return checkSecValues(topic, got)
}

// --- kcat ---

// librdkafkaProps are the librdkafka properties for c.
func (sb *secBroker) librdkafkaProps(c secCreds) map[string]string {
	p := map[string]string{"security.protocol": c.Protocol}
	if c.Protocol == "PLAINTEXT" {
		return p
	}
	p["ssl.ca.location"], p["ssl.certificate.location"], p["ssl.key.location"] = sb.CAFile, c.Cert.Cert, c.Cert.Key
	if c.Mechanism != "" {
		p["sasl.mechanisms"], p["sasl.username"], p["sasl.password"] = c.Mechanism, c.User, c.Password
	}
	return p
}

// runKcat runs kcat and returns its stdout, or an error with its stderr.
func runKcat(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil && strings.Contains(stderr.String(), "% ERROR") {
		err = errors.New("reported errors")
	}
	if err != nil {
		return "", fmt.Errorf("kcat %s: %w\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, tail(stderr.String(), 20), tail(stdout.String(), 5))
	}
	return stdout.String(), nil
}

// kcatArgs are kcat's arguments for c's listener.
func (sb *secBroker) kcatArgs(c secCreds) []string {
	args := []string{"-b", sb.addr(c)}
	props := sb.librdkafkaProps(c)
	for _, k := range slices.Sorted(maps.Keys(props)) {
		args = append(args, "-X", k+"="+props[k])
	}
	return args
}

func kcatSecClient(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error {
	requireCommand(t, "kcat")
	args := sb.kcatArgs(c)
	var in strings.Builder
	for i := range secRecords {
		fmt.Fprintln(&in, value(topic, 0, i))
	}
	if _, err := runKcat(ctx, in.String(), append(args, "-P", "-t", topic, "-p", "0", "-X", "acks=all")...); err != nil {
		return err
	}
	out, err := runKcat(ctx, "", append(args, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-c", strconv.Itoa(secRecords))...)
	if err != nil {
		return err
	}
	return checkSecValues(topic, strings.Split(strings.TrimRight(out, "\n"), "\n"))
}

// --- probes: one metadata request, for the failures ---

// secProbe asks for metadata through c's listener with one client library
// and returns the error the library reports (nil if it got metadata).
type secProbe func(t *testing.T, ctx context.Context, sb *secBroker, c secCreds) error

func franzProbe(t *testing.T, ctx context.Context, sb *secBroker, c secCreds) error {
	cl, err := kgo.NewClient(sb.franzOpts(t, c)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).ListTopics(ctx)
	return err
}

func saramaProbe(t *testing.T, ctx context.Context, sb *secBroker, c secCreds) error {
	cfg := sb.saramaConfig(t, c)
	cfg.Metadata.Retry.Max = 0
	cl, err := sarama.NewClient([]string{sb.addr(c)}, cfg)
	if err != nil {
		return err
	}
	return cl.Close()
}

func kafkaGoProbe(t *testing.T, ctx context.Context, sb *secBroker, c secCreds) error {
	mech, err := kafkaGoMechanism(c)
	if err != nil {
		return err
	}
	tr := &kafka.Transport{TLS: sb.tlsConfig(t, c), SASL: mech, DialTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	_, err = (&kafka.Client{Addr: kafka.TCP(sb.addr(c)), Transport: tr}).Metadata(ctx, &kafka.MetadataRequest{})
	return err
}

// kcatProbe runs kcat -L and returns its first error line, stopping kcat
// there: librdkafka would retry until the metadata timeout.
func kcatProbe(t *testing.T, ctx context.Context, sb *secBroker, c secCreds) error {
	requireCommand(t, "kcat")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := append(sb.kcatArgs(c), "-L", "-m", "10")
	cmd := exec.CommandContext(ctx, "kcat", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var failure error
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		// librdkafka's log lines are "%<level>|<time>|<facility>|...".
		if line := sc.Text(); strings.HasPrefix(line, "% ERROR") || strings.Contains(line, "|FAIL|") {
			failure = fmt.Errorf("kcat %s: %s", strings.Join(args, " "), line)
			cancel()
			break
		}
	}
	if err := cmd.Wait(); failure == nil && err != nil {
		return fmt.Errorf("kcat %s: %w", strings.Join(args, " "), err)
	}
	return failure
}

// --- the tests ---

// secClients are the client libraries under test.
var secClients = []struct {
	name  string
	run   secClient
	probe secProbe
}{
	{"franz-go", franzSecClient, franzProbe},
	{"sarama", saramaSecClient, saramaProbe},
	{"kafka-go", kafkaGoSecClient, kafkaGoProbe},
	{"confluent", confluentSecClient, confluentProbe},
	{"kcat", kcatSecClient, kcatProbe},
}

// secMechanisms are the SASL mechanisms; "" is a client certificate on SSL.
var secMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN", ""}

// numbersRE are the numbers in an error: durations, times and ports that
// differ between two attempts.
var numbersRE = regexp.MustCompile(`[0-9]+`)

// saslError is what a client's error says from the broker's SASL failure
// on to the end of that line, with its numbers blanked.
func saslError(err error) string {
	for _, line := range strings.Split(err.Error(), "\n") {
		if loc := saslFailedRE.FindStringIndex(line); loc != nil {
			return numbersRE.ReplaceAllString(line[loc[0]:], "N")
		}
	}
	return err.Error()
}

// TestSecurityClients: every client authenticates with SCRAM-SHA-256,
// SCRAM-SHA-512 and PLAIN over SASL_SSL and with a client certificate over
// SSL, producing and consuming records; wrong passwords, unknown users,
// expired and untrusted certificates and a plaintext client on a TLS port
// fail with the right error and leave the broker serving.
func TestSecurityClients(t *testing.T) {
	t.Parallel()
	sb := startSecBroker(t)
	adm := sb.Admin(t)
	good := func(mech string) secCreds {
		if mech == "" {
			return secCreds{Protocol: "SSL", Cert: sb.Client}
		}
		return secCreds{Protocol: "SASL_SSL", Mechanism: mech, User: secUser, Password: secPassword, Cert: sb.Client}
	}
	// healthy checks that the broker runs and a good client still
	// produces and consumes.
	healthy := func(t *testing.T, topic string) {
		t.Helper()
		createTopic(t, adm, topic, 1, nil)
		if err := franzSecClient(t, testContext(t, 30*time.Second), sb, good("SCRAM-SHA-512"), topic); err != nil {
			t.Fatalf("a good client after the failures: %v", err)
		}
		if !sb.Running() {
			t.Fatal("the broker exited")
		}
	}

	t.Run("group", func(t *testing.T) {
		for _, cl := range secClients {
			for _, mech := range secMechanisms {
				name := cl.name + "/" + cmp.Or(mech, "SSL")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					topic := "sec-" + strings.ReplaceAll(name, "/", "-")
					createTopic(t, adm, topic, 1, nil)
					c := good(mech)
					counted := sb.authCounted(t, c.Protocol, cmp.Or(mech, "TLS"), "success")
					if err := cl.run(t, testContext(t, 30*time.Second), sb, c, topic); err != nil {
						t.Fatal(err)
					}
					counted()
					sb.requireLog(t, authenticatedLog(mech))
				})
			}
		}
		t.Run("sediment-user", func(t *testing.T) {
			t.Parallel()
			secCLIUser(t, sb)
		})
		for _, cl := range secClients {
			t.Run(cl.name+"/failures", func(t *testing.T) {
				t.Parallel()
				secFailures(t, sb, cl.probe, good)
				healthy(t, "sec-after-"+cl.name)
			})
		}
	})
	healthy(t, "sec-after-all")
	// No password, right or wrong ("not-" + secPassword), reached the
	// broker's log, at debug level, through any of the logins above.
	if logs := sb.Logs(); strings.Contains(logs, secPassword) {
		t.Errorf("the broker's log holds the password %q", secPassword)
	}
}

// requireLog requires a line of the broker's log to match re (the broker
// is shared: the line may be another subtest's like it).
func (sb *secBroker) requireLog(t *testing.T, re string) {
	t.Helper()
	if _, ok := sb.WaitLog(regexp.MustCompile(re), 5*time.Second); !ok {
		t.Errorf("the broker logged no line matching %s", re)
	}
}

// authCounted returns a check that sediment_broker_authentications_total
// of listener, mechanism and result has grown since authCounted was called
// (other subtests may add to it too, never take away).
func (sb *secBroker) authCounted(t *testing.T, listener, mechanism, result string) func() {
	t.Helper()
	series := fmt.Sprintf(`sediment_broker_authentications_total{listener=%q,mechanism=%q,result=%q}`, listener, mechanism, result)
	value := func() float64 {
		t.Helper()
		v, _, err := metricValue(sb.Broker, series)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := value()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for value() <= before {
			if time.Now().After(deadline) {
				t.Errorf("%s stayed at %v", series, before)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// authenticatedLog matches the broker's line for a connection that logged
// in with mech ("": a client certificate on SSL).
func authenticatedLog(mech string) string {
	if mech == "" {
		return `msg="connection authenticated".* principal="User:CN=it-client,O=sediment-it" listener=SSL`
	}
	return `msg="connection authenticated".* principal=User:alice listener=SASL_SSL mechanism=` + mech
}

// secFailures probes the broker with bad credentials through one client
// library, each attempt in a parallel subtest, and requires the right error.
// It returns when they are done.
func secFailures(t *testing.T, sb *secBroker, probe secProbe, good func(string) secCreds) {
	t.Run("attempts", func(t *testing.T) { secAttempts(t, sb, probe, good) })
}

func secAttempts(t *testing.T, sb *secBroker, probe secProbe, good func(string) secCreds) {
	try := func(t *testing.T, c secCreds) error {
		t.Helper()
		err := probe(t, testContext(t, 20*time.Second), sb, c)
		t.Logf("%v", err)
		return err
	}
	t.Run("good", func(t *testing.T) {
		t.Parallel()
		if err := try(t, good("SCRAM-SHA-512")); err != nil {
			t.Fatalf("with good credentials: %v", err)
		}
	})
	// SASL: SASL_AUTHENTICATION_FAILED, the same for an unknown user as
	// for a wrong password.
	for _, mech := range secMechanisms[:3] {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			wrong, unknown := good(mech), good(mech)
			wrong.Password = "not-" + secPassword
			unknown.User = "mallory"
			counted := sb.authCounted(t, "SASL_SSL", mech, "failure")
			werr, uerr := try(t, wrong), try(t, unknown)
			counted()
			for _, err := range []error{werr, uerr} {
				if err == nil || !saslFailedRE.MatchString(err.Error()) || !strings.Contains(err.Error(), "invalid credentials with SASL mechanism "+mech) {
					t.Fatalf("got %v, want an error matching %s with the broker's message", err, saslFailedRE)
				}
			}
			if w, u := saslError(werr), saslError(uerr); w != u {
				t.Errorf("a wrong password gives %q but an unknown user %q: the error tells them apart", w, u)
			}
			sb.requireLog(t, `msg="SASL authentication failed".*invalid credentials with SASL mechanism `+mech)
		})
	}
	// TLS: the broker's alert for the client certificate's fault.
	for _, tc := range []struct {
		name string
		cert certFiles
		want *regexp.Regexp
		log  string // the broker's reason
	}{
		{"expired-cert", sb.Expired, expiredCertRE, "certificate has expired"},
		{"untrusted-cert", sb.Untrusted, untrustedCertRE, "certificate signed by unknown authority|client didn't provide a certificate"},
	} {
		for _, mech := range []string{""} { // SSL: SASL_SSL asks for no certificate
			c := good(mech)
			c.Cert = tc.cert
			t.Run(tc.name+"/"+c.Protocol, func(t *testing.T) {
				t.Parallel()
				counted := sb.authCounted(t, c.Protocol, "TLS", "failure")
				if err := try(t, c); err == nil || !tc.want.MatchString(err.Error()) {
					t.Fatalf("got %v, want an error matching %s", err, tc.want)
				}
				counted()
				sb.requireLog(t, `msg="closing connection".*TLS handshake: .*(`+tc.log+`)`)
			})
		}
	}
	// A client without TLS on each TLS listener: its connection fails.
	for name, addr := range map[string]string{"SSL": sb.SSLAddr, "SASL_SSL": sb.SASLAddr} {
		t.Run("plaintext-on-tls-port/"+name, func(t *testing.T) {
			t.Parallel()
			counted := sb.authCounted(t, name, "TLS", "failure")
			if err := try(t, secCreds{Protocol: "PLAINTEXT", Addr: addr}); err == nil {
				t.Fatalf("a plaintext client on TLS listener %s got metadata", addr)
			}
			counted()
			sb.requireLog(t, `msg="closing connection".*TLS handshake: tls: first record does not look like a TLS handshake`)
		})
	}
}

// What the clients say, Go's crypto/tls or librdkafka's OpenSSL. The
// Go clients here send their certificate whatever CAs the broker names
// (tlsConfig), as librdkafka 2.0.2 (kcat) does, and get the broker's
// unknown_ca alert; librdkafka 2.11 (confluent-kafka-go) keeps a
// certificate of a CA the broker does not name to itself and gets
// certificate_required.
var (
	saslFailedRE    = regexp.MustCompile(`(?i)authentication failed`)
	expiredCertRE   = regexp.MustCompile(`expired certificate|certificate expired`)
	untrustedCertRE = regexp.MustCompile(`unknown certificate authority|unknown ca|alert certificate required`)
)

// secCLIUser: a user that `sediment user set --meta-endpoints` writes into
// etcd logs in (kcat, SCRAM-SHA-512) once the broker's watch has it, and is
// refused once `sediment user delete` removed it.
func secCLIUser(t *testing.T, sb *secBroker) {
	pwFile := filepath.Join(t.TempDir(), "bob.pw")
	if err := os.WriteFile(pwFile, []byte("bob-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	user := func(args ...string) {
		t.Helper()
		args = append([]string{"user"}, append(args, "--mechanism", "SCRAM-SHA-512", "--meta-endpoints", "http://"+sb.MetaClient)...)
		out, err := exec.CommandContext(testContext(t, 30*time.Second), sedimentBin(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sediment %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	bob := secCreds{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-512", User: "bob", Password: "bob-secret", Cert: sb.Client}
	// waitProbe probes until the answer is wanted (nil or not), returning
	// the last error.
	waitProbe := func(wantOK bool) error {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := kcatProbe(t, testContext(t, 20*time.Second), sb, bob)
			if (err == nil) == wantOK || time.Now().After(deadline) {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	user("set", "bob", "--password-file", pwFile)
	if err := waitProbe(true); err != nil {
		t.Fatalf("bob, set in etcd by sediment user set, cannot log in: %v", err)
	}
	topic := "sec-sediment-user"
	createTopic(t, sb.Admin(t), topic, 1, nil)
	if err := kcatSecClient(t, testContext(t, 30*time.Second), sb, bob, topic); err != nil {
		t.Fatal(err)
	}
	user("delete", "bob")
	if err := waitProbe(false); err == nil || !saslFailedRE.MatchString(err.Error()) {
		t.Fatalf("bob, deleted by sediment user delete: got %v, want an error matching %s", err, saslFailedRE)
	}
}
