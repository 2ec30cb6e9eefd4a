package it

// TestSecurityClients: five Kafka clients against one broker's SASL_SSL and
// SSL listeners (issue 12, "Tests", third item).
//
// The broker has three listeners: PLAINTEXT (setup: topics, the SCRAM user
// through AlterUserScramCredentials), SASL_SSL and SSL, with
// --ssl-client-auth required. Sediment has one TLS configuration for every
// listener (README, Security), so the SASL_SSL listener asks for a client
// certificate too and every client here presents one; Kafka (KIP-684)
// ignores a broker-wide ssl.client.auth on SASL_SSL listeners.
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
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	"github.com/twmb/franz-go/pkg/kerr"
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
	Protocol       string // SASL_SSL or SSL
	Mechanism      string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "" on SSL
	User, Password string
	Cert           certFiles
}

// addr is the listener creds are for.
func (sb *secBroker) addr(c secCreds) string {
	if c.Protocol == "SSL" {
		return sb.SSLAddr
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
			// debug: the broker logs a failed TLS handshake at debug level.
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
// client certificate.
func (sb *secBroker) tlsConfig(t testing.TB, c secCreds) *tls.Config {
	t.Helper()
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
	// Sent whatever CAs the broker names as acceptable (Go's client
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
	opts := []kgo.Opt{kgo.SeedBrokers(sb.addr(c)), kgo.DialTimeout(5 * time.Second), kgo.DialTLSConfig(sb.tlsConfig(t, c))}
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
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = sb.tlsConfig(t, c)
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
	p := map[string]string{
		"security.protocol":        c.Protocol,
		"ssl.ca.location":          sb.CAFile,
		"ssl.certificate.location": c.Cert.Cert,
		"ssl.key.location":         c.Cert.Key,
	}
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

func kcatSecClient(t *testing.T, ctx context.Context, sb *secBroker, c secCreds, topic string) error {
	requireCommand(t, "kcat")
	args := []string{"-b", sb.addr(c)}
	for k, v := range sb.librdkafkaProps(c) {
		args = append(args, "-X", k+"="+v)
	}
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

// --- the tests ---

// secClients are the client libraries under test.
var secClients = []struct {
	name string
	run  secClient
}{
	{"franz-go", franzSecClient},
	{"sarama", saramaSecClient},
	{"kafka-go", kafkaGoSecClient},
	{"confluent", confluentSecClient},
	{"kcat", kcatSecClient},
}

// tlsHandshakeLogRE matches the broker's line for a TLS handshake it refused.
var tlsHandshakeLogRE = regexp.MustCompile(`msg="closing connection".*TLS handshake`)

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
		c := secCreds{Protocol: "SASL_SSL", Mechanism: mech, User: secUser, Password: secPassword, Cert: sb.Client}
		if mech == "" {
			c = secCreds{Protocol: "SSL", Cert: sb.Client}
		}
		return c
	}
	// healthy checks that a good client still produces and consumes.
	healthy := func(t *testing.T, topic string) {
		t.Helper()
		createTopic(t, adm, topic, 1, nil)
		if err := franzSecClient(t, testContext(t, 30*time.Second), sb, good("SCRAM-SHA-512"), topic); err != nil {
			t.Fatalf("a good client after the failure: %v", err)
		}
		if !sb.Running() {
			t.Fatal("the broker exited")
		}
	}

	t.Run("group", func(t *testing.T) {
		for _, cl := range secClients {
			for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN", ""} {
				name := cl.name + "/" + cmp.Or(mech, "SSL")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					topic := "sec-" + strings.ReplaceAll(name, "/", "-")
					createTopic(t, adm, topic, 1, nil)
					if err := cl.run(t, testContext(t, 30*time.Second), sb, good(mech), topic); err != nil {
						t.Fatal(err)
					}
				})
			}
		}

		// SASL failures: the broker's SASL_AUTHENTICATION_FAILED, with one
		// message whether the password is wrong or the user unknown.
		t.Run("franz-go/sasl-failures", func(t *testing.T) {
			t.Parallel()
			msgs := map[string]string{}
			for _, tc := range []struct{ name, user, password string }{
				{"wrong-password", secUser, "not-" + secPassword},
				{"unknown-user", "mallory", secPassword},
			} {
				for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"} {
					c := good(mech)
					c.User, c.Password = tc.user, tc.password
					cl, err := kgo.NewClient(sb.franzOpts(t, c)...)
					if err != nil {
						t.Fatal(err)
					}
					_, err = kadm.NewClient(cl).ListTopics(testContext(t, 20*time.Second))
					cl.Close()
					if !isKErr(err, kerr.SaslAuthenticationFailed) {
						t.Fatalf("%s %s: got %v, want SASL_AUTHENTICATION_FAILED", tc.name, mech, err)
					}
					t.Logf("%s %s: %v", tc.name, mech, err)
					msgs[tc.name+"/"+mech] = err.Error()
				}
			}
			for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"} {
				if w, u := msgs["wrong-password/"+mech], msgs["unknown-user/"+mech]; w != u {
					t.Errorf("%s: a wrong password gives %q but an unknown user %q: the error tells them apart", mech, w, u)
				}
			}
			healthy(t, "sec-after-sasl-failures")
		})

		// TLS failures: the broker refuses the handshake with the TLS
		// alert for the certificate's fault.
		for _, tc := range []struct {
			name, proto string
			cert        certFiles
			want        string
		}{
			{"expired-cert/SSL", "SSL", sb.Expired, "expired certificate"},
			{"expired-cert/SASL_SSL", "SASL_SSL", sb.Expired, "expired certificate"},
			{"untrusted-cert/SSL", "SSL", sb.Untrusted, "unknown certificate authority"},
			{"untrusted-cert/SASL_SSL", "SASL_SSL", sb.Untrusted, "unknown certificate authority"},
		} {
			t.Run("franz-go/"+tc.name, func(t *testing.T) {
				t.Parallel()
				c := good("SCRAM-SHA-256")
				if tc.proto == "SSL" {
					c = good("")
				}
				c.Cert = tc.cert
				cl, err := kgo.NewClient(sb.franzOpts(t, c)...)
				if err != nil {
					t.Fatal(err)
				}
				_, err = kadm.NewClient(cl).ListTopics(testContext(t, 20*time.Second))
				cl.Close()
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q", err, tc.want)
				}
				t.Logf("%v", err)
				healthy(t, "sec-after-"+strings.ReplaceAll(strings.ToLower(tc.name), "/", "-"))
			})
		}

		// A plaintext client on each TLS port: its connection fails, the
		// broker logs the refused handshake and goes on.
		t.Run("franz-go/plaintext-on-tls-port", func(t *testing.T) {
			t.Parallel()
			for _, addr := range []string{sb.SASLAddr, sb.SSLAddr} {
				cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				_, err = kadm.NewClient(cl).ListTopics(testContext(t, 10*time.Second))
				cl.Close()
				if err == nil {
					t.Fatalf("a plaintext client on TLS port %s listed topics", addr)
				}
				t.Logf("plaintext client on %s: %v", addr, err)
			}
			if line, ok := sb.WaitLog(tlsHandshakeLogRE, 10*time.Second); !ok {
				t.Errorf("the broker logged no refused TLS handshake (want a line matching %s)", tlsHandshakeLogRE)
			} else {
				t.Logf("broker: %s", line)
			}
			healthy(t, "sec-after-plaintext")
		})
	})
	healthy(t, "sec-after-all")
}
