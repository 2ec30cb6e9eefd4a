package security

import (
	"bytes"
	"crypto/pbkdf2"
	"unicode/utf8"
)

// SASL PLAIN (RFC 4616): one client message "authzid NUL authcid NUL passwd", verified
// against the user's stored SCRAM credential: the password is salted with the credential's
// salt and iteration count and the resulting StoredKey compared in constant time. So PLAIN
// needs no plain password stored anywhere, and a user has one secret for all three
// mechanisms. Passwords are compared as sent (no SASLprep), as Kafka does.

// maxPlainMessage bounds a PLAIN message; RFC 4616 asks servers to accept 255 bytes per part.
const maxPlainMessage = 4 << 10

// PlainMessage is a parsed PLAIN message.
type PlainMessage struct {
	AuthzID  string
	User     string
	Password string
}

// ParsePlain parses a PLAIN message with Kafka's checks: exactly three NUL-separated parts,
// UTF-8, a user name and a password, and an authorization id that is empty or the user name.
// Errors wrap ErrAuthenticationFailed and never contain the password.
func ParsePlain(msg []byte) (PlainMessage, error) {
	if len(msg) > maxPlainMessage {
		return PlainMessage{}, malformed(Plain, "%d bytes (at most %d)", len(msg), maxPlainMessage)
	}
	if !utf8.Valid(msg) {
		return PlainMessage{}, malformed(Plain, "not UTF-8")
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return PlainMessage{}, malformed(Plain, "expected 3 NUL-separated tokens, got %d", len(parts))
	}
	p := PlainMessage{AuthzID: string(parts[0]), User: string(parts[1]), Password: string(parts[2])}
	switch {
	case p.User == "":
		return PlainMessage{}, malformed(Plain, "user name not specified")
	case p.Password == "":
		return PlainMessage{}, malformed(Plain, "password not specified")
	case p.AuthzID != "" && p.AuthzID != p.User:
		return PlainMessage{}, malformed(Plain, "the authorization id differs from the user name")
	}
	return p, nil
}

// plainExchange is one PLAIN authentication: a single message, no challenge.
type plainExchange struct {
	a    *Authenticator
	user string
	done bool
	used bool
}

func (p *plainExchange) Mechanism() Mechanism { return Plain }

func (p *plainExchange) User() string {
	if !p.done {
		return ""
	}
	return p.user
}

func (p *plainExchange) Next(msg []byte) ([]byte, bool, error) {
	if p.used {
		return nil, false, malformed(Plain, "PLAIN takes a single message")
	}
	p.used = true
	pm, err := ParsePlain(msg)
	if err != nil {
		return nil, false, err
	}
	if !p.a.VerifyPassword(pm.User, pm.Password) {
		return nil, false, authFailed(Plain)
	}
	p.user, p.done = pm.User, true
	return nil, true, nil
}

// VerifyPassword reports whether password is user's, checked against the stored SCRAM
// credential (SCRAM-SHA-512 if the user has one, else SCRAM-SHA-256). An unknown user costs
// the same PBKDF2 work as a known one, against a mask credential, and fails.
func (a *Authenticator) VerifyPassword(user, password string) bool {
	var (
		cred  ScramCredential
		known bool
	)
	for _, m := range scramPreference {
		if cred, known = a.lookup(user, m); known {
			break
		}
	}
	if !known {
		cred = a.mask(user, scramPreference[0])
	}
	h, _ := cred.Mechanism.hashOf()
	salted, err := pbkdf2.Key(h, password, cred.Salt, cred.Iterations, h().Size())
	if err != nil {
		return false
	}
	storedKey := hashSum(h, hmacSum(h, salted, []byte("Client Key")))
	return equalConstantTime(storedKey, cred.StoredKey) && known
}
