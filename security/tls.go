package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ClientAuth is Kafka's ssl.client.auth.
type ClientAuth string

// The ssl.client.auth values.
const (
	ClientAuthNone      ClientAuth = "none"      // no client certificate asked for
	ClientAuthRequested ClientAuth = "requested" // verified if sent; without one the principal is User:ANONYMOUS
	ClientAuthRequired  ClientAuth = "required"  // a certificate the CA signed, or no connection
)

// ParseClientAuth parses ssl.client.auth.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch c := ClientAuth(s); c {
	case ClientAuthNone, ClientAuthRequested, ClientAuthRequired:
		return c, nil
	}
	return "", fmt.Errorf("%w: ssl.client.auth %q (want none, requested or required)", ErrInvalidConfig, s)
}

func (c ClientAuth) tlsType() tls.ClientAuthType {
	switch c {
	case ClientAuthRequested:
		return tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// TLSConfig names the PEM files of a TLS listener (and of inter-broker connections).
type TLSConfig struct {
	CertFile string // certificate chain, leaf first (--ssl-cert-file)
	KeyFile  string // its private key (--ssl-key-file)
	// CAFile holds the certificates trusted for client certificates and, in ClientConfig, for
	// other brokers (--ssl-ca-file). Required unless ClientAuth is none.
	CAFile     string
	ClientAuth ClientAuth
	// ReloadInterval is how often, at most, handshakes check whether the files changed
	// (modification time and size); 0 checks on every handshake.
	ReloadInterval time.Duration
}

// DefaultTLSConfig returns client auth none and a one-second reload check.
func DefaultTLSConfig() TLSConfig {
	return TLSConfig{ClientAuth: ClientAuthNone, ReloadInterval: time.Second}
}

// Validate checks that the files are named and the settings known.
func (c TLSConfig) Validate() error {
	if c.CertFile == "" || c.KeyFile == "" {
		return fmt.Errorf("%w: TLS needs a certificate file and a key file", ErrInvalidConfig)
	}
	if _, err := ParseClientAuth(string(c.ClientAuth)); err != nil {
		return err
	}
	if c.ClientAuth != ClientAuthNone && c.CAFile == "" {
		return fmt.Errorf("%w: ssl.client.auth=%s needs a CA file to verify client certificates", ErrInvalidConfig, c.ClientAuth)
	}
	if c.ReloadInterval < 0 {
		return fmt.Errorf("%w: negative TLS reload interval", ErrInvalidConfig)
	}
	return nil
}

// TLSFiles serves TLS configurations from PEM files and picks up new files without a
// restart: a handshake that finds a file's modification time or size changed (checked at
// most every ReloadInterval) loads them again. A load that fails (a half-written file, a key
// that does not match the certificate) keeps the previous certificates, logs, and is retried
// at the next check. Safe for concurrent use.
type TLSFiles struct {
	cfg TLSConfig
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex // guards the fields below
	cur       *tlsSnapshot
	lastCheck time.Time
}

// tlsSnapshot is one successful load; immutable.
type tlsSnapshot struct {
	cert   tls.Certificate
	pool   *x509.CertPool // nil without a CA file
	stamps []fileStamp
	server *tls.Config
	// saslServer is server without client authentication, for SASL_SSL listeners.
	saslServer *tls.Config
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewTLSFiles loads the files once; an error here (missing file, bad PEM, mismatched key) is
// fatal to the listener.
func NewTLSFiles(cfg TLSConfig, logger *slog.Logger) (*TLSFiles, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	f := &TLSFiles{cfg: cfg, log: logger, now: time.Now}
	snap, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur, f.lastCheck = snap, f.now()
	return f, nil
}

func (f *TLSFiles) files() []string {
	out := []string{f.cfg.CertFile, f.cfg.KeyFile}
	if f.cfg.CAFile != "" {
		out = append(out, f.cfg.CAFile)
	}
	return out
}

func (f *TLSFiles) stamps() ([]fileStamp, error) {
	var out []fileStamp
	for _, name := range f.files() {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("security: %w", err)
		}
		out = append(out, fileStamp{mod: fi.ModTime(), size: fi.Size()})
	}
	return out, nil
}

// load reads every file. The stamps are taken first, so a file replaced during the read is
// seen as changed at the next check.
func (f *TLSFiles) load() (*tlsSnapshot, error) {
	stamps, err := f.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.cfg.CertFile, f.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("security: loading %s and %s: %w", f.cfg.CertFile, f.cfg.KeyFile, err)
	}
	snap := &tlsSnapshot{cert: cert, stamps: stamps}
	if f.cfg.CAFile != "" {
		pem, err := os.ReadFile(f.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("security: %w", err)
		}
		snap.pool = x509.NewCertPool()
		if !snap.pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("security: %s holds no PEM certificate", f.cfg.CAFile)
		}
	}
	snap.server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   f.cfg.ClientAuth.tlsType(),
		ClientCAs:    snap.pool,
	}
	snap.saslServer = snap.server.Clone()
	snap.saslServer.ClientAuth = tls.NoClientCert
	return snap, nil
}

// current returns the snapshot to use, reloading first if a check is due and a file changed.
func (f *TLSFiles) current() *tlsSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if now.Sub(f.lastCheck) < f.cfg.ReloadInterval {
		return f.cur
	}
	f.lastCheck = now
	stamps, err := f.stamps()
	if err != nil {
		f.log.Error("TLS files unreadable; keeping the loaded certificates", "err", err)
		return f.cur
	}
	if equalStamps(stamps, f.cur.stamps) {
		return f.cur
	}
	snap, err := f.load()
	if err != nil {
		f.log.Error("TLS files changed but do not load; keeping the loaded certificates", "err", err)
		return f.cur
	}
	f.log.Info("TLS certificates reloaded", "cert_file", f.cfg.CertFile, "not_after", leafNotAfter(snap.cert))
	f.cur = snap
	return snap
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

func leafNotAfter(c tls.Certificate) time.Time {
	if c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// ServerConfig returns the listener's tls.Config: TLS 1.2 or later, the configured client
// authentication, and the current files' certificates for every handshake. The principal of
// a connection then comes from CertificatePrincipal(conn.ConnectionState().PeerCertificates).
func (f *TLSFiles) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return f.current().server, nil
		},
	}
}

// SASLServerConfig is ServerConfig for SASL_SSL listeners: no client certificate is asked
// for whatever ssl.client.auth says, as in Kafka (KIP-684: a broker-wide ssl.client.auth is
// ignored on SASL_SSL listeners), since their principal comes from SASL.
func (f *TLSFiles) SASLServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return f.current().saslServer, nil
		},
	}
}

// ClientConfig returns a tls.Config for connecting to another broker named serverName: the
// CA file is the trust root and this broker's certificate is its client certificate (for
// listeners with ssl.client.auth=required). Call it per connection; each call uses the
// files as they are then.
func (f *TLSFiles) ClientConfig(serverName string) (*tls.Config, error) {
	snap := f.current()
	if snap.pool == nil {
		return nil, errors.New("security: inter-broker TLS needs a CA file (--ssl-ca-file)")
	}
	cert := snap.cert
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		ServerName:   serverName,
		RootCAs:      snap.pool,
		Certificates: []tls.Certificate{cert},
	}, nil
}
