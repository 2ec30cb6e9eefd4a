package security

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// FuzzScramClientFirst: parseClientFirst never panics and fails only with
// ErrAuthenticationFailed; a message it accepts re-encodes from its parts to the same bytes
// (user and authzid escaping round-trips), and its nonce is printable.
func FuzzScramClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		"n,a=al=2Cice,n=al=2Cice,r=abc,tokenauth=true",
		"n,,m=x,n=a,r=b", "y,,n=a,r=b", "n,,n=a=3D,r=b,ext=1,z=2", "n,,n=,r=", "\x00,,",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFirst(ScramSHA256, msg)
		if err != nil {
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("error %v does not wrap ErrAuthenticationFailed", err)
			}
			return
		}
		if cf.user == "" || checkNonce(ScramSHA256, cf.nonce) != nil {
			t.Fatalf("accepted user %q nonce %q", cf.user, cf.nonce)
		}
		if cf.authzid != "" && cf.authzid != cf.user {
			t.Fatalf("accepted authzid %q for user %q", cf.authzid, cf.user)
		}
		if !strings.HasPrefix(cf.bare, "n="+EncodeSaslName(cf.user)+",r="+cf.nonce) {
			t.Fatalf("bare %q does not start with the parsed user and nonce", cf.bare)
		}
		if cf.gs2Header+cf.bare != string(msg) {
			t.Fatalf("header %q + bare %q != message %q", cf.gs2Header, cf.bare, msg)
		}
		// A message built from the parsed parts parses to the same parts.
		again := "n," + map[bool]string{true: "", false: "a=" + EncodeSaslName(cf.authzid)}[cf.authzid == ""] +
			",n=" + EncodeSaslName(cf.user) + ",r=" + cf.nonce
		cf2, err := parseClientFirst(ScramSHA256, []byte(again))
		if err != nil || cf2.user != cf.user || cf2.nonce != cf.nonce || cf2.authzid != cf.authzid {
			t.Fatalf("re-encoded %q parses to %+v, %v", again, cf2, err)
		}
	})
}

// FuzzScramClientFinal: parseClientFinal never panics; an accepted message has a proof of
// the hash's size and is its without-proof part plus ",p=" and the base64 proof.
func FuzzScramClientFinal(f *testing.F) {
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, s := range []string{
		"c=biws,r=abc,p=" + proof, "c=biws,r=abc,x=1,p=" + proof, "c=,r=,p=", ",p=", "p=" + proof,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFinal(ScramSHA256, msg, 32)
		if err != nil {
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("error %v does not wrap ErrAuthenticationFailed", err)
			}
			return
		}
		if len(cf.proof) != 32 {
			t.Fatalf("proof of %d bytes", len(cf.proof))
		}
		if cf.withoutProof+",p="+base64.StdEncoding.EncodeToString(cf.proof) != string(msg) {
			t.Fatalf("%q does not re-encode", msg)
		}
	})
}

// FuzzScramExchange feeds two arbitrary messages to a whole conversation: it never panics,
// and never authenticates anyone (no fuzzer finds a proof for a password it does not know).
func FuzzScramExchange(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("n,,n=nobody,r=abc"), []byte("c=biws,r=abcdef,p="+base64.StdEncoding.EncodeToString(make([]byte, 32))))
	a := newTestAuthenticator(f, testCreds(f))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		ex, err := a.Start("SCRAM-SHA-256")
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := ex.Next(first)
		if err != nil || done {
			return
		}
		if !bytes.HasPrefix(out, []byte("r=")) {
			t.Fatalf("server-first %q", out)
		}
		if _, done, err := ex.Next(final); err == nil || done || ex.User() != "" {
			t.Fatalf("authenticated %q with %q, %q", ex.User(), first, final)
		}
	})
}

// FuzzParsePlain: ParsePlain never panics; an accepted message is its three parts joined by
// NUL, with a user and a password and a matching or empty authzid.
func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00alice\x00pw", "alice\x00alice\x00pw", "a\x00b\x00c", "\x00\x00", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := ParsePlain(msg)
		if err != nil {
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("error %v does not wrap ErrAuthenticationFailed", err)
			}
			return
		}
		if p.User == "" || p.Password == "" || (p.AuthzID != "" && p.AuthzID != p.User) {
			t.Fatalf("accepted %+v", p)
		}
		if p.AuthzID+"\x00"+p.User+"\x00"+p.Password != string(msg) {
			t.Fatalf("%q does not re-join", msg)
		}
	})
}

// FuzzParseScramCredential: the stored-form parser never panics; what it accepts encodes
// back to a form that parses to the same credential.
func FuzzParseScramCredential(f *testing.F) {
	c, err := NewScramCredential(ScramSHA256, "pw", 4096)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Encode())
	f.Add("salt=AAAA,stored_key=,server_key=,iterations=4096")
	f.Add("iterations=99999999999999999999")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseScramCredential(ScramSHA256, s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCredential) {
				t.Fatalf("error %v does not wrap ErrInvalidCredential", err)
			}
			return
		}
		c2, err := ParseScramCredential(ScramSHA256, c.Encode())
		if err != nil || c2.Encode() != c.Encode() {
			t.Fatalf("%q: re-encoded form %q does not round-trip: %v", s, c.Encode(), err)
		}
	})
}
