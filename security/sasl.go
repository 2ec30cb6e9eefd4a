package security

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// SASLConfig configures the SASL mechanisms of a listener.
type SASLConfig struct {
	// Mechanisms are the enabled mechanisms (Kafka's sasl.enabled.mechanisms), in the order
	// SaslHandshake lists them. Kafka defaults to GSSAPI, which Sediment does not implement;
	// the default here is the two SCRAM mechanisms. PLAIN sends the password itself and
	// belongs on TLS listeners only.
	Mechanisms []Mechanism
	// MaskSecret derives the fake salt and keys shown for unknown users, so that a
	// conversation about a user who does not exist looks and takes as long as one with a wrong
	// password. At least 16 bytes; all brokers of a cluster should share it (meta keeps one in
	// etcd), or comparing two brokers' salts for one name would tell whether the user exists.
	MaskSecret []byte
	// MaskIterations is the iteration count shown for unknown users; it should be what real
	// credentials use. 0 means DefaultIterations.
	MaskIterations int
}

// DefaultSASLConfig returns the SCRAM mechanisms and no mask secret (which must be set).
func DefaultSASLConfig() SASLConfig {
	return SASLConfig{Mechanisms: []Mechanism{ScramSHA256, ScramSHA512}, MaskIterations: DefaultIterations}
}

// ParseMechanisms parses Kafka's comma-separated sasl.enabled.mechanisms.
func ParseMechanisms(s string) ([]Mechanism, error) {
	var out []Mechanism
	for name := range strings.SplitSeq(s, ",") {
		m := Mechanism(strings.TrimSpace(name))
		if m == "" {
			continue
		}
		if m != Plain && !m.IsScram() {
			return nil, fmt.Errorf("%w: %q (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", ErrUnsupportedMechanism, string(m))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no SASL mechanism enabled", ErrInvalidConfig)
	}
	return out, nil
}

// Validate checks the config.
func (c SASLConfig) Validate() error {
	if len(c.Mechanisms) == 0 {
		return fmt.Errorf("%w: no SASL mechanism enabled", ErrInvalidConfig)
	}
	for _, m := range c.Mechanisms {
		if m != Plain && !m.IsScram() {
			return fmt.Errorf("%w: %q", ErrUnsupportedMechanism, string(m))
		}
	}
	if len(c.MaskSecret) < 16 {
		return fmt.Errorf("%w: SASL mask secret of %d bytes, want at least 16", ErrInvalidConfig, len(c.MaskSecret))
	}
	if c.MaskIterations != 0 {
		if err := checkIterations(c.MaskIterations); err != nil {
			return fmt.Errorf("%w: mask iterations: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

// Authenticator starts SASL exchanges for one listener's enabled mechanisms against one
// CredentialSource. Safe for concurrent use; an Exchange is not.
type Authenticator struct {
	cfg   SASLConfig
	creds CredentialSource
	log   *slog.Logger
	// serverNonce, when set, replaces the random server nonce (a test seam for RFC vectors).
	serverNonce func() string
}

// NewAuthenticator validates cfg. creds is consulted on every exchange; logger (nil:
// slog.Default()) hears of stored credentials that fail to parse, never of secrets.
func NewAuthenticator(cfg SASLConfig, creds CredentialSource, logger *slog.Logger) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if creds == nil {
		return nil, fmt.Errorf("%w: no credential source", ErrInvalidConfig)
	}
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.MaskIterations == 0 {
		cfg.MaskIterations = DefaultIterations
	}
	cfg.Mechanisms = slices.Clone(cfg.Mechanisms)
	cfg.MaskSecret = slices.Clone(cfg.MaskSecret)
	return &Authenticator{cfg: cfg, creds: creds, log: logger}, nil
}

// Mechanisms returns the enabled mechanism names, for SaslHandshake's response.
func (a *Authenticator) Mechanisms() []string {
	out := make([]string, len(a.cfg.Mechanisms))
	for i, m := range a.cfg.Mechanisms {
		out[i] = string(m)
	}
	return out
}

// Exchange is one SASL authentication on one connection. The broker feeds it each client
// message (SaslAuthenticate's auth_bytes, or the raw v0 frames) and sends back what it
// returns, until done. Any error ends the exchange for good; it wraps
// ErrAuthenticationFailed and its text is safe to send to the client.
// Not safe for concurrent use.
type Exchange interface {
	// Next consumes one client message and returns the server's answer (possibly empty)
	// and whether authentication completed successfully.
	Next(clientMsg []byte) (serverMsg []byte, done bool, err error)
	// User returns the authenticated user name; "" until Next has returned done.
	User() string
	// Mechanism returns the mechanism of this exchange.
	Mechanism() Mechanism
}

// Start begins an exchange with mechanism (the name from SaslHandshake). A mechanism that is
// not enabled is ErrUnsupportedMechanism (Kafka's UNSUPPORTED_SASL_MECHANISM).
func (a *Authenticator) Start(mechanism string) (Exchange, error) {
	m := Mechanism(mechanism)
	if !slices.Contains(a.cfg.Mechanisms, m) {
		return nil, fmt.Errorf("%w: %q is not enabled (enabled: %s)", ErrUnsupportedMechanism,
			mechanism, strings.Join(a.Mechanisms(), ", "))
	}
	if m == Plain {
		return &plainExchange{a: a}, nil
	}
	return a.newScram(m), nil
}

// lookup returns user's credential for m, or a mask credential derived from the mask secret
// when there is none (known false). Both take the same path from here on.
func (a *Authenticator) lookup(user string, m Mechanism) (c ScramCredential, known bool) {
	if stored, ok := a.creds.Credential(user, string(m)); ok {
		c, err := ParseScramCredential(m, stored)
		if err == nil {
			return c, true
		}
		// The user name is not secret, but the stored form is: log only the parse error.
		a.log.Warn("stored SCRAM credential does not parse; treating the user as unknown",
			"user", user, "mechanism", string(m), "err", err)
	}
	return a.mask(user, m), false
}

// mask derives a deterministic credential for an unknown user: the same user and mechanism
// always get the same salt (a client asking twice sees no difference), and nothing about it
// reveals that the user is missing. No password maps to its StoredKey, which is an HMAC of
// the secret, not the hash of a client key anyone knows.
func (a *Authenticator) mask(user string, m Mechanism) ScramCredential {
	h, _ := m.hashOf()
	info := func(label string) []byte { return []byte(label + "\x00" + string(m) + "\x00" + user) }
	return ScramCredential{
		Mechanism:  m,
		Salt:       hmacSum(sha256.New, a.cfg.MaskSecret, info("salt"))[:SaltSize],
		StoredKey:  hmacSum(h, a.cfg.MaskSecret, info("stored key")),
		ServerKey:  hmacSum(h, a.cfg.MaskSecret, info("server key")),
		Iterations: a.cfg.MaskIterations,
	}
}

// authFailed is the one error for a wrong password, an unknown user or a bad proof: the
// same text whatever the cause.
func authFailed(m Mechanism) error {
	return fmt.Errorf("%w: %s %s", ErrAuthenticationFailed, errInvalidCredentialsMsg, m)
}

// malformed reports a message that breaks the mechanism's syntax.
func malformed(m Mechanism, format string, args ...any) error {
	return fmt.Errorf("%w: invalid %s message: %s", ErrAuthenticationFailed, m, fmt.Sprintf(format, args...))
}

// equalConstantTime compares secrets without leaking where they differ.
func equalConstantTime(a, b []byte) bool { return hmac.Equal(a, b) }
