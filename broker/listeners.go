package broker

// Listeners: one net.Listener per configured Kafka listener, TLS on SSL and
// SASL_SSL listeners, the principal of a TLS client certificate, and the
// endpoints each listener advertises (registered in etcd and returned to the
// clients that came in on that listener).

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/security"
)

// tlsHandshakeTimeout bounds a client's TLS handshake;
// interBrokerDialTimeout a connection to another broker, TLS included.
const (
	tlsHandshakeTimeout    = 10 * time.Second
	interBrokerDialTimeout = 10 * time.Second
)

// listener is one open Kafka listener.
type listener struct {
	cfg Listener
	ln  net.Listener
	tls *tls.Config // SSL and SASL_SSL: connections are wrapped in TLS on accept
}

// advertised is the host:port this listener tells clients.
func (l *listener) advertised() string {
	if l.cfg.Advertise != "" {
		return l.cfg.Advertise
	}
	return l.ln.Addr().String()
}

// securityState is what the listeners share: the TLS files, the certificate
// principal mapper, and the SASL authenticator with the credentials it reads.
type securityState struct {
	listeners []*listener
	tls       *security.TLSFiles // nil without TLS
	mapper    *security.PrincipalMapper
	auth      *security.Authenticator // nil without a SASL listener or SASL inter-broker
	users     *meta.UserCache         // nil with auth
	// auths counts authentications by listener, mechanism (a SASL
	// mechanism, or TLS for certificates) and result (success, failure).
	auths *prometheus.CounterVec
}

// countAuth counts one authentication of the connection.
func (c *conn) countAuth(mechanism string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	c.srv.sec.auths.WithLabelValues(c.listenerName(), mechanism, result).Inc()
}

// openListeners prepares TLS and SASL and listens on every listener. On
// error nothing is left open.
func (s *Server) openListeners(ctx context.Context) (err error) {
	sec := &s.sec
	defer func() {
		if err != nil {
			s.closeListeners()
			if sec.users != nil {
				sec.users.Close()
				sec.users = nil
			}
		}
	}()
	ls := s.cfg.listeners()
	needSASL := false
	for _, l := range ls {
		needSASL = needSASL || l.sasl()
	}
	if needSASL {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		secret, err := s.store.MaskSecret(sctx)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		if sec.users, err = s.store.WatchUsers(context.Background()); err != nil {
			return fmt.Errorf("broker: following SCRAM credentials: %w", err)
		}
		scfg := security.DefaultSASLConfig()
		scfg.Mechanisms, scfg.MaskSecret = s.cfg.Security.SASLMechanisms, secret
		if sec.auth, err = security.NewAuthenticator(scfg, sec.users, s.log.With("component", "sasl")); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
	}
	for _, lc := range ls {
		ln, err := net.Listen("tcp", lc.Addr)
		if err != nil {
			return fmt.Errorf("broker: listener %s: listen on %s: %w", lc.Name, lc.Addr, err)
		}
		l := &listener{cfg: lc, ln: ln}
		switch lc.Protocol {
		case ProtocolSSL:
			l.tls = sec.tls.ServerConfig()
		case ProtocolSASLSSL:
			l.tls = sec.tls.SASLServerConfig() // KIP-684: no client certificate
		}
		sec.listeners = append(sec.listeners, l)
	}
	return nil
}

// closeListeners stops accepting on every listener.
func (s *Server) closeListeners() {
	for _, l := range s.sec.listeners {
		l.ln.Close()
	}
}

// acceptAll runs one accept loop per listener and returns the first error
// (nil when they all stopped because their listener was closed).
func (s *Server) acceptAll(wg *sync.WaitGroup) error {
	errs := make(chan error, len(s.sec.listeners))
	for _, l := range s.sec.listeners {
		go func() { errs <- s.accept(l, wg) }()
	}
	var first error
	for range s.sec.listeners {
		if err := <-errs; err != nil && first == nil {
			first = err
			s.closeListeners()
		}
	}
	return first
}

// ListenerAddr is the bound address of the named listener once Run has
// started listening; nil if there is no such listener.
func (s *Server) ListenerAddr(name string) net.Addr {
	<-s.ready
	for _, l := range s.sec.listeners {
		if l.cfg.Name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// endpoints are the advertised endpoints of every listener, by name, and the
// inter-broker listener's as host and port (the registration's Host/Port,
// which older readers use).
func (s *Server) endpoints() (map[string]string, string, int32, error) {
	m := make(map[string]string, len(s.sec.listeners))
	var host string
	var port int32 = -1
	for _, l := range s.sec.listeners {
		addr := l.advertised()
		h, p, err := splitHostPort(addr)
		if err != nil {
			return nil, "", 0, fmt.Errorf("broker: listener %s advertised address %q: %w", l.cfg.Name, addr, err)
		}
		m[l.cfg.Name] = net.JoinHostPort(h, strconv.Itoa(int(p)))
		if l.cfg.Name == s.cfg.InterBrokerListener || port < 0 {
			host, port = h, p
		}
	}
	return m, host, port, nil
}

func splitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	return host, int32(p), nil
}

// endpointOn is where a client of the named listener reaches broker b. A
// broker without that listener is not reachable from it (Kafka leaves it
// out of Metadata); one registered before listeners were recorded is
// reachable at its Host and Port.
func endpointOn(b meta.BrokerInfo, listenerName string) (string, int32, bool) {
	if len(b.Listeners) == 0 {
		return b.Host, b.Port, true
	}
	addr, ok := b.Listeners[listenerName]
	if !ok {
		return "", 0, false
	}
	h, p, err := splitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	return h, p, true
}

// listenerName is the name of the listener the connection came in on.
func (c *conn) listenerName() string {
	if c.lis == nil {
		return ProtocolPlaintext
	}
	return c.lis.cfg.Name
}

// handshake completes a TLS connection's handshake and, on an SSL listener,
// takes the principal from the client certificate. An error closes the
// connection.
func (c *conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.countAuth("TLS", false)
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if c.batch != nil {
		c.batch.start()
	}
	if c.lis.cfg.Protocol != ProtocolSSL {
		return nil
	}
	p, err := security.CertificatePrincipal(tc.ConnectionState().PeerCertificates, c.srv.sec.mapper)
	c.countAuth("TLS", err == nil)
	if err != nil {
		return fmt.Errorf("principal of the client certificate: %w", err)
	}
	c.principal = p
	c.log.Debug("connection authenticated", "principal", p.String(), "listener", c.listenerName())
	return nil
}

// listenerEndpoints rewrites the broker endpoints of a Produce or Fetch
// response's leader hints (KIP-951) to those of the connection's listener.
func (c *conn) listenerEndpoints(resp kmsg.Response) {
	name := c.listenerName()
	fix := func(id int32, host *string, port *int32) {
		if b, ok := c.srv.cache.Broker(id); ok {
			if h, p, ok := endpointOn(b, name); ok {
				*host, *port = h, p
			}
		}
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Brokers {
			fix(r.Brokers[i].NodeID, &r.Brokers[i].Host, &r.Brokers[i].Port)
		}
	case *kmsg.FetchResponse:
		for i := range r.Brokers {
			fix(r.Brokers[i].NodeID, &r.Brokers[i].Host, &r.Brokers[i].Port)
		}
	}
}

// initSecurity registers the authentication metric and loads the TLS files
// (when a listener uses TLS) and the principal mapping rules; New calls it
// so followers can dial other brokers at once.
func (s *Server) initSecurity(reg prometheus.Registerer) error {
	s.sec.auths = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sediment", Subsystem: "broker", Name: "authentications_total",
		Help: "Authentications of connections (TLS client certificates, SASL logins and re-authentications) by listener, mechanism and result.",
	}, []string{"listener", "mechanism", "result"})
	if err := reg.Register(s.sec.auths); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	var err error
	if s.sec.mapper, err = security.ParsePrincipalMappingRules(s.cfg.Security.PrincipalMappingRules); err != nil {
		return fmt.Errorf("broker: ssl.principal.mapping.rules: %w", err)
	}
	for _, l := range s.cfg.listeners() {
		if l.tls() {
			if s.sec.tls, err = security.NewTLSFiles(s.cfg.Security.TLS, s.log.With("component", "tls")); err != nil {
				return fmt.Errorf("broker: %w", err)
			}
			break
		}
	}
	return nil
}

// dialInterBroker connects to another broker's inter-broker listener: TLS
// (this broker's certificate, the CA file as trust root) when the listener
// uses it.
func (s *Server) dialInterBroker(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: interBrokerDialTimeout}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if ib, _ := s.cfg.interBroker(); !ib.tls() {
		return nc, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cfg, err := s.sec.tls.ClientConfig(host)
	if err != nil {
		nc.Close()
		return nil, err
	}
	tc := tls.Client(nc, cfg)
	hctx, cancel := context.WithTimeout(ctx, interBrokerDialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker: TLS to %s: %w", addr, err)
	}
	return tc, nil
}

// interBrokerSASL is this broker's SASL mechanism towards other brokers, nil
// when the inter-broker listener has no SASL.
func (s *Server) interBrokerSASL() sasl.Mechanism {
	ib, _ := s.cfg.interBroker()
	if !ib.sasl() {
		return nil
	}
	sc := s.cfg.Security
	switch sc.InterBrokerMechanism {
	case security.Plain:
		return plain.Auth{User: sc.InterBrokerUser, Pass: sc.InterBrokerPassword}.AsMechanism()
	case security.ScramSHA256:
		return scram.Auth{User: sc.InterBrokerUser, Pass: sc.InterBrokerPassword}.AsSha256Mechanism()
	default:
		return scram.Auth{User: sc.InterBrokerUser, Pass: sc.InterBrokerPassword}.AsSha512Mechanism()
	}
}

// replConfig gives followers the inter-broker listener's TLS and SASL.
func (s *Server) replConfig(c *repl.Config) {
	c.Dial = s.dialInterBroker
	c.SASL = s.interBrokerSASL()
}

// interBrokerClientOpts are the options of clients of other brokers.
func (s *Server) interBrokerClientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.Dialer(s.dialInterBroker)}
	if m := s.interBrokerSASL(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}
