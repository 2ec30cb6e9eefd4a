// Package securitytest makes certificate authorities and certificates for
// tests of TLS listeners and clients.
package securitytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made in a test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate.
	PEM []byte
}

func sign(t testing.TB, tmpl *x509.Certificate, parent *CA) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, big.NewInt(1<<62)); err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// NewCA makes a CA named cn, valid for a day.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	cert, key, p := sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil)
	return &CA{cert: cert, key: key, PEM: p}
}

// Issue returns a PEM certificate and key for subject, for server and client
// use, valid for 127.0.0.1 and localhost for a day.
func (ca *CA) Issue(t testing.TB, subject pkix.Name) (certPEM, keyPEM []byte) {
	t.Helper()
	return ca.IssueUntil(t, subject, time.Now().Add(24*time.Hour))
}

// IssueUntil is Issue with the certificate valid until notAfter.
func (ca *CA) IssueUntil(t testing.TB, subject pkix.Name, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	_, key, certPEM := sign(t, &x509.Certificate{
		Subject: subject, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}, ca)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// Files are the PEM files of one certificate.
type Files struct{ Cert, Key, CA string }

// WriteFiles writes a certificate for subject, its key and the CA
// certificate into dir (made if missing) and returns their paths.
func (ca *CA) WriteFiles(t testing.TB, dir string, subject pkix.Name) Files {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f := Files{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), CA: filepath.Join(dir, "ca.pem")}
	certPEM, keyPEM := ca.Issue(t, subject)
	for path, data := range map[string][]byte{f.Cert: certPEM, f.Key: keyPEM, f.CA: ca.PEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// ClientConfig is a TLS client config trusting the CA, presenting a
// certificate for subject unless subject is nil.
func (ca *CA) ClientConfig(t testing.TB, subject *pkix.Name) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if subject != nil {
		certPEM, keyPEM := ca.Issue(t, *subject)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}
