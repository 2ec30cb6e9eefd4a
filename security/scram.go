package security

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks it:
//
//	client-first  n,[a=<authzid>],n=<user>,r=<client nonce>[,<ext>=<value>...]
//	server-first  r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//	client-final  c=<base64 gs2 header>,r=<nonce>[,<ext>...],p=<base64 proof>
//	server-final  v=<base64 server signature>
//
// Only "n" is accepted as the channel-binding flag (Kafka does no channel binding), so c= is
// "biws" or, with an authzid, the base64 of "n,a=<authzid>,". The authzid must be empty or
// the user name. A failed proof gets no "e=" message: as in Kafka, the exchange ends with an
// error the broker returns as SASL_AUTHENTICATION_FAILED.

// maxSCRAMMessage bounds what a client may send in one SCRAM message (names, nonces and
// extensions; real ones are under 200 bytes).
const maxSCRAMMessage = 8 << 10

// serverNonceSize is the number of random bytes of the server's nonce part.
const serverNonceSize = 24

type scramState int

const (
	scramExpectFirst scramState = iota
	scramExpectFinal
	scramDone
	scramFailed
)

// scramExchange is one SCRAM conversation. Not safe for concurrent use.
type scramExchange struct {
	a     *Authenticator
	mech  Mechanism
	h     func() hash.Hash
	state scramState

	user        string
	cred        ScramCredential
	known       bool
	gs2Header   string // as received, e.g. "n,,"
	clientBare  string // client-first-message-bare
	serverFirst string
	nonce       string // client nonce + server nonce
}

func (a *Authenticator) newScram(m Mechanism) *scramExchange {
	h, _ := m.hashOf()
	return &scramExchange{a: a, mech: m, h: h}
}

func (s *scramExchange) Mechanism() Mechanism { return s.mech }

func (s *scramExchange) User() string {
	if s.state != scramDone {
		return ""
	}
	return s.user
}

func (s *scramExchange) Next(msg []byte) ([]byte, bool, error) {
	var (
		out []byte
		err error
	)
	switch s.state {
	case scramExpectFirst:
		out, err = s.clientFirst(msg)
		if err == nil {
			s.state = scramExpectFinal
			return out, false, nil
		}
	case scramExpectFinal:
		out, err = s.clientFinal(msg)
		if err == nil {
			s.state = scramDone
			return out, true, nil
		}
	case scramDone:
		err = malformed(s.mech, "the exchange is already complete")
	default:
		err = malformed(s.mech, "the exchange already failed")
	}
	s.state = scramFailed
	return nil, false, err
}

// clientFirstMessage is a parsed client-first-message.
type clientFirstMessage struct {
	gs2Header  string
	authzid    string
	user       string
	nonce      string
	extensions map[string]string
	bare       string
}

// parseClientFirst parses a client-first-message (RFC 5802 section 7) for mechanism m.
func parseClientFirst(m Mechanism, msg []byte) (clientFirstMessage, error) {
	var cf clientFirstMessage
	if err := checkText(m, msg); err != nil {
		return cf, err
	}
	text := string(msg)
	cbFlag, rest, ok := strings.Cut(text, ",")
	if !ok {
		return cf, malformed(m, "no GS2 header")
	}
	switch {
	case cbFlag == "n":
	case cbFlag == "y" || strings.HasPrefix(cbFlag, "p="):
		return cf, malformed(m, "channel binding is not supported (GS2 flag %q); use \"n\"", cbFlag)
	default:
		return cf, malformed(m, "GS2 channel-binding flag %q", cbFlag)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, malformed(m, "GS2 header does not end")
	}
	if authz != "" {
		name, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return cf, malformed(m, "GS2 authzid must start with \"a=\"")
		}
		var err error
		if cf.authzid, err = decodeSaslName(m, name); err != nil {
			return cf, err
		}
	}
	cf.gs2Header = cbFlag + "," + authz + ","
	cf.bare = bare
	fields := strings.Split(bare, ",")
	if strings.HasPrefix(fields[0], "m=") {
		return cf, malformed(m, "mandatory extension %q is not supported", fields[0])
	}
	if len(fields) < 2 {
		return cf, malformed(m, "want n=<user>,r=<nonce>")
	}
	userField, ok := strings.CutPrefix(fields[0], "n=")
	if !ok {
		return cf, malformed(m, "want n=<user> first")
	}
	var err error
	if cf.user, err = decodeSaslName(m, userField); err != nil {
		return cf, err
	}
	if cf.nonce, ok = strings.CutPrefix(fields[1], "r="); !ok {
		return cf, malformed(m, "want r=<nonce> after the user name")
	}
	if err := checkNonce(m, cf.nonce); err != nil {
		return cf, err
	}
	if cf.extensions, err = parseExtensions(m, fields[2:]); err != nil {
		return cf, err
	}
	if cf.authzid != "" && cf.authzid != cf.user {
		return cf, malformed(m, "the authorization id differs from the user name")
	}
	return cf, nil
}

func (s *scramExchange) clientFirst(msg []byte) ([]byte, error) {
	cf, err := parseClientFirst(s.mech, msg)
	if err != nil {
		return nil, err
	}
	s.user, s.gs2Header, s.clientBare = cf.user, cf.gs2Header, cf.bare
	s.cred, s.known = s.a.lookup(cf.user, s.mech)
	// KIP-48 delegation tokens authenticate with tokenauth=true; Sediment has none, so such a
	// client fails like one with an unknown token, at the proof, with the usual error.
	if cf.extensions["tokenauth"] == "true" {
		s.cred, s.known = s.a.mask(cf.user, s.mech), false
	}
	if s.a.serverNonce != nil {
		s.nonce = cf.nonce + s.a.serverNonce()
	} else {
		var sn [serverNonceSize]byte
		rand.Read(sn[:]) // never fails
		s.nonce = cf.nonce + base64.RawURLEncoding.EncodeToString(sn[:])
	}
	s.serverFirst = "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) +
		",i=" + strconv.Itoa(s.cred.Iterations)
	return []byte(s.serverFirst), nil
}

// clientFinalMessage is a parsed client-final-message.
type clientFinalMessage struct {
	channelBinding string // base64 as sent
	nonce          string
	proof          []byte
	withoutProof   string
}

// parseClientFinal parses a client-final-message (RFC 5802 section 7) for mechanism m.
func parseClientFinal(m Mechanism, msg []byte, proofSize int) (clientFinalMessage, error) {
	var cf clientFinalMessage
	if err := checkText(m, msg); err != nil {
		return cf, err
	}
	text := string(msg)
	i := strings.LastIndex(text, ",p=")
	if i < 0 {
		return cf, malformed(m, "no proof (p=) at the end")
	}
	cf.withoutProof = text[:i]
	proof, err := base64.StdEncoding.Strict().DecodeString(text[i+len(",p="):])
	if err != nil || len(proof) != proofSize {
		return cf, malformed(m, "the proof is not base64 of %d bytes", proofSize)
	}
	cf.proof = proof
	fields := strings.Split(cf.withoutProof, ",")
	if len(fields) < 2 {
		return cf, malformed(m, "want c=<channel binding>,r=<nonce>,p=<proof>")
	}
	var ok bool
	if cf.channelBinding, ok = strings.CutPrefix(fields[0], "c="); !ok {
		return cf, malformed(m, "want c=<channel binding> first")
	}
	if cf.nonce, ok = strings.CutPrefix(fields[1], "r="); !ok {
		return cf, malformed(m, "want r=<nonce> after the channel binding")
	}
	if _, err := parseExtensions(m, fields[2:]); err != nil {
		return cf, err
	}
	return cf, nil
}

func (s *scramExchange) clientFinal(msg []byte) ([]byte, error) {
	size := s.h().Size()
	cf, err := parseClientFinal(s.mech, msg, size)
	if err != nil {
		return nil, err
	}
	if cf.channelBinding != base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) {
		return nil, malformed(s.mech, "the channel binding does not repeat the GS2 header")
	}
	// The nonce must end with the one the server sent, as Kafka's ScramSaslServer checks it:
	// older librdkafka (2.0.2, in kcat 1.7.1) sends its own nonce again in front of the
	// combined one. The proof covers the nonce as sent.
	if n := len(cf.nonce) - len(s.nonce); n < 0 || subtle.ConstantTimeCompare([]byte(cf.nonce[n:]), []byte(s.nonce)) != 1 {
		return nil, malformed(s.mech, "the nonce is not the one the server sent")
	}
	authMessage := []byte(s.clientBare + "," + s.serverFirst + "," + cf.withoutProof)
	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the client knows the
	// password iff H(ClientKey) == StoredKey. An unknown user's mask credential goes through
	// the same steps, so the answer and its timing are the same as for a wrong password.
	clientKey := hmacSum(s.h, s.cred.StoredKey, authMessage)
	subtle.XORBytes(clientKey, clientKey, cf.proof)
	match := equalConstantTime(hashSum(s.h, clientKey), s.cred.StoredKey)
	if !match || !s.known {
		return nil, authFailed(s.mech)
	}
	serverSignature := hmacSum(s.h, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}

// checkText applies the limits common to every SCRAM message: bounded size, UTF-8, no NUL.
func checkText(m Mechanism, msg []byte) error {
	switch {
	case len(msg) == 0:
		return malformed(m, "empty message")
	case len(msg) > maxSCRAMMessage:
		return malformed(m, "%d bytes (at most %d)", len(msg), maxSCRAMMessage)
	case !utf8.Valid(msg):
		return malformed(m, "not UTF-8")
	case strings.IndexByte(string(msg), 0) >= 0:
		return malformed(m, "contains NUL")
	}
	return nil
}

// decodeSaslName undoes RFC 5802's escaping of a saslname: "=2C" is ',' and "=3D" is '=';
// any other '=' is an error. The result is not empty.
func decodeSaslName(m Mechanism, s string) (string, error) {
	if s == "" {
		return "", malformed(m, "empty user name")
	}
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", malformed(m, "a user name may contain '=' only as =2C or =3D")
		}
		i += 2
	}
	return b.String(), nil
}

// EncodeSaslName escapes a user name for n= and a= (',' as "=2C", '=' as "=3D").
func EncodeSaslName(name string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
}

// checkNonce requires a non-empty nonce of printable ASCII other than ',' (RFC 5802's
// "printable").
func checkNonce(m Mechanism, nonce string) error {
	if nonce == "" {
		return malformed(m, "empty nonce")
	}
	for i := 0; i < len(nonce); i++ {
		if c := nonce[i]; c < 0x21 || c > 0x7e || c == ',' {
			return malformed(m, "the nonce has a character outside printable ASCII")
		}
	}
	return nil
}

// parseExtensions parses attr=value fields: attr one ASCII letter or more (Kafka's
// extensions, e.g. tokenauth, are words), value non-empty.
func parseExtensions(m Mechanism, fields []string) (map[string]string, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" || value == "" || !isAlpha(name) {
			return nil, malformed(m, "extension %q is not attr=value", truncate(f, 32))
		}
		out[name] = value
	}
	return out, nil
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
