package main

import (
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sedimentio/sediment/it/harness"
	"github.com/sedimentio/sediment/security/securitytest"
)

// TestUserCommand: `sediment user set` straight into etcd and through the
// Kafka port both give credentials a SASL listener accepts; list shows
// them; delete takes one away.
func TestUserCommand(t *testing.T) {
	t.Parallel()
	addrs, err := harness.FreeAddrs(6)
	if err != nil {
		t.Fatal(err)
	}
	plain, saslAddr, sslAddr := addrs[0], addrs[1], addrs[5]
	ca := securitytest.NewCA(t, "ca")
	files := ca.WriteFiles(t, filepath.Join(t.TempDir(), "tls"), pkix.Name{CommonName: "broker"})
	b := startBrokerConfig(t, harness.BrokerConfig{Addr: plain, HTTP: addrs[2], MetaClient: addrs[3], MetaPeer: addrs[4],
		Flags: []string{"--listeners", "PLAINTEXT://" + plain + ",SASL_PLAINTEXT://" + saslAddr + ",SSL://" + sslAddr,
			"--ssl-cert-file", files.Cert, "--ssl-key-file", files.Key, "--ssl-ca-file", files.CA, "--ssl-client-auth", "required"}})
	etcd := "http://" + b.MetaClient
	dir := t.TempDir()
	pw := func(name, password string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	login := func(user, password string, sha512 bool) error {
		a := scram.Auth{User: user, Pass: password}
		m := a.AsSha256Mechanism()
		if sha512 {
			m = a.AsSha512Mechanism()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(saslAddr), kgo.SASL(m))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		return err
	}
	eventually := func(what string, f func() error) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err = f(); err == nil {
				return
			}
		}
		t.Fatalf("%s: %v", what, err)
	}

	if _, stderr, code := cli(t, "user", "set", "alice", "--mechanism", "SCRAM-SHA-256", "--password-file", pw("alice", "alice-pw"), "--meta-endpoints", etcd); code != 0 {
		t.Fatalf("user set via etcd: exit %d: %s", code, stderr)
	}
	eventually("alice logs in", func() error { return login("alice", "alice-pw", false) })
	if err := login("alice", "wrong", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("alice with a wrong password: %v", err)
	}

	if _, stderr, code := cli(t, "user", "set", "bob", "--password-file", pw("bob", "bob-pw"), "--iterations", "8192", "--bootstrap-server", plain); code != 0 {
		t.Fatalf("user set via AlterUserScramCredentials: exit %d: %s", code, stderr)
	}
	eventually("bob logs in", func() error { return login("bob", "bob-pw", true) })

	type listed struct {
		Users []userCredentialJSON `json:"users"`
	}
	for _, conn := range [][]string{{"--bootstrap-server", plain}, {"--meta-endpoints", etcd}} {
		stdout, stderr, code := cli(t, append([]string{"user", "list", "--output", "json"}, conn...)...)
		var got listed
		if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
			t.Fatalf("user list %v: exit %d: %s %s", conn, code, stdout, stderr)
		}
		want := []userCredentialJSON{{"alice", "SCRAM-SHA-256", 4096}, {"bob", "SCRAM-SHA-512", 8192}}
		if len(got.Users) != 2 || got.Users[0] != want[0] || got.Users[1] != want[1] {
			t.Fatalf("user list %v: %+v, want %+v", conn, got.Users, want)
		}
	}

	// The admin commands over SASL and TLS.
	if stdout, stderr, code := cli(t, "user", "list", "--bootstrap-server", saslAddr, "--security-protocol", "SASL_PLAINTEXT",
		"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "alice", "--sasl-password-file", pw("alice", "alice-pw")); code != 0 || !strings.Contains(stdout, "bob") {
		t.Fatalf("user list over SASL_PLAINTEXT: exit %d: %s %s", code, stdout, stderr)
	}
	if _, stderr, code := cli(t, "user", "list", "--bootstrap-server", saslAddr, "--security-protocol", "SASL_PLAINTEXT",
		"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "alice", "--sasl-password-file", pw("wrong", "nope"), "--timeout", "5s"); code != 1 || !strings.Contains(stderr, "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("user list with a wrong password: exit %d: %s", code, stderr)
	}
	client := ca.WriteFiles(t, filepath.Join(t.TempDir(), "client"), pkix.Name{CommonName: "admin"})
	if stdout, stderr, code := cli(t, "cluster", "describe", "--bootstrap-server", sslAddr, "--security-protocol", "SSL",
		"--client-ssl-ca-file", client.CA, "--client-ssl-cert-file", client.Cert, "--client-ssl-key-file", client.Key); code != 0 || !strings.Contains(stdout, sslAddr[strings.LastIndex(sslAddr, ":")+1:]) {
		t.Fatalf("cluster describe over SSL: exit %d: %s %s", code, stdout, stderr)
	}

	// The same through Kafka client properties (--command-config).
	saslProps := pw("sasl.properties", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"+
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-pw";`)
	if stdout, stderr, code := cli(t, "user", "list", "--bootstrap-server", saslAddr, "--command-config", saslProps); code != 0 || !strings.Contains(stdout, "bob") {
		t.Fatalf("user list with --command-config: exit %d: %s %s", code, stdout, stderr)
	}
	keystore := make([]byte, 0, 4096)
	for _, f := range []string{client.Cert, client.Key} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		keystore = append(keystore, data...)
	}
	ks := filepath.Join(dir, "keystore.pem")
	if err := os.WriteFile(ks, keystore, 0o600); err != nil {
		t.Fatal(err)
	}
	sslProps := pw("ssl.properties", "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location="+client.CA+
		"\nssl.keystore.type=PEM\nssl.keystore.location="+ks)
	if _, stderr, code := cli(t, "cluster", "describe", "--bootstrap-server", sslAddr, "--command-config", sslProps); code != 0 {
		t.Fatalf("cluster describe with an SSL --command-config: exit %d: %s", code, stderr)
	}
	if _, stderr, code := cli(t, "user", "list", "--command-config", pw("jks.properties", "ssl.truststore.type=JKS\n")); code != 2 || !strings.Contains(stderr, "only PEM") {
		t.Fatalf("a JKS truststore: exit %d: %s", code, stderr)
	}

	if _, stderr, code := cli(t, "user", "delete", "bob", "--bootstrap-server", plain); code != 0 {
		t.Fatalf("user delete: exit %d: %s", code, stderr)
	}
	eventually("bob is refused", func() error {
		if err := login("bob", "bob-pw", true); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			return errors.New("bob still logs in")
		}
		return nil
	})
	if _, stderr, code := cli(t, "user", "delete", "bob", "--bootstrap-server", plain); code != 1 || !strings.Contains(stderr, "RESOURCE_NOT_FOUND") {
		t.Fatalf("deleting again: exit %d: %s", code, stderr)
	}
	if _, stderr, code := cli(t, "user", "set", "carol", "--mechanism", "PLAIN", "--password-file", pw("c", "x"), "--bootstrap-server", plain); code != 2 || !strings.Contains(stderr, "--mechanism") {
		t.Fatalf("PLAIN credential: exit %d: %s", code, stderr)
	}
	if _, stderr, code := cli(t, "user", "set", "carol", "--password-file", filepath.Join(dir, "missing"), "--bootstrap-server", plain); code != 1 || !strings.Contains(stderr, "--password-file") {
		t.Fatalf("missing password file: exit %d: %s", code, stderr)
	}
}
