package security

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestParsePlain(t *testing.T) {
	good := map[string]PlainMessage{
		"\x00alice\x00pw":          {User: "alice", Password: "pw"},
		"alice\x00alice\x00pw":     {AuthzID: "alice", User: "alice", Password: "pw"},
		"\x00ünï\x00pä ss":         {User: "ünï", Password: "pä ss"},
		"\x00a\x00" + "p,=\\x\x01": {User: "a", Password: "p,=\\x\x01"},
	}
	for msg, want := range good {
		got, err := ParsePlain([]byte(msg))
		if err != nil || got != want {
			t.Errorf("ParsePlain(%q) = %+v, %v; want %+v", msg, got, err, want)
		}
	}
	for _, bad := range []string{
		"",
		"alice",
		"\x00alice",
		"\x00alice\x00",
		"\x00\x00pw",
		"bob\x00alice\x00pw",
		"\x00alice\x00pw\x00",
		"\x00alice\x00p\x00w",
		"\x00al\xffice\x00pw",
		"\x00alice\x00" + strings.Repeat("p", maxPlainMessage),
	} {
		_, err := ParsePlain([]byte(bad))
		if !errors.Is(err, ErrAuthenticationFailed) {
			t.Errorf("ParsePlain(%q) = %v", truncate(bad, 40), err)
			continue
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("ParsePlain(%q): the error %q shows the password", bad, err)
		}
	}
}

func TestPlainAgainstScramCredentials(t *testing.T) {
	a := newTestAuthenticator(t, testCreds(t), Plain, ScramSHA256)
	cases := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "alice-secret", true}, // SCRAM-SHA-512 credential, 8192 iterations
		{"bob", "bob-secret", true},     // SCRAM-SHA-256 only
		{"we,ird=name", "w", true},
		{"alice", "bob-secret", false},
		{"bob", "bob-secreT", false},
		{"nobody", "x", false},
	}
	for _, c := range cases {
		// The client bytes come from franz-go's PLAIN mechanism.
		sess, msg, err := plain.Auth{User: c.user, Pass: c.pass}.AsMechanism().Authenticate(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		ex, err := a.Start("PLAIN")
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := ex.Next(msg)
		if c.ok != (err == nil && done) || len(out) != 0 {
			t.Errorf("%s/%s: %q, %v, %v", c.user, c.pass, out, done, err)
			continue
		}
		if c.ok {
			if ex.User() != c.user {
				t.Errorf("User() = %q", ex.User())
			}
			if clientDone, _, err := sess.Challenge(out); !clientDone || err != nil {
				t.Errorf("the client did not finish: %v", err)
			}
		} else if err.Error() != authFailed(Plain).Error() {
			t.Errorf("%s: err %q, want %q", c.user, err, authFailed(Plain))
		}
		if _, _, err := ex.Next(msg); err == nil {
			t.Errorf("%s: a second PLAIN message was accepted", c.user)
		}
	}
}

// TestPlainUnknownUserTiming: an unknown user costs the same PBKDF2 work as a known user with
// a wrong password (both SCRAM-SHA-512 at 4096 iterations here), so timing does not tell them
// apart. Medians of interleaved runs, with a wide bound for a shared machine.
func TestPlainUnknownUserTiming(t *testing.T) {
	creds := CredentialMap{}
	c, err := NewScramCredential(ScramSHA512, "right", 4096)
	if err != nil {
		t.Fatal(err)
	}
	creds.Set("known", c)
	a := newTestAuthenticator(t, creds, Plain)
	const runs = 9
	var known, unknown []time.Duration
	for range runs {
		start := time.Now()
		if a.VerifyPassword("known", "wrong") {
			t.Fatal("wrong password accepted")
		}
		known = append(known, time.Since(start))
		start = time.Now()
		if a.VerifyPassword("unknown", "wrong") {
			t.Fatal("unknown user accepted")
		}
		unknown = append(unknown, time.Since(start))
	}
	slices.Sort(known)
	slices.Sort(unknown)
	k, u := known[runs/2], unknown[runs/2]
	if u < k/3 || u > 3*k {
		t.Fatalf("median verification: known user %v, unknown user %v", k, u)
	}
}
