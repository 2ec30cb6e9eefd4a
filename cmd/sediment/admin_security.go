package main

// The admin commands' TLS and SASL towards a listener that asks for them:
// flags, or Kafka's client properties in a --command-config file, as
// Kafka's tools take them.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// clientSecurity is how an admin command connects: the listener's security
// protocol, the CA to trust and a client certificate (SSL, SASL_SSL), and a
// SASL user (SASL_PLAINTEXT, SASL_SSL).
type clientSecurity struct {
	commandConfig string
	password      string // from --command-config's sasl.jaas.config
	protocol      string
	caFile        string
	certFile      string
	keyFile       string
	mechanism     string
	user          string
	passwordFile  string
}

// clientSecurityFlagNames also read SEDIMENT_<NAME>.
var clientSecurityFlagNames = []string{"command-config", "security-protocol", "client-ssl-ca-file", "client-ssl-cert-file", "client-ssl-key-file",
	"sasl-mechanism", "sasl-user", "sasl-password-file"}

func (f *clientSecurity) register(fs *flag.FlagSet) {
	fs.StringVar(&f.commandConfig, "command-config", "", "`FILE` of Kafka client properties: security.protocol, sasl.mechanism, sasl.jaas.config (username, password), ssl.truststore.location and ssl.keystore.location (PEM files); flags set explicitly win")
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
	if f.commandConfig != "" {
		if err := f.loadCommandConfig(); err != nil {
			return fmt.Errorf("%s %s: %w", src("command-config"), f.commandConfig, err)
		}
	}
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
		if f.user == "" || (f.passwordFile == "" && f.password == "") {
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
		pw := f.password
		if f.passwordFile != "" {
			var err error
			if pw, err = readPasswordFile(f.passwordFile); err != nil {
				return nil, fmt.Errorf("--sasl-password-file: %w", err)
			}
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

// jaasOption is one key="value" of a JAAS login module's options.
var jaasOption = regexp.MustCompile(`([A-Za-z_]+)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// loadCommandConfig reads Kafka client properties into the settings that
// still have their default: a flag given a value of its own wins.
func (f *clientSecurity) loadCommandConfig() error {
	data, err := os.ReadFile(f.commandConfig)
	if err != nil {
		return err
	}
	if len(data) > maxConfigFileBytes {
		return fmt.Errorf("%d bytes is not a client properties file", len(data))
	}
	props, err := parseProperties(data)
	if err != nil {
		return err
	}
	unset := func(cur, def string) bool { return cur == def }
	for _, p := range props {
		v := strings.TrimSpace(p.value)
		switch p.name {
		case "security.protocol":
			if unset(f.protocol, "PLAINTEXT") {
				f.protocol = v
			}
		case "sasl.mechanism":
			if unset(f.mechanism, "SCRAM-SHA-512") {
				f.mechanism = v
			}
		case "sasl.jaas.config":
			opts := map[string]string{}
			for _, m := range jaasOption.FindAllStringSubmatch(v, -1) {
				opts[m[1]] = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[2])
			}
			if opts["username"] == "" || opts["password"] == "" {
				return fmt.Errorf("line %d: sasl.jaas.config has no username=\"...\" and password=\"...\"", p.line)
			}
			if unset(f.user, "") {
				f.user = opts["username"]
				if f.passwordFile == "" {
					f.password = opts["password"]
				}
			}
		case "ssl.truststore.location":
			if unset(f.caFile, "") {
				f.caFile = v
			}
		case "ssl.keystore.location":
			if unset(f.certFile, "") && unset(f.keyFile, "") {
				f.certFile, f.keyFile = v, v // one PEM file with the key and the chain
			}
		case "ssl.truststore.type", "ssl.keystore.type":
			if !strings.EqualFold(v, "PEM") {
				return fmt.Errorf("line %d: %s=%s: only PEM files are read", p.line, p.name, v)
			}
		case "ssl.endpoint.identification.algorithm":
			if !strings.EqualFold(v, "https") {
				return fmt.Errorf("line %d: %s=%s: the broker's name is always verified", p.line, p.name, v)
			}
		case "client.id", "request.timeout.ms", "default.api.timeout.ms":
			// client tuning, not needed here
		default:
			return fmt.Errorf("line %d: %s is not read by sediment's admin commands (security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location, ssl.keystore.location, their PEM types)", p.line, p.name)
		}
	}
	return nil
}
