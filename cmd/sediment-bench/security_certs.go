package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// benchCerts are the files of a CA and the broker certificate it signed,
// made at run time: the bench ships no key material.
type benchCerts struct {
	caFile, certFile, keyFile string
	roots                     *x509.CertPool // the CA, for the bench's clients
}

// makeBenchCerts writes ca.pem, broker.pem and broker.key into dir: an ECDSA
// P-256 CA and a broker certificate for 127.0.0.1 and localhost, both valid
// for a day. P-256 is what a Kafka deployment commonly gets from its CA
// tooling now, and cheaper to sign with than RSA, which matters for the
// handshake rate; BENCH.md says so next to the figures.
func makeBenchCerts(dir string) (*benchCerts, error) {
	now := time.Now()
	ca, caKey, caDER, err := signBenchCert(&x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sediment-bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("signing the CA: %w", err)
	}
	_, key, leafDER, err := signBenchCert(&x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "sediment-bench broker"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}, ca, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the broker certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &benchCerts{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "broker.pem"),
		keyFile:  filepath.Join(dir, "broker.key"),
		roots:    x509.NewCertPool(),
	}
	c.roots.AddCert(ca)
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{c.caFile, "CERTIFICATE", caDER, 0o644},
		{c.certFile, "CERTIFICATE", leafDER, 0o644},
		{c.keyFile, "PRIVATE KEY", keyDER, 0o600},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// signBenchCert makes a P-256 key and a certificate of it from tmpl, signed
// by parent's key, or self-signed when parent is nil.
func signBenchCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, der, nil
}

// clientTLS is the bench clients' TLS configuration: the bench CA trusted,
// TLS 1.2 or later, and no session cache, so every connection pays a full
// handshake as a new client would.
func (c *benchCerts) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}
}
