package security

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"strconv"
	"strings"
)

// Mechanism is a SASL mechanism name as Kafka spells it (sasl.enabled.mechanisms).
type Mechanism string

// The mechanisms this package implements.
const (
	Plain       Mechanism = "PLAIN"
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// Iteration bounds of SCRAM credentials: RFC 7677 asks for at least 4096, and Kafka refuses
// more than 16384 (ScramMechanism's maximum), which also bounds the PBKDF2 work that PLAIN
// verification does per attempt.
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 4096
	// SaltSize is the length of the salts NewScramCredential generates and of the masking
	// salts shown for unknown users: 24 bytes, what kadm generates for
	// AlterUserScramCredentials, so that a masked salt looks like most real ones.
	SaltSize = 24
	// maxSaltSize bounds salts given by clients (AlterUserScramCredentials) or read back.
	maxSaltSize = 1024
)

// Errors. Every authentication failure wraps ErrAuthenticationFailed (Kafka's
// SASL_AUTHENTICATION_FAILED); their texts name no secret and are safe to send to the client.
var (
	ErrAuthenticationFailed  = errors.New("security: authentication failed")
	ErrUnsupportedMechanism  = errors.New("security: unsupported SASL mechanism")
	ErrInvalidCredential     = errors.New("security: invalid SCRAM credential")
	ErrInvalidConfig         = errors.New("security: invalid configuration")
	errInvalidCredentialsMsg = "invalid credentials with SASL mechanism"
)

// scramPreference lists the SCRAM mechanisms, in the order PLAIN prefers their credentials.
var scramPreference = []Mechanism{ScramSHA512, ScramSHA256}

// hashOf returns the hash of a SCRAM mechanism.
func (m Mechanism) hashOf() (func() hash.Hash, bool) {
	switch m {
	case ScramSHA256:
		return sha256.New, true
	case ScramSHA512:
		return sha512.New, true
	}
	return nil, false
}

// IsScram reports whether m is one of the SCRAM mechanisms.
func (m Mechanism) IsScram() bool {
	_, ok := m.hashOf()
	return ok
}

// ScramCredential is what a server stores for one user and one SCRAM mechanism (RFC 5802
// section 3): never the password, only the salt, the iteration count and the two keys derived
// from the salted password. Its String form is redacted; Encode gives the stored form.
type ScramCredential struct {
	Mechanism  Mechanism
	Salt       []byte
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
	Iterations int
}

// NewScramCredential derives a credential for password with a fresh random salt.
// iterations 0 means DefaultIterations.
func NewScramCredential(m Mechanism, password string, iterations int) (ScramCredential, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if password == "" {
		return ScramCredential{}, fmt.Errorf("%w: empty password", ErrInvalidCredential)
	}
	salt := make([]byte, SaltSize)
	rand.Read(salt) // never fails (crypto/rand crashes the program instead)
	h, ok := m.hashOf()
	if !ok {
		return ScramCredential{}, fmt.Errorf("%w: %q is not a SCRAM mechanism", ErrUnsupportedMechanism, m)
	}
	if err := checkIterations(iterations); err != nil {
		return ScramCredential{}, err
	}
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return ScramCredential{}, fmt.Errorf("%w: %w", ErrInvalidCredential, err)
	}
	return ScramCredentialFromSaltedPassword(m, salt, salted, iterations)
}

// ScramCredentialFromSaltedPassword builds a credential from a salted password, what
// AlterUserScramCredentials upsertions carry (KIP-554: the client salts and hashes).
func ScramCredentialFromSaltedPassword(m Mechanism, salt, saltedPassword []byte, iterations int) (ScramCredential, error) {
	h, ok := m.hashOf()
	if !ok {
		return ScramCredential{}, fmt.Errorf("%w: %q is not a SCRAM mechanism", ErrUnsupportedMechanism, m)
	}
	if err := checkIterations(iterations); err != nil {
		return ScramCredential{}, err
	}
	if len(salt) == 0 || len(salt) > maxSaltSize {
		return ScramCredential{}, fmt.Errorf("%w: salt of %d bytes", ErrInvalidCredential, len(salt))
	}
	if len(saltedPassword) != h().Size() {
		return ScramCredential{}, fmt.Errorf("%w: salted password of %d bytes, %s needs %d",
			ErrInvalidCredential, len(saltedPassword), m, h().Size())
	}
	clientKey := hmacSum(h, saltedPassword, []byte("Client Key"))
	return ScramCredential{
		Mechanism:  m,
		Salt:       append([]byte(nil), salt...),
		StoredKey:  hashSum(h, clientKey),
		ServerKey:  hmacSum(h, saltedPassword, []byte("Server Key")),
		Iterations: iterations,
	}, nil
}

func checkIterations(n int) error {
	if n < MinIterations || n > MaxIterations {
		return fmt.Errorf("%w: %d iterations, want %d to %d", ErrInvalidCredential, n, MinIterations, MaxIterations)
	}
	return nil
}

// Encode returns the stored form, Kafka's own (what ZooKeeper-era Kafka kept under
// /config/users): "salt=<base64>,stored_key=<base64>,server_key=<base64>,iterations=<n>".
// The mechanism is not part of it; it is the key the form is stored under.
func (c ScramCredential) Encode() string {
	enc := base64.StdEncoding
	return "salt=" + enc.EncodeToString(c.Salt) +
		",stored_key=" + enc.EncodeToString(c.StoredKey) +
		",server_key=" + enc.EncodeToString(c.ServerKey) +
		",iterations=" + strconv.Itoa(c.Iterations)
}

// String is redacted: a credential printed by accident reveals nothing that helps an attack.
func (c ScramCredential) String() string {
	return fmt.Sprintf("%s credential (%d iterations)", c.Mechanism, c.Iterations)
}

// LogValue keeps the keys out of structured logs.
func (c ScramCredential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ParseScramCredential parses the stored form (Encode) of a credential for mechanism m.
// Every field is required exactly once; keys must have the hash's size and iterations must
// be within [MinIterations, MaxIterations].
func ParseScramCredential(m Mechanism, s string) (ScramCredential, error) {
	h, ok := m.hashOf()
	if !ok {
		return ScramCredential{}, fmt.Errorf("%w: %q is not a SCRAM mechanism", ErrUnsupportedMechanism, m)
	}
	if len(s) > 4*maxSaltSize {
		return ScramCredential{}, fmt.Errorf("%w: %d bytes", ErrInvalidCredential, len(s))
	}
	c := ScramCredential{Mechanism: m}
	seen := map[string]bool{}
	// Errors name fields by position or by (truncated) name, never by value: values are keys.
	i := 0
	for field := range strings.SplitSeq(s, ",") {
		i++
		name, value, ok := strings.Cut(field, "=")
		if !ok || seen[name] {
			return ScramCredential{}, fmt.Errorf("%w: field %d is not a new name=value", ErrInvalidCredential, i)
		}
		seen[name] = true
		var err error
		switch name {
		case "salt":
			c.Salt, err = base64.StdEncoding.Strict().DecodeString(value)
		case "stored_key":
			c.StoredKey, err = base64.StdEncoding.Strict().DecodeString(value)
		case "server_key":
			c.ServerKey, err = base64.StdEncoding.Strict().DecodeString(value)
		case "iterations":
			c.Iterations, err = strconv.Atoi(value)
		default:
			return ScramCredential{}, fmt.Errorf("%w: unknown field %q", ErrInvalidCredential, truncate(name, 16))
		}
		if err != nil {
			return ScramCredential{}, fmt.Errorf("%w: field %s: %w", ErrInvalidCredential, name, err)
		}
	}
	size := h().Size()
	switch {
	case len(seen) != 4:
		return ScramCredential{}, fmt.Errorf("%w: want salt, stored_key, server_key and iterations", ErrInvalidCredential)
	case len(c.Salt) == 0 || len(c.Salt) > maxSaltSize:
		return ScramCredential{}, fmt.Errorf("%w: salt of %d bytes", ErrInvalidCredential, len(c.Salt))
	case len(c.StoredKey) != size || len(c.ServerKey) != size:
		return ScramCredential{}, fmt.Errorf("%w: keys of %d and %d bytes, %s needs %d",
			ErrInvalidCredential, len(c.StoredKey), len(c.ServerKey), m, size)
	}
	if err := checkIterations(c.Iterations); err != nil {
		return ScramCredential{}, err
	}
	return c, nil
}

// CredentialSource looks up stored credentials: the stored form (ScramCredential.Encode) of
// user's credential for a SCRAM mechanism ("SCRAM-SHA-256", "SCRAM-SHA-512"). It is called
// on every authentication, so it should answer from memory; meta.UserCache satisfies it.
// Implementations must be safe for concurrent use.
type CredentialSource interface {
	Credential(user, mechanism string) (stored string, ok bool)
}

// CredentialMap is a CredentialSource held in memory: user → mechanism → stored form. For
// tests and static setups; not safe for concurrent modification.
type CredentialMap map[string]map[string]string

// Credential implements CredentialSource.
func (m CredentialMap) Credential(user, mechanism string) (string, bool) {
	s, ok := m[user][mechanism]
	return s, ok
}

// Set stores c for user.
func (m CredentialMap) Set(user string, c ScramCredential) {
	if m[user] == nil {
		m[user] = map[string]string{}
	}
	m[user][string(c.Mechanism)] = c.Encode()
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	mac := hmac.New(h, key)
	mac.Write(msg)
	return mac.Sum(nil)
}

func hashSum(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}
