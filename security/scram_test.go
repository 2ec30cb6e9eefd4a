package security

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

var testSecret = []byte("0123456789abcdef-test-mask-secret")

func newTestAuthenticator(t testing.TB, creds CredentialSource, mechs ...Mechanism) *Authenticator {
	t.Helper()
	cfg := DefaultSASLConfig()
	cfg.MaskSecret = testSecret
	if len(mechs) > 0 {
		cfg.Mechanisms = mechs
	}
	a, err := NewAuthenticator(cfg, creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testCreds returns alice (both SCRAM mechanisms, password "alice-secret"), bob (SHA-256
// only, "bob-secret") and "we,ird=name" (SHA-512, "w").
func testCreds(t testing.TB) CredentialMap {
	t.Helper()
	m := CredentialMap{}
	add := func(user, pass string, mech Mechanism, iters int) {
		c, err := NewScramCredential(mech, pass, iters)
		if err != nil {
			t.Fatal(err)
		}
		m.Set(user, c)
	}
	add("alice", "alice-secret", ScramSHA256, 0)
	add("alice", "alice-secret", ScramSHA512, 8192)
	add("bob", "bob-secret", ScramSHA256, 4096)
	add("we,ird=name", "w", ScramSHA512, 4096)
	return m
}

// TestScramRFC7677 runs the SCRAM-SHA-256 example of RFC 7677 section 3 byte for byte.
func TestScramRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, err := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ScramCredentialFromSaltedPassword(ScramSHA256, salt, salted, 4096)
	if err != nil {
		t.Fatal(err)
	}
	creds := CredentialMap{}
	creds.Set("user", cred)
	a := newTestAuthenticator(t, creds)
	a.serverNonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }

	ex, err := a.Start("SCRAM-SHA-256")
	if err != nil {
		t.Fatal(err)
	}
	out, done, err := ex.Next([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatalf("client-first: %v, done %v", err, done)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(out) != want {
		t.Fatalf("server-first = %q, want %q", out, want)
	}
	if ex.User() != "" {
		t.Fatalf("User() = %q before the exchange is done", ex.User())
	}
	out, done, err = ex.Next([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatalf("client-final: %v, done %v", err, done)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(out) != want {
		t.Fatalf("server-final = %q, want %q", out, want)
	}
	if ex.User() != "user" {
		t.Fatalf("User() = %q", ex.User())
	}
	if _, _, err := ex.Next([]byte("c=biws")); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("a message after completion = %v", err)
	}
}

// runClient drives franz-go's client mechanism against a server exchange, the way a broker
// relays SaslAuthenticate bytes. It returns the server's and the client's error.
func runClient(t *testing.T, a *Authenticator, mech sasl.Mechanism) (user string, serverErr, clientErr error) {
	t.Helper()
	ex, err := a.Start(mech.Name())
	if err != nil {
		t.Fatal(err)
	}
	sess, msg, err := mech.Authenticate(context.Background(), "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		out, done, err := ex.Next(msg)
		if err != nil {
			return "", err, nil
		}
		clientDone, next, err := sess.Challenge(out)
		if err != nil {
			return "", nil, err
		}
		if done {
			if !clientDone {
				t.Fatal("the server finished but the client did not")
			}
			return ex.User(), nil, nil
		}
		msg = next
	}
	t.Fatal("the exchange did not finish in 4 round trips")
	return "", nil, nil
}

func TestScramFranzGoClient(t *testing.T) {
	creds := testCreds(t)
	a := newTestAuthenticator(t, creds, ScramSHA256, ScramSHA512, Plain)
	type tc struct {
		name, user, pass, zid string
		mech                  Mechanism
		ok                    bool
	}
	cases := []tc{
		{"sha256", "alice", "alice-secret", "", ScramSHA256, true},
		{"sha512 8192 iterations", "alice", "alice-secret", "", ScramSHA512, true},
		{"authzid is the user", "alice", "alice-secret", "alice", ScramSHA512, true},
		{"escaped name", "we,ird=name", "w", "", ScramSHA512, true},
		{"wrong password", "alice", "alice-secreT", "", ScramSHA256, false},
		{"unknown user", "mallory", "alice-secret", "", ScramSHA256, false},
		{"no credential for the mechanism", "bob", "bob-secret", "", ScramSHA512, false},
		{"authzid is someone else", "alice", "alice-secret", "bob", ScramSHA256, false},
	}
	failures := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := scram.Auth{User: c.user, Pass: c.pass, Zid: c.zid}
			mech := auth.AsSha256Mechanism()
			if c.mech == ScramSHA512 {
				mech = auth.AsSha512Mechanism()
			}
			user, serverErr, clientErr := runClient(t, a, mech)
			if clientErr != nil {
				t.Fatalf("the client refused the server: %v", clientErr)
			}
			if c.ok {
				if serverErr != nil || user != c.user {
					t.Fatalf("user %q, err %v; want %q", user, serverErr, c.user)
				}
				return
			}
			if !errors.Is(serverErr, ErrAuthenticationFailed) {
				t.Fatalf("err = %v, want ErrAuthenticationFailed", serverErr)
			}
			if strings.Contains(serverErr.Error(), c.pass) {
				t.Fatalf("the error %q contains the password", serverErr)
			}
			// A wrong password, an unknown user and a missing credential read the same.
			if c.zid == "" {
				failures++
				if serverErr.Error() != authFailed(c.mech).Error() {
					t.Fatalf("err = %q, want %q", serverErr, authFailed(c.mech))
				}
			}
		})
	}
	if failures != 3 {
		t.Errorf("%d credential failures, want 3", failures)
	}
}

// TestScramUnknownUserMask checks what an unknown user is shown: a salt and iteration count
// like a real user's, stable across attempts, different per user.
func TestScramUnknownUserMask(t *testing.T) {
	a := newTestAuthenticator(t, testCreds(t))
	first := func(user string, mech Mechanism) (salt []byte, iters string) {
		ex, err := a.Start(string(mech))
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := ex.Next([]byte("n,,n=" + EncodeSaslName(user) + ",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(string(out), ",")
		if len(f) != 3 || !strings.HasPrefix(f[0], "r=abc") || len(f[0]) <= len("r=abc") {
			t.Fatalf("server-first %q", out)
		}
		salt, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(f[1], "s="))
		if err != nil {
			t.Fatal(err)
		}
		return salt, f[2]
	}
	s1, i1 := first("nobody", ScramSHA256)
	s2, i2 := first("nobody", ScramSHA256)
	s3, _ := first("nobody2", ScramSHA256)
	s4, _ := first("nobody", ScramSHA512)
	real, realIters := first("bob", ScramSHA256)
	if string(s1) != string(s2) || i1 != i2 {
		t.Fatal("an unknown user's salt changes between attempts")
	}
	if string(s1) == string(s3) || string(s1) == string(s4) {
		t.Fatal("unknown users share a salt")
	}
	if len(s1) != len(real) || i1 != realIters || i1 != "i=4096" {
		t.Fatalf("unknown user: %d-byte salt, %s; real user: %d-byte salt, %s", len(s1), i1, len(real), realIters)
	}
	// Another server with another secret shows other salts (so brokers must share one).
	cfg := DefaultSASLConfig()
	cfg.MaskSecret = []byte("another secret, 16 bytes or more")
	b, err := NewAuthenticator(cfg, CredentialMap{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.mask("nobody", ScramSHA256).Salt) == string(s1) {
		t.Fatal("the mask does not depend on the secret")
	}
}

func TestScramMalformed(t *testing.T) {
	a := newTestAuthenticator(t, testCreds(t))
	badFirst := []string{
		"",
		"n,,",
		"n,,n=alice",
		"n,,r=abc,n=alice",
		"y,,n=alice,r=abc",
		"p=tls-unique,,n=alice,r=abc",
		"x,,n=alice,r=abc",
		"n,alice,n=alice,r=abc",
		"n,a=bob,n=alice,r=abc",
		"n,,m=ext,n=alice,r=abc",
		"n,,n=,r=abc",
		"n,,n=al=ice,r=abc",
		"n,,n=al=2ice,r=abc",
		"n,,n=alice,r=",
		"n,,n=alice,r=ab\x7fc",
		"n,,n=alice,r=ab c",
		"n,,n=alice,r=abc,=x",
		"n,,n=alice,r=abc,foo",
		"n,,n=alice,r=abc,1=x",
		"n,,n=ali\x00ce,r=abc",
		"n,,n=\xff,r=abc",
		"n,,n=" + strings.Repeat("a", maxSCRAMMessage) + ",r=abc",
	}
	for _, msg := range badFirst {
		ex, _ := a.Start("SCRAM-SHA-256")
		if out, done, err := ex.Next([]byte(msg)); !errors.Is(err, ErrAuthenticationFailed) || done || out != nil {
			t.Errorf("client-first %q: %q, %v, %v", truncate(msg, 40), out, done, err)
		}
		if _, _, err := ex.Next([]byte("c=biws,r=abc,p=AAAA")); err == nil {
			t.Errorf("client-first %q: the failed exchange went on", truncate(msg, 40))
		}
	}

	badFinal := func(nonce string) []string {
		proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
		return []string{
			"",
			"c=biws,r=" + nonce,
			"c=biws,r=" + nonce + ",p=",
			"c=biws,r=" + nonce + ",p=AAAA",
			"c=biws,r=" + nonce + ",p=" + proof + "=",
			"c=biws,r=" + nonce + "x,p=" + proof,
			"c=biws,r=abc,p=" + proof,
			"c=bixs,r=" + nonce + ",p=" + proof,
			"r=" + nonce + ",c=biws,p=" + proof,
			"c=biws,p=" + proof,
			"c=biws,r=" + nonce + ",bad,p=" + proof,
			"c=biws,r=" + nonce + ",p=" + proof + ",x=y",
		}
	}
	for i := range len(badFinal("")) {
		ex, _ := a.Start("SCRAM-SHA-256")
		out, _, err := ex.Next([]byte("n,,n=alice,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.TrimPrefix(strings.Split(string(out), ",")[0], "r=")
		msg := badFinal(nonce)[i]
		if out, done, err := ex.Next([]byte(msg)); !errors.Is(err, ErrAuthenticationFailed) || done || out != nil {
			t.Errorf("client-final %q: %q, %v, %v", msg, out, done, err)
		}
	}

	// With an authzid, c= must carry that GS2 header, not "biws".
	ex, _ := a.Start("SCRAM-SHA-256")
	out, _, err := ex.Next([]byte("n,a=alice,n=alice,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := strings.TrimPrefix(strings.Split(string(out), ",")[0], "r=")
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, _, err := ex.Next([]byte("c=biws,r=" + nonce + ",p=" + proof)); err == nil || !strings.Contains(err.Error(), "channel binding") {
		t.Errorf("c=biws after an authzid: %v", err)
	}

	if _, err := a.Start("GSSAPI"); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Errorf("Start(GSSAPI) = %v", err)
	}
	if _, err := a.Start("PLAIN"); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Errorf("Start(PLAIN) with PLAIN disabled = %v", err)
	}
}

func TestScramCredentialForm(t *testing.T) {
	c, err := NewScramCredential(ScramSHA512, "pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Iterations != DefaultIterations || len(c.Salt) != SaltSize || len(c.StoredKey) != 64 || len(c.ServerKey) != 64 {
		t.Fatalf("credential %+v", c)
	}
	enc := c.Encode()
	if !strings.HasPrefix(enc, "salt=") || !strings.HasSuffix(enc, ",iterations=4096") {
		t.Fatalf("stored form %q", enc)
	}
	back, err := ParseScramCredential(ScramSHA512, enc)
	if err != nil || back.Encode() != enc {
		t.Fatalf("round trip: %v, %q", err, back.Encode())
	}
	if _, err := ParseScramCredential(ScramSHA256, enc); !errors.Is(err, ErrInvalidCredential) {
		t.Fatalf("a SHA-512 credential parsed as SHA-256: %v", err)
	}
	if s := c.String(); strings.Contains(s, base64.StdEncoding.EncodeToString(c.StoredKey)) || !strings.Contains(s, "4096") {
		t.Fatalf("String() = %q", s)
	}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, bad := range []string{
		"",
		"salt=AAAA",
		"salt=AAAA,stored_key=" + key + ",server_key=" + key,
		"salt=AAAA,stored_key=" + key + ",server_key=" + key + ",iterations=4095",
		"salt=AAAA,stored_key=" + key + ",server_key=" + key + ",iterations=16385",
		"salt=AAAA,stored_key=" + key + ",server_key=" + key + ",iterations=x",
		"salt=,stored_key=" + key + ",server_key=" + key + ",iterations=4096",
		"salt=AAAA,stored_key=AAAA,server_key=" + key + ",iterations=4096",
		"salt=AAAA,stored_key=" + key + ",server_key=" + key + ",iterations=4096,extra=1",
		"salt=AAAA,salt=AAAA,stored_key=" + key + ",server_key=" + key + ",iterations=4096",
		"salt=AAA,stored_key=" + key + ",server_key=" + key + ",iterations=4096",
	} {
		if _, err := ParseScramCredential(ScramSHA256, bad); !errors.Is(err, ErrInvalidCredential) {
			t.Errorf("ParseScramCredential(%q) = %v", bad, err)
		}
	}
	if _, err := ParseScramCredential(ScramSHA256, "salt=AAAA,stored_key="+key+",server_key="+key+",iterations=4096"); err != nil {
		t.Errorf("a valid form: %v", err)
	}
	for _, iters := range []int{4095, 16385, -1} {
		if _, err := NewScramCredential(ScramSHA256, "pw", iters); !errors.Is(err, ErrInvalidCredential) {
			t.Errorf("%d iterations: %v", iters, err)
		}
	}
	if _, err := NewScramCredential(Plain, "pw", 0); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Errorf("a PLAIN credential: %v", err)
	}
	if _, err := ScramCredentialFromSaltedPassword(ScramSHA256, []byte("s"), make([]byte, 31), 4096); !errors.Is(err, ErrInvalidCredential) {
		t.Errorf("a short salted password: %v", err)
	}
}

// TestScramBadStoredCredential: a stored form that does not parse makes the user fail like
// an unknown one, not crash or leak.
func TestScramBadStoredCredential(t *testing.T) {
	creds := CredentialMap{"eve": {"SCRAM-SHA-256": "salt=garbage"}}
	a := newTestAuthenticator(t, creds)
	_, serverErr, _ := runClient(t, a, scram.Auth{User: "eve", Pass: "x"}.AsSha256Mechanism())
	if !errors.Is(serverErr, ErrAuthenticationFailed) {
		t.Fatalf("err = %v", serverErr)
	}
}

func TestSASLConfig(t *testing.T) {
	ms, err := ParseMechanisms(" SCRAM-SHA-512, PLAIN,,SCRAM-SHA-512")
	if err != nil || len(ms) != 2 || ms[0] != ScramSHA512 || ms[1] != Plain {
		t.Fatalf("ParseMechanisms = %v, %v", ms, err)
	}
	for _, bad := range []string{"", " , ", "GSSAPI", "OAUTHBEARER,PLAIN"} {
		if _, err := ParseMechanisms(bad); err == nil {
			t.Errorf("ParseMechanisms(%q) succeeded", bad)
		}
	}
	cfg := DefaultSASLConfig()
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no mask secret: %v", err)
	}
	cfg.MaskSecret = testSecret
	cfg.MaskIterations = 100
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("100 mask iterations: %v", err)
	}
	cfg.MaskIterations = 0
	if _, err := NewAuthenticator(cfg, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no credential source: %v", err)
	}
	a, err := NewAuthenticator(cfg, CredentialMap{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.Mechanisms(), ","); got != "SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Errorf("Mechanisms() = %s", got)
	}
}

// oneUserAuthenticator enables mech for alice, password "pw", SCRAM-SHA-512 at 4096
// iterations.
func oneUserAuthenticator(b *testing.B, mech Mechanism) *Authenticator {
	creds := CredentialMap{}
	c, err := NewScramCredential(ScramSHA512, "pw", 4096)
	if err != nil {
		b.Fatal(err)
	}
	creds.Set("alice", c)
	return newTestAuthenticator(b, creds, mech)
}

// BenchmarkScramServer measures the server's share of one SCRAM-SHA-512 authentication (the
// client's PBKDF2 is not in it: the client messages are computed once, against a fixed
// server nonce). The server does no PBKDF2, only a few HMACs.
func BenchmarkScramServer(b *testing.B) {
	a := oneUserAuthenticator(b, ScramSHA512)
	a.serverNonce = func() string { return "fixed-server-nonce" }
	sess, first, err := scram.Auth{User: "alice", Pass: "pw", Nonce: []byte("fixed")}.AsSha512Mechanism().Authenticate(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	ex, _ := a.Start("SCRAM-SHA-512")
	serverFirst, _, err := ex.Next(first)
	if err != nil {
		b.Fatal(err)
	}
	_, final, err := sess.Challenge(serverFirst)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ex, _ := a.Start("SCRAM-SHA-512")
		if _, _, err := ex.Next(first); err != nil {
			b.Fatal(err)
		}
		if _, done, err := ex.Next(final); err != nil || !done {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainVerify is one PLAIN authentication: PBKDF2-SHA-512 at 4096 iterations.
func BenchmarkPlainVerify(b *testing.B) {
	a := oneUserAuthenticator(b, Plain)
	for b.Loop() {
		if !a.VerifyPassword("alice", "pw") {
			b.Fatal("rejected")
		}
	}
}

// TestScramNonceRepeatedInFront: librdkafka 2.0.2 (kcat 1.7.1) sends its own
// nonce again in front of the combined one in client-final; like Kafka's
// ScramSaslServer, the server takes a nonce that ends with the one it sent
// (the proof covers the message as sent), and still refuses one that does
// not end with it.
func TestScramNonceRepeatedInFront(t *testing.T) {
	salt := []byte("0123456789abcdef0123")
	salted, err := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ScramCredentialFromSaltedPassword(ScramSHA256, salt, salted, 4096)
	if err != nil {
		t.Fatal(err)
	}
	creds := CredentialMap{}
	creds.Set("user", cred)
	a := newTestAuthenticator(t, creds)
	a.serverNonce = func() string { return "SERVERNONCE" }
	proofFor := func(clientFirstBare, serverFirst, finalWithoutProof string) string {
		mac := func(key []byte, msg string) []byte {
			h := hmac.New(sha256.New, key)
			h.Write([]byte(msg))
			return h.Sum(nil)
		}
		clientKey := mac(salted, "Client Key")
		stored := sha256.Sum256(clientKey)
		sig := mac(stored[:], clientFirstBare+","+serverFirst+","+finalWithoutProof)
		for i := range clientKey {
			clientKey[i] ^= sig[i]
		}
		return base64.StdEncoding.EncodeToString(clientKey)
	}
	for _, tc := range []struct {
		name   string
		prefix string // sent in front of the combined nonce
		suffix string // sent after it
		ok     bool
	}{
		{"exact", "", "", true},
		{"client nonce repeated in front", "CLIENTNONCE", "", true},
		{"extra after", "", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := a.Start("SCRAM-SHA-256")
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := ex.Next([]byte("n,,n=user,r=CLIENTNONCE"))
			if err != nil {
				t.Fatal(err)
			}
			serverFirst := string(out)
			final := "c=biws,r=" + tc.prefix + "CLIENTNONCESERVERNONCE" + tc.suffix
			_, done, err := ex.Next([]byte(final + ",p=" + proofFor("n=user,r=CLIENTNONCE", serverFirst, final)))
			if tc.ok && (err != nil || !done || ex.User() != "user") {
				t.Fatalf("client-final %q: %v, done %v", final, err, done)
			}
			if !tc.ok && !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("client-final %q: %v, want an authentication failure", final, err)
			}
		})
	}
}
