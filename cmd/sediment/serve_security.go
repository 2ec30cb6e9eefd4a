package main

import (
	"cmp"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sedimentio/sediment/broker"
	"github.com/sedimentio/sediment/security"
)

// defaultProtocolMap is listener.security.protocol.map's default: each
// security protocol names a listener of itself.
const defaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

// securityFlags are serve's listener, TLS and SASL settings (Kafka's
// listeners, advertised.listeners, listener.security.protocol.map, ssl.*,
// sasl.*, connections.max.reauth.ms).
type securityFlags struct {
	listeners      string
	advertised     string
	protocolMap    string
	certFile       string
	keyFile        string
	caFile         string
	clientAuth     string
	mappingRules   string
	mechanisms     string
	maxReauth      time.Duration
	ibMechanism    string
	ibUser         string
	ibPasswordFile string
}

func (x *securityFlags) register(fs *flag.FlagSet, d broker.Config) {
	s := d.Security
	var mechs []string
	for _, m := range s.SASLMechanisms {
		mechs = append(mechs, string(m))
	}
	fs.StringVar(&x.listeners, "listeners", "", "listeners: NAME://HOST:PORT,... (an empty HOST is every interface); replaces --listen, which is one PLAINTEXT listener")
	fs.StringVar(&x.advertised, "advertised-listeners", "", "advertised.listeners: NAME://HOST:PORT,... clients of each listener are told (default: the listener's address; on 0.0.0.0 or ::, this host's own)")
	fs.StringVar(&x.protocolMap, "listener-security-protocol-map", defaultProtocolMap, "listener.security.protocol.map: NAME:PROTOCOL,... with PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
	fs.StringVar(&x.certFile, "ssl-cert-file", "", "PEM certificate chain of SSL and SASL_SSL listeners (leaf first), also presented to other brokers; re-read when it changes")
	fs.StringVar(&x.keyFile, "ssl-key-file", "", "PEM private key of --ssl-cert-file (unencrypted)")
	fs.StringVar(&x.caFile, "ssl-ca-file", "", "PEM certificates trusted for client certificates and for other brokers (ssl.truststore)")
	fs.StringVar(&x.clientAuth, "ssl-client-auth", string(s.TLS.ClientAuth), "ssl.client.auth: none, requested or required")
	fs.StringVar(&x.mappingRules, "ssl-principal-mapping-rules", s.PrincipalMappingRules, "ssl.principal.mapping.rules: how a client certificate's subject becomes the principal's name (RULE:pattern/replacement/[LU],...,DEFAULT)")
	fs.StringVar(&x.mechanisms, "sasl-enabled-mechanisms", strings.Join(mechs, ","), "sasl.enabled.mechanisms: of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka's default GSSAPI is not implemented)")
	fs.DurationVar(&x.maxReauth, "connections-max-reauth", s.MaxReauth, "connections.max.reauth.ms as a duration: a SASL session lasts this long before the client must re-authenticate (KIP-368); 0 never expires")
	fs.StringVar(&x.ibMechanism, "sasl-mechanism-inter-broker-protocol", string(s.InterBrokerMechanism), "sasl.mechanism.inter.broker.protocol: this broker's mechanism on a SASL inter-broker listener")
	fs.StringVar(&x.ibUser, "sasl-inter-broker-user", "", "the SCRAM user this broker authenticates as on a SASL inter-broker listener (Kafka's JAAS username)")
	fs.StringVar(&x.ibPasswordFile, "sasl-inter-broker-password-file", "", "file holding --sasl-inter-broker-user's password (one line)")
}

// apply fills c.Security. Without --listeners, the broker's Listen and
// Advertise (--listen, --advertise) make its one PLAINTEXT listener.
func (x *securityFlags) apply(c *broker.Config) error {
	s := &c.Security
	var err error
	if s.Listeners, err = x.parseListeners(); err != nil {
		return err
	}
	auth, err := security.ParseClientAuth(x.clientAuth)
	if err != nil {
		return fmt.Errorf("--ssl-client-auth: %w", err)
	}
	s.TLS = security.DefaultTLSConfig()
	s.TLS.CertFile, s.TLS.KeyFile, s.TLS.CAFile, s.TLS.ClientAuth = x.certFile, x.keyFile, x.caFile, auth
	s.PrincipalMappingRules = x.mappingRules
	if s.SASLMechanisms, err = security.ParseMechanisms(x.mechanisms); err != nil {
		return fmt.Errorf("--sasl-enabled-mechanisms: %w", err)
	}
	if x.maxReauth < 0 {
		return fmt.Errorf("--connections-max-reauth %v is negative", x.maxReauth)
	}
	s.MaxReauth = x.maxReauth
	s.InterBrokerMechanism = security.Mechanism(x.ibMechanism)
	s.InterBrokerUser = x.ibUser
	if x.ibPasswordFile != "" {
		pw, err := readPasswordFile(x.ibPasswordFile)
		if err != nil {
			return fmt.Errorf("--sasl-inter-broker-password-file: %w", err)
		}
		s.InterBrokerPassword = pw
	}
	return nil
}

// parseListeners combines --listeners, --advertised-listeners and
// --listener-security-protocol-map; nil without --listeners.
func (x *securityFlags) parseListeners() ([]broker.Listener, error) {
	if x.listeners == "" {
		if x.advertised != "" {
			return nil, fmt.Errorf("--advertised-listeners needs --listeners")
		}
		return nil, nil
	}
	protocols := map[string]string{}
	for _, pair := range splitList(x.protocolMap) {
		name, proto, ok := strings.Cut(pair, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("--listener-security-protocol-map: %q: want NAME:PROTOCOL", pair)
		}
		protocols[strings.ToUpper(strings.TrimSpace(name))] = strings.ToUpper(strings.TrimSpace(proto))
	}
	ls, err := parseListeners(x.listeners)
	if err != nil {
		return nil, fmt.Errorf("--listeners: %w", err)
	}
	adv, err := parseListeners(x.advertised)
	if err != nil {
		return nil, fmt.Errorf("--advertised-listeners: %w", err)
	}
	var out []broker.Listener
	for _, l := range ls {
		proto, ok := protocols[l.name]
		if !ok {
			return nil, fmt.Errorf("--listeners: listener %s is not in --listener-security-protocol-map", l.name)
		}
		bl := broker.Listener{Name: l.name, Protocol: proto, Addr: net.JoinHostPort(cmp.Or(l.host, "0.0.0.0"), l.port)}
		for _, a := range adv {
			if a.name == l.name {
				if a.host == "" {
					return nil, fmt.Errorf("--advertised-listeners: listener %s advertises no host", a.name)
				}
				bl.Advertise = net.JoinHostPort(a.host, a.port)
			}
		}
		if bl.Advertise == "" {
			if bl.Advertise, err = defaultAdvertise(bl.Addr); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.name, err)
			}
		}
		out = append(out, bl)
	}
	for _, a := range adv {
		if !slices.ContainsFunc(ls, func(l listener) bool { return l.name == a.name }) {
			return nil, fmt.Errorf("--advertised-listeners: listener %s is not in --listeners", a.name)
		}
	}
	return out, nil
}

// readPasswordFile reads a password: the file's first line, without its
// line ending. An empty password or a file over 4 KiB is an error.
func readPasswordFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() > 4096 {
		return "", fmt.Errorf("%s: %d bytes is not a password", path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%s: empty password", path)
	}
	return pw, nil
}
