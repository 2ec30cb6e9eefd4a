package security

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sedimentio/sediment/security/securitytest"
)

// testCA is a certificate authority made in the test.
type testCA = securitytest.CA

func newTestCA(t *testing.T, cn string) *testCA { return securitytest.NewCA(t, cn) }

func writeFile(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// writeTLSFiles writes a certificate for cn signed by ca, its key and the CA certificate to a
// new directory, all with the modification time it returns (a minute ago).
func writeTLSFiles(t *testing.T, ca *testCA, cn string) (certFile, keyFile, caFile string, mod time.Time) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, caFile = filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key"), filepath.Join(dir, "ca.pem")
	mod = time.Now().Add(-time.Minute)
	certPEM, keyPEM := ca.IssueUntil(t, pkix.Name{CommonName: cn}, time.Now().Add(time.Hour))
	writeFile(t, certFile, certPEM, mod)
	writeFile(t, keyFile, keyPEM, mod)
	writeFile(t, caFile, ca.PEM, mod)
	return certFile, keyFile, caFile, mod
}

// tlsServer accepts connections with cfg and reports each handshake's principal (or error).
func tlsServer(t *testing.T, cfg *tls.Config, mapper *PrincipalMapper) (addr string, results <-chan string) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				ch <- "error: " + err.Error()
			} else if p, err := CertificatePrincipal(tc.ConnectionState().PeerCertificates, mapper); err != nil {
				ch <- "error: " + err.Error()
			} else {
				ch <- p.String()
			}
			tc.Close()
		}
	}()
	return l.Addr().String(), ch
}

func TestTLSFiles(t *testing.T) {
	ca := newTestCA(t, "test CA")
	other := newTestCA(t, "untrusted CA")
	certFile, keyFile, caFile, t0 := writeTLSFiles(t, ca, "broker-1")

	cfg := DefaultTLSConfig()
	cfg.CertFile, cfg.KeyFile, cfg.CAFile = certFile, keyFile, caFile
	cfg.ClientAuth = ClientAuthRequested
	cfg.ReloadInterval = 0
	files, err := NewTLSFiles(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := ParsePrincipalMappingRules("RULE:^CN=([^,]*),OU=ServiceUsers.*$/$1/L,DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	addr, results := tlsServer(t, files.ServerConfig(), mapper)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)

	dial := func(clientCert *tls.Certificate, maxVersion uint16) (serverCN string, err error) {
		cc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: maxVersion}
		if clientCert != nil {
			// Sent even when the server's CA list does not name its issuer.
			cc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil }
		}
		c, err := tls.Dial("tcp", addr, cc)
		if err != nil {
			return "", err
		}
		defer c.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "EOF") {
			return "", err
		}
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}
	keyPair := func(ca *testCA, subject pkix.Name, notAfter time.Time) *tls.Certificate {
		c, k := ca.IssueUntil(t, subject, notAfter)
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &kp
	}

	// requested: no certificate is User:ANONYMOUS; a trusted one is mapped.
	if cn, err := dial(nil, 0); err != nil || cn != "broker-1" {
		t.Fatalf("dial without a client certificate: %q, %v", cn, err)
	}
	if got := <-results; got != "User:ANONYMOUS" {
		t.Fatalf("principal %q", got)
	}
	svc := keyPair(ca, pkix.Name{CommonName: "Kafka-Producer", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}}, time.Now().Add(time.Hour))
	if _, err := dial(svc, 0); err != nil {
		t.Fatal(err)
	}
	if got := <-results; got != "User:kafka-producer" {
		t.Fatalf("principal %q", got)
	}
	person := keyPair(ca, pkix.Name{CommonName: "Alice", Organization: []string{"Acme, Inc."}, Country: []string{"FR"}}, time.Now().Add(time.Hour))
	if _, err := dial(person, tls.VersionTLS12); err != nil {
		t.Fatal(err)
	}
	if got := <-results; got != `User:CN=Alice,O=Acme\, Inc.,C=FR` {
		t.Fatalf("principal %q", got)
	}
	// Untrusted and expired client certificates and TLS 1.1 are refused.
	for name, c := range map[string]*tls.Certificate{
		"untrusted": keyPair(other, pkix.Name{CommonName: "mallory"}, time.Now().Add(time.Hour)),
		"expired":   keyPair(ca, pkix.Name{CommonName: "old"}, time.Now().Add(-time.Minute)),
	} {
		dial(c, 0)
		if got := <-results; !strings.HasPrefix(got, "error: ") {
			t.Errorf("%s client certificate: principal %q", name, got)
		}
	}
	if _, err := dial(nil, tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 client connected")
	}
	<-results

	// Rotation: new files are served from the next handshake on.
	certPEM2, keyPEM2 := ca.IssueUntil(t, pkix.Name{CommonName: "broker-1-rotated"}, time.Now().Add(2*time.Hour))
	t1 := t0.Add(30 * time.Second)
	writeFile(t, certFile, certPEM2, t1)
	// The key does not match yet (half-way through a rotation): the old pair stays.
	if cn, err := dial(nil, 0); err != nil || cn != "broker-1" {
		t.Fatalf("during the rotation: %q, %v", cn, err)
	}
	<-results
	writeFile(t, keyFile, keyPEM2, t1)
	if cn, err := dial(nil, 0); err != nil || cn != "broker-1-rotated" {
		t.Fatalf("after the rotation: %q, %v", cn, err)
	}
	<-results

	// Inter-broker client config: trusts the CA, presents the broker's certificate.
	cc, err := files.ClientConfig("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-results; got != "User:CN=broker-1-rotated" {
		t.Fatalf("inter-broker principal %q", got)
	}
}

func TestTLSRequiredAndReloadInterval(t *testing.T) {
	ca := newTestCA(t, "test CA")
	certFile, keyFile, caFile, t0 := writeTLSFiles(t, ca, "one")
	cfg := TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, ClientAuth: ClientAuthRequired, ReloadInterval: time.Hour}
	files, err := NewTLSFiles(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	files.now = func() time.Time { return clock }
	addr, results := tlsServer(t, files.ServerConfig(), nil)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate got through ssl.client.auth=required")
	}
	if got := <-results; !strings.HasPrefix(got, "error: ") {
		t.Fatalf("principal %q", got)
	}

	c2, k2 := ca.IssueUntil(t, pkix.Name{CommonName: "two"}, time.Now().Add(time.Hour))
	writeFile(t, certFile, c2, t0.Add(time.Second))
	writeFile(t, keyFile, k2, t0.Add(time.Second))
	if got := files.current().cert.Leaf.Subject.CommonName; got != "one" {
		t.Fatalf("reloaded before the interval passed: %q", got)
	}
	clock = clock.Add(time.Hour)
	if got := files.current().cert.Leaf.Subject.CommonName; got != "two" {
		t.Fatalf("not reloaded after the interval: %q", got)
	}
}

func TestTLSConfigValidate(t *testing.T) {
	for _, bad := range []TLSConfig{
		{},
		{CertFile: "c", KeyFile: "k", ClientAuth: "sometimes"},
		{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthRequired},
		{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthNone, ReloadInterval: -1},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	dir := t.TempDir()
	if _, err := NewTLSFiles(TLSConfig{CertFile: filepath.Join(dir, "none"), KeyFile: filepath.Join(dir, "none"), ClientAuth: ClientAuthNone}, nil); err == nil {
		t.Error("missing files loaded")
	}
	os.WriteFile(filepath.Join(dir, "junk"), []byte("not PEM"), 0o600)
	if _, err := NewTLSFiles(TLSConfig{CertFile: filepath.Join(dir, "junk"), KeyFile: filepath.Join(dir, "junk"), ClientAuth: ClientAuthNone}, nil); err == nil {
		t.Error("junk loaded")
	}
	if _, err := ParseClientAuth("required"); err != nil {
		t.Error(err)
	}
}
