package main

// The admin commands' TLS and SASL towards a listener that asks for them
// (Kafka's tools take these from --command-config's security.protocol,
// ssl.* and sasl.* client settings).

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// clientSecurity is how an admin command connects: the listener's security
// protocol, the CA to trust and a client certificate (SSL, SASL_SSL), and a
// SASL user (SASL_PLAINTEXT, SASL_SSL).
type clientSecurity struct {
	protocol     string
	caFile       string
	certFile     string
	keyFile      string
	mechanism    string
	user         string
	passwordFile string
}

// clientSecurityFlagNames also read SEDIMENT_<NAME>.
var clientSecurityFlagNames = []string{"security-protocol", "client-ssl-ca-file", "client-ssl-cert-file", "client-ssl-key-file",
	"sasl-mechanism", "sasl-user", "sasl-password-file"}

func (f *clientSecurity) register(fs *flag.FlagSet) {
	fs.StringVar(&f.protocol, "security-protocol", "PLAINTEXT", "security.protocol of the --bootstrap-server listener: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
	fs.StringVar(&f.caFile, "client-ssl-ca-file", "", "PEM `FILE` of the CA certificates to trust (SSL, SASL_SSL; default: the system's)")
	fs.StringVar(&f.certFile, "client-ssl-cert-file", "", "PEM client certificate `FILE`, for listeners with ssl.client.auth")
	fs.StringVar(&f.keyFile, "client-ssl-key-file", "", "PEM key `FILE` of --client-ssl-cert-file")
	fs.StringVar(&f.mechanism, "sasl-mechanism", "SCRAM-SHA-512", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_PLAINTEXT, SASL_SSL)")
	fs.StringVar(&f.user, "sasl-user", "", "SASL user (SASL_PLAINTEXT, SASL_SSL)")
	fs.StringVar(&f.passwordFile, "sasl-password-file", "", "`FILE` holding --sasl-user's password (its first line)")
}

func (f *clientSecurity) tls() bool {
	return f.protocol == "SSL" || f.protocol == "SASL_SSL"
}

func (f *clientSecurity) sasl() bool {
	return f.protocol == "SASL_PLAINTEXT" || f.protocol == "SASL_SSL"
}

// validate checks the combination; src names where a flag's value came from.
func (f *clientSecurity) validate(src func(string) string) error {
	f.protocol = strings.ToUpper(f.protocol)
	switch f.protocol {
	case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
	default:
		return fmt.Errorf("%s %q: must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", src("security-protocol"), f.protocol)
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return errors.New("--client-ssl-cert-file and --client-ssl-key-file go together")
	}
	if f.sasl() {
		switch strings.ToUpper(f.mechanism) {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf("%s %q: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", src("sasl-mechanism"), f.mechanism)
		}
		if f.user == "" || f.passwordFile == "" {
			return fmt.Errorf("%s needs --sasl-user and --sasl-password-file", f.protocol)
		}
	}
	return nil
}

// opts are the client options of the protocol.
func (f *clientSecurity) opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if f.tls() {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.caFile != "" {
			pem, err := os.ReadFile(f.caFile)
			if err != nil {
				return nil, fmt.Errorf("--client-ssl-ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--client-ssl-ca-file %s: no PEM certificate", f.caFile)
			}
		}
		if f.certFile != "" {
			cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
			if err != nil {
				return nil, fmt.Errorf("--client-ssl-cert-file: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if f.sasl() {
		pw, err := readPasswordFile(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--sasl-password-file: %w", err)
		}
		switch strings.ToUpper(f.mechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: f.user, Pass: pw}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: f.user, Pass: pw}.AsSha256Mechanism()))
		default:
			opts = append(opts, kgo.SASL(scram.Auth{User: f.user, Pass: pw}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}
